/* Unit tests for common/tg_jwt.c: HS256 verification, fixed algorithm, exp/nbf, sub rules. */
#include "tg_unit.h"

#include "tg_err.h"
#include "tg_jwt.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOW 1700000000
#define DAY 86400 /* the default TOOLGATE_JWT_MAX_LIFETIME_S */
static const unsigned char secret[] = "0123456789abcdef0123456789abcdef-test";
#define SLEN (sizeof secret - 1)

static int verify(const char *tok, char *sub, const char **why)
{
  return tg_jwt_verify_hs256(tok, strlen(tok), secret, SLEN, NOW, DAY, sub, 129, why);
}

static char *sign(const char *claims)
{
  char *t = tg_jwt_sign_hs256(claims, secret, SLEN);
  assert_non_null(t);
  return t;
}

static void test_valid(void **state)
{
  char sub[129], *t = sign("{\"sub\":\"alice\",\"exp\":1700000600,\"nbf\":1699999000}");
  const char *why;
  (void)state;
  assert_int_equal(verify(t, sub, &why), 0);
  assert_string_equal(sub, "alice");
  free(t);
}

/* The signature is HMAC-SHA256 over "header.payload", base64url without padding (RFC 7515). */
static void test_interop_vector(void **state)
{
  char sub[129], *t = sign("{\"sub\":\"bob\",\"exp\":1700003600}");
  const char *why;
  unsigned char mac[32];
  char *dot = strrchr(t, '.');
  char b64[64];
  (void)state;
  /* recompute the signature independently with the one-shot API */
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, secret, SLEN);
  crypto_auth_hmacsha256_update(&st, (const unsigned char *)t, (size_t)(dot - t));
  crypto_auth_hmacsha256_final(&st, mac);
  sodium_bin2base64(b64, sizeof b64, mac, sizeof mac, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  assert_string_equal(dot + 1, b64);
  assert_int_equal(verify(t, sub, &why), 0);
  assert_string_equal(sub, "bob");
  free(t);
}

/* jwt.io's published example (secret "your-256-bit-secret"): it has no exp, so a verifier
 * that accepts its signature stops at "missing exp" rather than "bad signature". */
static void test_jwt_io_vector(void **state)
{
  static const char tok[] =
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwi"
      "aWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
  static const char key[] = "your-256-bit-secret";
  char sub[129];
  const char *why;
  (void)state;
  assert_int_equal(tg_jwt_verify_hs256(tok, sizeof tok - 1, (const unsigned char *)key,
                                       sizeof key - 1, NOW, DAY, sub, sizeof sub, &why),
                   TG_EAUTH);
  assert_string_equal(why, "missing exp");
  assert_int_equal(tg_jwt_verify_hs256(tok, sizeof tok - 1,
                                       (const unsigned char *)"your-256-bit-secreT", sizeof key - 1,
                                       NOW, DAY, sub, sizeof sub, &why),
                   TG_EAUTH);
  assert_string_equal(why, "bad signature");
}

static void test_expired_and_nbf(void **state)
{
  char sub[129], *t;
  const char *why;
  (void)state;
  t = sign("{\"sub\":\"a\",\"exp\":1699999900}"); /* 100 s ago, beyond the 30 s leeway */
  assert_int_equal(verify(t, sub, &why), TG_EAUTH);
  assert_string_equal(why, "expired");
  free(t);
  t = sign("{\"sub\":\"a\",\"exp\":1699999990}"); /* 10 s ago: within leeway */
  assert_int_equal(verify(t, sub, &why), 0);
  free(t);
  t = sign("{\"sub\":\"a\",\"exp\":1700000600,\"nbf\":1700000300}");
  assert_int_equal(verify(t, sub, &why), TG_EAUTH);
  assert_string_equal(why, "not valid yet");
  free(t);
  t = sign("{\"sub\":\"a\"}");
  assert_int_equal(verify(t, sub, &why), TG_EAUTH);
  assert_string_equal(why, "missing exp");
  free(t);
  t = sign("{\"sub\":\"a\",\"exp\":\"1700000600\"}");
  assert_int_equal(verify(t, sub, &why), TG_EAUTH);
  free(t);
}

/* exp at most the maximum lifetime (plus the leeway) ahead: a token cannot live forever. */
static void test_max_lifetime(void **state)
{
  char sub[129], *t;
  const char *why;
  (void)state;
  t = sign("{\"sub\":\"a\",\"exp\":1e30}");
  assert_int_equal(verify(t, sub, &why), TG_EAUTH);
  assert_string_equal(why, "lifetime too long");
  free(t);
  t = sign("{\"sub\":\"a\",\"exp\":1700086430}"); /* a day + the leeway: the edge */
  assert_int_equal(verify(t, sub, &why), 0);
  free(t);
  t = sign("{\"sub\":\"a\",\"exp\":1700086431}");
  assert_int_equal(verify(t, sub, &why), TG_EAUTH);
  assert_string_equal(why, "lifetime too long");
  assert_int_equal(tg_jwt_verify_hs256(t, strlen(t), secret, SLEN, NOW, 2 * DAY, sub, 129, &why),
                   0);
  assert_int_equal(tg_jwt_verify_hs256(t, strlen(t), secret, SLEN, NOW, 0, sub, 129, &why),
                   TG_EAUTH); /* no maximum is not a choice */
  free(t);
}

static char *b64url(const char *s)
{
  size_t cap = sodium_base64_ENCODED_LEN(strlen(s), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  char *o = malloc(cap);
  sodium_bin2base64(o, cap, (const unsigned char *)s, strlen(s),
                    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  return o;
}

/* Builds header.payload.sig with a correct HS256 MAC over whatever header is given. */
static char *forge(const char *header, const char *claims, int with_sig)
{
  char *h = b64url(header), *p = b64url(claims), *out = malloc(4096), b64[64];
  unsigned char mac[32];
  crypto_auth_hmacsha256_state st;
  snprintf(out, 4096, "%s.%s", h, p);
  crypto_auth_hmacsha256_init(&st, secret, SLEN);
  crypto_auth_hmacsha256_update(&st, (const unsigned char *)out, strlen(out));
  crypto_auth_hmacsha256_final(&st, mac);
  sodium_bin2base64(b64, sizeof b64, mac, sizeof mac, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  strcat(out, ".");
  if (with_sig)
    strcat(out, b64);
  free(h);
  free(p);
  return out;
}

static void test_algorithm_fixed(void **state)
{
  static const char *const headers[] = {"{\"alg\":\"none\",\"typ\":\"JWT\"}",
                                        "{\"alg\":\"HS512\"}",
                                        "{\"alg\":\"RS256\"}",
                                        "{\"alg\":\"hs256\"}",
                                        "{\"typ\":\"JWT\"}",
                                        "{\"alg\":null}",
                                        "{\"alg\":\"HS256\",\"crit\":[\"x\"]}",
                                        "{\"alg\":\"HS256\",\"alg\":\"none\"}"};
  const char *claims = "{\"sub\":\"mallory\",\"exp\":1700000600}";
  char sub[129];
  const char *why;
  (void)state;
  for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++) {
    char *t = forge(headers[i], claims, 1);
    assert_int_equal(verify(t, sub, &why), TG_EAUTH);
    free(t);
    t = forge(headers[i], claims, 0); /* alg:none style: empty signature */
    assert_int_equal(verify(t, sub, &why), TG_EAUTH);
    free(t);
  }
  /* control: the same forge with HS256 passes, so the refusals above are about alg */
  char *t = forge("{\"alg\":\"HS256\"}", claims, 1);
  assert_int_equal(verify(t, sub, &why), 0);
  free(t);
}

static void test_bad_signature_and_shape(void **state)
{
  char sub[129], *t = sign("{\"sub\":\"alice\",\"exp\":1700000600}");
  const char *why;
  size_t n = strlen(t);
  (void)state;
  assert_int_equal(tg_jwt_verify_hs256(t, n,
                                       (const unsigned char *)"another-secret-of-32-bytes-len!!",
                                       32, NOW, DAY, sub, sizeof sub, &why),
                   TG_EAUTH);
  assert_string_equal(why, "bad signature");
  t[n - 2] = t[n - 2] == 'A' ? 'B' : 'A';
  assert_int_equal(verify(t, sub, &why), TG_EAUTH);
  free(t);
  assert_int_equal(verify("", sub, &why), TG_EAUTH);
  assert_int_equal(verify("a.b", sub, &why), TG_EAUTH);
  assert_int_equal(verify("a.b.c.d", sub, &why), TG_EAUTH);
  assert_int_equal(verify("...", sub, &why), TG_EAUTH);
  assert_int_equal(verify("e30.e30.", sub, &why), TG_EAUTH);
  /* payload tampered after signing: signature no longer matches */
  t = sign("{\"sub\":\"alice\",\"exp\":1700000600}");
  {
    char *p1 = strchr(t, '.') + 1, *b = b64url("{\"sub\":\"admin\",\"exp\":1700000600}");
    char *rest = strdup(strchr(p1, '.')), out[1024];
    *p1 = 0;
    snprintf(out, sizeof out, "%s%s%s", t, b, rest);
    assert_int_equal(verify(out, sub, &why), TG_EAUTH);
    assert_string_equal(why, "bad signature");
    free(b);
    free(rest);
  }
  free(t);
}

static void test_sub_rules(void **state)
{
  char sub[129], claims[512], big[200];
  const char *why;
  (void)state;
  static const char *const bad[] = {"{\"exp\":1700000600}", "{\"sub\":\"\",\"exp\":1700000600}",
                                    "{\"sub\":\"a b\",\"exp\":1700000600}",
                                    "{\"sub\":7,\"exp\":1700000600}",
                                    "{\"sub\":\"a\\u0000b\",\"exp\":1700000600}"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char *t = sign(bad[i]);
    assert_int_equal(verify(t, sub, &why), TG_EAUTH);
    free(t);
  }
  memset(big, 'x', 129);
  big[129] = 0;
  snprintf(claims, sizeof claims, "{\"sub\":\"%s\",\"exp\":1700000600}", big);
  char *t = sign(claims);
  assert_int_equal(verify(t, sub, &why), TG_EAUTH);
  free(t);
  big[128] = 0;
  snprintf(claims, sizeof claims, "{\"sub\":\"%s\",\"exp\":1700000600}", big);
  t = sign(claims);
  assert_int_equal(verify(t, sub, &why), 0);
  assert_int_equal(strlen(sub), 128);
  free(t);
}

/* The private key k as PEM text (malloc'd). */
static char *pem_of(EVP_PKEY *k)
{
  BIO *b = BIO_new(BIO_s_mem());
  char *data, *out;
  long n;
  assert_non_null(b);
  assert_int_equal(PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL), 1);
  n = BIO_get_mem_data(b, &data);
  out = strndup(data, (size_t)n);
  BIO_free(b);
  return out;
}

/* Verifies an ES256 token's signature with the public half of k (raw r||s back to DER). */
static int es256_ok(const char *token, EVP_PKEY *k)
{
  const char *dot = strrchr(token, '.');
  unsigned char raw[64], der[80], *p = der;
  size_t rl = 0;
  int ok, dl;
  ECDSA_SIG *sig = ECDSA_SIG_new();
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  assert_int_equal(sodium_base642bin(raw, sizeof raw, dot + 1, strlen(dot + 1), NULL, &rl, NULL,
                                     sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                   0);
  assert_int_equal(rl, 64);
  ECDSA_SIG_set0(sig, BN_bin2bn(raw, 32, NULL), BN_bin2bn(raw + 32, 32, NULL));
  dl = i2d_ECDSA_SIG(sig, &p);
  ok = EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, k) == 1 &&
       EVP_DigestVerify(md, der, (size_t)dl, (const unsigned char *)token, (size_t)(dot - token)) ==
           1;
  EVP_MD_CTX_free(md);
  ECDSA_SIG_free(sig);
  return ok;
}

/* ES256 client assertions: the header, the claims as given, a signature the key's public half
 * verifies (and a changed payload does not); keys other than P-256 are refused. */
static void test_sign_es256(void **state)
{
  EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
  EVP_PKEY *k384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
  char *pem = pem_of(k), *pem384 = pem_of(k384);
  char *t = tg_jwt_sign_es256("{\"iss\":\"c1\",\"sub\":\"c1\",\"aud\":\"https://as\"}", pem);
  (void)state;
  assert_non_null(t);
  assert_int_equal(strncmp(t, "eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9.", 37), 0);
  assert_true(es256_ok(t, k));
  t[40] = t[40] == 'A' ? 'B' : 'A'; /* the payload changed: the signature no longer holds */
  assert_false(es256_ok(t, k));
  free(t);
  assert_null(tg_jwt_sign_es256("{}", pem384));
  assert_null(tg_jwt_sign_es256("{}", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END"));
  assert_null(tg_jwt_sign_es256(NULL, pem));
  free(pem);
  free(pem384);
  EVP_PKEY_free(k);
  EVP_PKEY_free(k384);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_valid),           cmocka_unit_test(test_interop_vector),
      cmocka_unit_test(test_jwt_io_vector),   cmocka_unit_test(test_expired_and_nbf),
      cmocka_unit_test(test_algorithm_fixed), cmocka_unit_test(test_bad_signature_and_shape),
      cmocka_unit_test(test_sub_rules),       cmocka_unit_test(test_max_lifetime),
      cmocka_unit_test(test_sign_es256),
  };
  if (sodium_init() < 0)
    return 1;
  return cmocka_run_group_tests(tests, NULL, NULL);
}
