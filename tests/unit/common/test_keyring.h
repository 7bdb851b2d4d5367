/*
 * test_keyring.h: fixed TOOLGATE_SECRET_KEY values and a keyring builder for the unit tests of
 * tg_crypto and tg_sealed, so failures are reproducible. Header-only (static functions); include
 * it after cmocka.h.
 */
#ifndef TEST_KEYRING_H
#define TEST_KEYRING_H

#include "tg_crypto.h"

/* 32 bytes of 'A'..: fixed keys so failures are reproducible */
#define KEY_A "ka:QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="
#define KEY_B "kb:QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI="
#define KEY_BARE "Q0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0M="

/* A keyring from the specs cur and old (NULL: unset); fails the test when it cannot be built. */
static tg_crypto *ring(const char *cur, const char *old)
{
  tg_secret c = {(char *)cur}, o = {(char *)old};
  tg_crypto *k = NULL;
  char err[256];
  assert_int_equal(tg_crypto_new(&k, &c, &o, err, sizeof err), 0);
  assert_non_null(k);
  return k;
}

#endif
