/*
 * tg_jwt: HS256 compact JWS verification (contract in tg_jwt.h).
 *
 * Order of checks: size cap, exactly two dots, header decodes to a JSON object whose "alg" is
 * exactly "HS256" (and "crit", which we do not implement, is absent), signature decodes to 32
 * bytes and equals HMAC-SHA256(secret, signing input) in constant time, and only then the
 * payload: a JSON object with numeric "exp" (required), numeric "nbf" (optional) and a string
 * "sub". Duplicate JSON keys are refused (a token must mean one thing).
 */
#include "tg_jwt.h"

#include "tg_err.h"

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define B64 sodium_base64_VARIANT_URLSAFE_NO_PADDING

/* Decodes base64url (no padding) into a new JSON object; NULL when anything is off. */
static json_t *decode_json(const char *p, size_t n)
{
  size_t cap = n / 4 * 3 + 3, len = 0;
  unsigned char *bin = malloc(cap);
  json_t *v = NULL;
  if (!bin)
    return NULL;
  if (sodium_base642bin(bin, cap, p, n, NULL, &len, NULL, B64) == 0)
    v = json_loadb((const char *)bin, len, JSON_REJECT_DUPLICATES, NULL);
  free(bin);
  if (v && !json_is_object(v)) {
    json_decref(v);
    v = NULL;
  }
  return v;
}

static void hmac(const unsigned char *secret, size_t secret_len, const char *in, size_t n,
                 unsigned char mac[crypto_auth_hmacsha256_BYTES])
{
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, secret, secret_len);
  crypto_auth_hmacsha256_update(&st, (const unsigned char *)in, n);
  crypto_auth_hmacsha256_final(&st, mac);
  sodium_memzero(&st, sizeof st);
}

static int printable(const char *s, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
      return 0;
  return 1;
}

int tg_jwt_verify_hs256(const char *token, size_t len, const unsigned char *secret,
                        size_t secret_len, int64_t now_s, int64_t max_lifetime_s, char *sub,
                        size_t subsize, const char **why)
{
  const char *dot1, *dot2, *s;
  unsigned char mac[crypto_auth_hmacsha256_BYTES], got[crypto_auth_hmacsha256_BYTES];
  size_t got_len = 0, sub_len;
  json_t *hdr = NULL, *claims = NULL, *exp, *nbf;
  const char *alg;
  int rc = TG_EAUTH;

  *why = "malformed token";
  if (!token || len == 0 || len > TG_JWT_MAX_BYTES || !secret || secret_len == 0 || subsize < 2 ||
      max_lifetime_s <= 0)
    return TG_EAUTH;
  dot1 = memchr(token, '.', len);
  dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
  if (!dot2 || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)))
    return TG_EAUTH;

  if (!(hdr = decode_json(token, (size_t)(dot1 - token))))
    goto fail;
  alg = json_string_value(json_object_get(hdr, "alg"));
  if (!alg || strcmp(alg, "HS256") != 0 || json_object_get(hdr, "crit")) {
    *why = "algorithm not allowed";
    goto fail;
  }

  *why = "bad signature";
  if (sodium_base642bin(got, sizeof got, dot2 + 1, len - (size_t)(dot2 + 1 - token), NULL, &got_len,
                        NULL, B64) != 0 ||
      got_len != sizeof got)
    goto fail;
  hmac(secret, secret_len, token, (size_t)(dot2 - token), mac);
  if (sodium_memcmp(mac, got, sizeof mac) != 0)
    goto fail;

  *why = "malformed claims";
  if (!(claims = decode_json(dot1 + 1, (size_t)(dot2 - dot1 - 1))))
    goto fail;
  exp = json_object_get(claims, "exp");
  nbf = json_object_get(claims, "nbf");
  if (!json_is_number(exp)) {
    *why = "missing exp";
    goto fail;
  }
  if (json_number_value(exp) + TG_JWT_LEEWAY_S <= (double)now_s) {
    *why = "expired";
    goto fail;
  }
  if (json_number_value(exp) - TG_JWT_LEEWAY_S > (double)now_s + (double)max_lifetime_s) {
    *why = "lifetime too long";
    goto fail;
  }
  if (nbf && (!json_is_number(nbf) || json_number_value(nbf) - TG_JWT_LEEWAY_S > (double)now_s)) {
    *why = "not valid yet";
    goto fail;
  }
  s = json_string_value(json_object_get(claims, "sub"));
  sub_len = s ? json_string_length(json_object_get(claims, "sub")) : 0;
  if (!s || sub_len == 0 || sub_len > TG_JWT_SUB_MAX || sub_len + 1 > subsize ||
      !printable(s, sub_len)) {
    *why = "missing or invalid sub";
    goto fail;
  }
  memcpy(sub, s, sub_len + 1);
  *why = NULL;
  rc = 0;
fail:
  sodium_memzero(mac, sizeof mac);
  json_decref(hdr);
  json_decref(claims);
  return rc;
}

static char *b64(const unsigned char *p, size_t n)
{
  size_t cap = sodium_base64_ENCODED_LEN(n, B64);
  char *out = malloc(cap);
  if (out)
    sodium_bin2base64(out, cap, p, n, B64);
  return out;
}

/* Signs input (n bytes) into sig (at most 64 bytes), setting *len; 0 on failure. */
typedef int (*sign_fn)(void *arg, const char *input, size_t n, unsigned char sig[64], size_t *len);

/* "<b64url header>.<b64url claims>.<b64url signature>" as a new string, or NULL: the compact
 * serialization of RFC 7515 section 7.1, with sign computing the signature over the first two
 * parts. */
static char *compact(const char *hdr, const char *claims_json, sign_fn sign, void *arg)
{
  unsigned char sig[64];
  size_t n, sig_len = 0;
  char *h = NULL, *p = NULL, *s = NULL, *out = NULL;
  if (!claims_json)
    return NULL;
  if (!(h = b64((const unsigned char *)hdr, strlen(hdr))) ||
      !(p = b64((const unsigned char *)claims_json, strlen(claims_json))))
    goto done;
  n = strlen(h) + 1 + strlen(p);
  if (!(out = malloc(n + 1 + sodium_base64_ENCODED_LEN(sizeof sig, B64))))
    goto done;
  strcpy(out, h);
  strcat(out, ".");
  strcat(out, p);
  if (!sign(arg, out, n, sig, &sig_len) || !(s = b64(sig, sig_len))) {
    free(out);
    out = NULL;
    goto done;
  }
  strcat(out, ".");
  strcat(out, s);
done:
  free(h);
  free(p);
  free(s);
  return out;
}

typedef struct hs256_key {
  const unsigned char *secret;
  size_t len;
} hs256_key;

static int sign_hs256(void *arg, const char *input, size_t n, unsigned char sig[64], size_t *len)
{
  const hs256_key *k = arg;
  hmac(k->secret, k->len, input, n, sig);
  *len = crypto_auth_hmacsha256_BYTES;
  return 1;
}

char *tg_jwt_sign_hs256(const char *claims_json, const unsigned char *secret, size_t secret_len)
{
  hs256_key k = {secret, secret_len};
  if (!secret)
    return NULL;
  return compact("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", claims_json, sign_hs256, &k);
}

/* The raw r || s (32 bytes each, big-endian) of a DER ECDSA signature (RFC 7518 section 3.4). */
static int der_to_raw(const unsigned char *der, size_t len, unsigned char raw[64])
{
  const unsigned char *p = der;
  ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)len);
  const BIGNUM *r, *s;
  int ok;
  if (!sig)
    return 0;
  ECDSA_SIG_get0(sig, &r, &s);
  ok = BN_bn2binpad(r, raw, 32) == 32 && BN_bn2binpad(s, raw + 32, 32) == 32;
  ECDSA_SIG_free(sig);
  return ok;
}

/* ES256 over input with the EVP key arg: the DER signature turned into raw r || s. */
static int sign_es256(void *arg, const char *input, size_t n, unsigned char sig[64], size_t *len)
{
  unsigned char der[80];
  size_t der_len = sizeof der;
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  int ok = md && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, arg) == 1 &&
           EVP_DigestSign(md, der, &der_len, (const unsigned char *)input, n) == 1 &&
           der_to_raw(der, der_len, sig);
  EVP_MD_CTX_free(md);
  *len = 64;
  return ok;
}

char *tg_jwt_sign_es256(const char *claims_json, const char *private_key_pem)
{
  BIO *bio = NULL;
  EVP_PKEY *key = NULL;
  char *out = NULL;
  if (!claims_json || !private_key_pem)
    return NULL;
  if ((bio = BIO_new_mem_buf(private_key_pem, -1)) &&
      (key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)) && EVP_PKEY_get_bits(key) == 256 &&
      EVP_PKEY_base_id(key) == EVP_PKEY_EC)
    out = compact("{\"alg\":\"ES256\",\"typ\":\"JWT\"}", claims_json, sign_es256, key);
  EVP_PKEY_free(key);
  BIO_free(bio);
  return out;
}
