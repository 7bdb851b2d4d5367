/*
 * Unit tests for common/tg_id.c: the shape of an id (prefix + 2 hex digits per byte), that two
 * ids differ, the 64-byte ceiling, and that a buffer too small gives "" rather than a cut id.
 */
#include "tg_unit.h"

#include "tg_id.h"

#include <string.h>

static void test_shape_and_uniqueness(void **state)
{
  char a[64], b[64];
  size_t i;
  (void)state;
  tg_random_id(a, sizeof a, "run_", 16);
  tg_random_id(b, sizeof b, "run_", 16);
  assert_int_equal(strlen(a), 4 + 32);
  assert_memory_equal(a, "run_", 4);
  for (i = 4; i < strlen(a); i++)
    assert_non_null(strchr("0123456789abcdef", a[i]));
  assert_string_not_equal(a, b);
  tg_random_id(a, sizeof a, NULL, 8);
  assert_int_equal(strlen(a), 16);
}

static void test_limits(void **state)
{
  char small[8] = "xxxxxxx", big[200];
  (void)state;
  tg_random_id(small, sizeof small, "run_", 16); /* needs 37 bytes */
  assert_string_equal(small, "");
  tg_random_id(big, sizeof big, "", 100); /* at most 64 random bytes */
  assert_int_equal(strlen(big), 128);
}

TG_UNIT_MAIN(cmocka_unit_test(test_shape_and_uniqueness), cmocka_unit_test(test_limits))
