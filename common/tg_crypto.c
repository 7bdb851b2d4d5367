/*
 * tg_crypto: XChaCha20-Poly1305 seal/open, the keyring and key ids (contract in tg_crypto.h).
 *
 * Invariants: a keyring holds the current key and at most one old key, each in sodium_malloc'd
 * memory; nothing here logs a key, a plaintext or a blob, and nothing here touches the database
 * (the sealed columns are tg_sealed's).
 */
#include "tg_crypto.h"

#include "tg_err.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEYBYTES crypto_aead_xchacha20poly1305_ietf_KEYBYTES
#define NONCEBYTES crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAGBYTES crypto_aead_xchacha20poly1305_ietf_ABYTES
#define MAX_PLAIN (1u << 20) /* bytes: nothing we seal is larger */

typedef struct key {
  char kid[TG_CRYPTO_KID_MAX + 1];
  unsigned char *k; /* KEYBYTES, sodium_malloc */
} key;

struct tg_crypto {
  key cur, old; /* old.k NULL when unset */
};

/* ---------------------------------------------------------------- keys */

static int kid_ok(const char *s, size_t n)
{
  if (n == 0 || n > TG_CRYPTO_KID_MAX)
    return 0;
  for (size_t i = 0; i < n; i++) {
    char ch = s[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
          ch == '_' || ch == '-'))
      return 0;
  }
  return 1;
}

static int parse_key(key *k, const char *spec, const char *var, char *err, size_t errlen)
{
  const char *colon = strchr(spec, ':'), *b = colon ? colon + 1 : spec;
  size_t len = 0;
  if (colon && !kid_ok(spec, (size_t)(colon - spec))) {
    snprintf(err, errlen, "%s: the key id before ':' must be 1 to %d of [A-Za-z0-9_-]", var,
             TG_CRYPTO_KID_MAX);
    return TG_EINVAL;
  }
  if (!(k->k = sodium_malloc(KEYBYTES)))
    return TG_ENOMEM;
  if (sodium_base642bin(k->k, KEYBYTES, b, strlen(b), NULL, &len, NULL,
                        sodium_base64_VARIANT_ORIGINAL) != 0 ||
      len != KEYBYTES) {
    snprintf(err, errlen,
             "%s: expected [<kid>:]<base64 of %d random bytes> (e.g. toolgate-gateway "
             "--generate-secret-key)",
             var, (int)KEYBYTES);
    return TG_EINVAL;
  }
  if (colon) {
    memcpy(k->kid, spec, (size_t)(colon - spec));
    k->kid[colon - spec] = 0;
  } else {
    unsigned char h[16];
    crypto_generichash(h, sizeof h, k->k, KEYBYTES, NULL, 0);
    k->kid[0] = 'k';
    sodium_bin2hex(k->kid + 1, 9, h, 4);
  }
  return 0;
}

int tg_crypto_new(tg_crypto **out, const tg_secret *current, const tg_secret *old, char *err,
                  size_t errlen)
{
  const char *cur_s = tg_secret_reveal(current), *old_s = tg_secret_reveal(old);
  tg_crypto *c;
  int rc;
  *out = NULL;
  if (sodium_init() < 0) {
    snprintf(err, errlen, "sodium_init failed");
    return TG_EINVAL;
  }
  if (!cur_s || !*cur_s) {
    if (old_s && *old_s) {
      snprintf(err, errlen, "TOOLGATE_SECRET_KEY_OLD is set without TOOLGATE_SECRET_KEY");
      return TG_EINVAL;
    }
    return 0;
  }
  if (!(c = calloc(1, sizeof *c)))
    return TG_ENOMEM;
  if ((rc = parse_key(&c->cur, cur_s, "TOOLGATE_SECRET_KEY", err, errlen)))
    goto fail;
  if (old_s && *old_s) {
    if ((rc = parse_key(&c->old, old_s, "TOOLGATE_SECRET_KEY_OLD", err, errlen)))
      goto fail;
    if (strcmp(c->old.kid, c->cur.kid) == 0) {
      snprintf(err, errlen,
               "TOOLGATE_SECRET_KEY_OLD has the same key id (%s) as TOOLGATE_SECRET_KEY",
               c->cur.kid);
      rc = TG_EINVAL;
      goto fail;
    }
  }
  *out = c;
  return 0;
fail:
  tg_crypto_free(c);
  return rc;
}

void tg_crypto_free(tg_crypto *c)
{
  if (!c)
    return;
  sodium_free(c->cur.k); /* sodium_free wipes; NULL-safe */
  sodium_free(c->old.k);
  free(c);
}

const char *tg_crypto_kid(const tg_crypto *c)
{
  return c ? c->cur.kid : NULL;
}

static const key *find_key(const tg_crypto *c, const char *kid)
{
  if (c && strcmp(c->cur.kid, kid) == 0)
    return &c->cur;
  if (c && c->old.k && strcmp(c->old.kid, kid) == 0)
    return &c->old;
  return NULL;
}

/* ---------------------------------------------------------------- seal / open */

/* "<table>|<row>|<user>|<kid>"; an integer row id is written in decimal, so the int64 and the
 * text entry points agree. */
static char *make_ad(const char *table, const char *row, const char *user, const char *kid,
                     size_t *n)
{
  int len = snprintf(NULL, 0, "%s|%s|%s|%s", table, row, user, kid);
  char *ad = len > 0 ? malloc((size_t)len + 1) : NULL;
  if (ad)
    snprintf(ad, (size_t)len + 1, "%s|%s|%s|%s", table, row, user, kid);
  *n = ad ? (size_t)len : 0;
  return ad;
}

int tg_crypto_blob_kid(const unsigned char *blob, size_t blob_len, char *kid)
{
  const unsigned char *end;
  size_t n;
  if (!blob || blob_len < 4 || memcmp(blob, "v1:", 3) != 0)
    return TG_EINVAL;
  end = memchr(blob + 3, ':',
               blob_len - 3 < TG_CRYPTO_KID_MAX + 1 ? blob_len - 3 : TG_CRYPTO_KID_MAX + 1);
  if (!end)
    return TG_EINVAL;
  n = (size_t)(end - (blob + 3));
  if (!kid_ok((const char *)blob + 3, n))
    return TG_EINVAL;
  memcpy(kid, blob + 3, n);
  kid[n] = 0;
  return 0;
}

int tg_crypto_seal_id(const tg_crypto *c, const char *table, const char *row, const char *user,
                      const void *pt, size_t n, unsigned char **blob, size_t *blob_len)
{
  size_t kl, hl, ad_len, total;
  unsigned char *b;
  char *ad;
  *blob = NULL;
  *blob_len = 0;
  if (!c || !table || !row || !user || n > MAX_PLAIN)
    return TG_EINVAL;
  kl = strlen(c->cur.kid);
  hl = 3 + kl + 1;
  total = hl + NONCEBYTES + n + TAGBYTES;
  if (!(b = malloc(total)))
    return TG_ENOMEM;
  if (!(ad = make_ad(table, row, user, c->cur.kid, &ad_len))) {
    free(b);
    return TG_ENOMEM;
  }
  memcpy(b, "v1:", 3);
  memcpy(b + 3, c->cur.kid, kl);
  b[3 + kl] = ':';
  randombytes_buf(b + hl, NONCEBYTES);
  crypto_aead_xchacha20poly1305_ietf_encrypt(
      b + hl + NONCEBYTES, NULL, pt, n, (const unsigned char *)ad, ad_len, NULL, b + hl, c->cur.k);
  free(ad);
  *blob = b;
  *blob_len = total;
  return 0;
}

int tg_crypto_open_id(const tg_crypto *c, const char *table, const char *row, const char *user,
                      const unsigned char *blob, size_t blob_len, char **pt, size_t *pt_len)
{
  char kid[TG_CRYPTO_KID_MAX + 1];
  const key *k;
  size_t hl, ad_len, ct_len;
  unsigned long long out_len = 0;
  unsigned char *out;
  char *ad;
  int rc;
  *pt = NULL;
  *pt_len = 0;
  if (!table || !row || !user || (rc = tg_crypto_blob_kid(blob, blob_len, kid)))
    return TG_EINVAL;
  hl = 3 + strlen(kid) + 1;
  if (blob_len < hl + NONCEBYTES + TAGBYTES)
    return TG_EINVAL;
  if (!(k = find_key(c, kid)))
    return TG_ENOTFOUND;
  ct_len = blob_len - hl - NONCEBYTES;
  if (!(out = malloc(ct_len - TAGBYTES + 1)))
    return TG_ENOMEM;
  if (!(ad = make_ad(table, row, user, kid, &ad_len))) {
    free(out);
    return TG_ENOMEM;
  }
  rc = crypto_aead_xchacha20poly1305_ietf_decrypt(out, &out_len, NULL, blob + hl + NONCEBYTES,
                                                  ct_len, (const unsigned char *)ad, ad_len,
                                                  blob + hl, k->k);
  free(ad);
  if (rc != 0) {
    free(out);
    return TG_EAUTH;
  }
  out[out_len] = 0;
  *pt = (char *)out;
  *pt_len = (size_t)out_len;
  return 0;
}

int tg_crypto_seal(const tg_crypto *c, const char *table, int64_t row, const char *user,
                   const void *pt, size_t n, unsigned char **blob, size_t *blob_len)
{
  char id[24];
  snprintf(id, sizeof id, "%lld", (long long)row);
  return tg_crypto_seal_id(c, table, id, user, pt, n, blob, blob_len);
}

int tg_crypto_open(const tg_crypto *c, const char *table, int64_t row, const char *user,
                   const unsigned char *blob, size_t blob_len, char **pt, size_t *pt_len)
{
  char id[24];
  snprintf(id, sizeof id, "%lld", (long long)row);
  return tg_crypto_open_id(c, table, id, user, blob, blob_len, pt, pt_len);
}

int tg_crypto_has_kid(const tg_crypto *c, const char *kid)
{
  return find_key(c, kid) != NULL;
}

void tg_crypto_wipe_free(void *p, size_t n)
{
  if (!p)
    return;
  sodium_memzero(p, n);
  free(p);
}
