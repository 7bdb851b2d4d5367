/*
 * Unit tests for common/tg_buf.c: the cap holds at every edge (exactly at it, one past it, size_t
 * overflow), a failed append leaves the contents unchanged, printf grows past the first guess,
 * truncate/take keep the NUL invariant, a size hint gives one first allocation.
 */
#include "tg_unit.h"

#include "tg_buf.h"
#include "tg_err.h"

#include <stdlib.h>
#include <string.h>

static void test_empty(void **state)
{
  tg_buf b;
  char *p;
  size_t n = 99;
  (void)state;
  tg_buf_init(&b, 10);
  assert_string_equal(tg_buf_str(&b), "");
  assert_int_equal(tg_buf_len(&b), 0);
  assert_int_equal(tg_buf_add(&b, "x", 0), 0);
  assert_null(b.ptr); /* nothing allocated for nothing */
  p = tg_buf_take(&b, &n);
  assert_non_null(p);
  assert_string_equal(p, "");
  assert_int_equal(n, 0);
  free(p);
  tg_buf_free(&b);
  tg_buf_free(NULL);
}

static void test_cap_edges(void **state)
{
  tg_buf b;
  (void)state;
  tg_buf_init(&b, 8);
  assert_int_equal(tg_buf_add(&b, "abcd", 4), 0);
  assert_int_equal(tg_buf_add(&b, "efghi", 5), TG_ETOOBIG); /* 9 > 8 */
  assert_string_equal(tg_buf_str(&b), "abcd");              /* unchanged */
  assert_int_equal(tg_buf_add(&b, "efgh", 4), 0);           /* exactly the cap */
  assert_string_equal(tg_buf_str(&b), "abcdefgh");
  assert_true(b.alloc <= 9);
  assert_int_equal(tg_buf_add(&b, "x", 1), TG_ETOOBIG);
  assert_int_equal(tg_buf_reserve(&b, SIZE_MAX), TG_ETOOBIG); /* overflow */
  assert_int_equal(tg_buf_printf(&b, "%d", 1), TG_ETOOBIG);
  assert_string_equal(tg_buf_str(&b), "abcdefgh");
  tg_buf_free(&b);
}

static void test_growth(void **state)
{
  tg_buf b;
  char chunk[1000];
  size_t i;
  (void)state;
  memset(chunk, 'z', sizeof chunk);
  tg_buf_init(&b, 100000);
  for (i = 0; i < 100; i++)
    assert_int_equal(tg_buf_add(&b, chunk, sizeof chunk), 0);
  assert_int_equal(tg_buf_len(&b), 100000);
  assert_int_equal(b.ptr[100000], 0);
  assert_true(b.alloc <= 100001);
  assert_int_equal(tg_buf_add(&b, "z", 1), TG_ETOOBIG);
  tg_buf_free(&b);
  assert_int_equal(tg_buf_len(&b), 0);
  assert_int_equal(tg_buf_addstr(&b, "again"), 0); /* reusable after free, same cap */
  assert_string_equal(tg_buf_str(&b), "again");
  tg_buf_free(&b);
}

static void test_printf(void **state)
{
  tg_buf b;
  char big[300];
  (void)state;
  memset(big, 'q', sizeof big - 1);
  big[sizeof big - 1] = 0;
  tg_buf_init(&b, 1024);
  assert_int_equal(tg_buf_printf(&b, "%s=%d;", "a", 1), 0);
  assert_int_equal(tg_buf_printf(&b, "%s", big), 0); /* longer than the first allocation */
  assert_int_equal(tg_buf_len(&b), 4 + strlen(big));
  assert_memory_equal(tg_buf_str(&b), "a=1;qqq", 7);
  assert_int_equal(tg_buf_printf(&b, "%s%s%s%s", big, big, big, big), TG_ETOOBIG);
  assert_int_equal(tg_buf_len(&b), 4 + strlen(big)); /* unchanged, NUL where it was */
  assert_int_equal(b.ptr[tg_buf_len(&b)], 0);
  tg_buf_free(&b);
}

static void test_reserve_commit_truncate(void **state)
{
  tg_buf b;
  char *p;
  size_t n;
  (void)state;
  tg_buf_init(&b, 64);
  assert_int_equal(tg_buf_reserve(&b, 10), 0);
  assert_true(tg_buf_room(&b) >= 10);
  memcpy(tg_buf_end(&b), "0123456789", 10);
  tg_buf_commit(&b, 10);
  assert_string_equal(tg_buf_str(&b), "0123456789");
  tg_buf_truncate(&b, 3);
  assert_string_equal(tg_buf_str(&b), "012");
  tg_buf_truncate(&b, 30);
  assert_string_equal(tg_buf_str(&b), "012");
  assert_int_equal(tg_buf_addstr(&b, "kept"), 0);
  tg_buf_reset(&b);
  assert_string_equal(tg_buf_str(&b), "");
  assert_int_equal(tg_buf_addstr(&b, "taken"), 0);
  p = tg_buf_take(&b, &n);
  assert_string_equal(p, "taken");
  assert_int_equal(n, 5);
  assert_null(b.ptr);
  free(p);
  tg_buf_free(&b);
}

static void test_init_hint(void **state)
{
  tg_buf b;
  (void)state;
  tg_buf_init_hint(&b, 1u << 20, 4096);
  assert_int_equal(tg_buf_add(&b, "x", 1), 0);
  assert_int_equal(b.alloc, 4096); /* one allocation of the hinted size */
  assert_int_equal(tg_buf_reserve(&b, 4000), 0);
  assert_int_equal(b.alloc, 4096); /* still fits: no growth */
  assert_int_equal(tg_buf_reserve(&b, 5000), 0);
  assert_int_equal(b.alloc, 8192); /* then doubles */
  tg_buf_free(&b);
  assert_int_equal(tg_buf_add(&b, "abc", 3), 0); /* reused after free: the hint stays */
  assert_int_equal(b.alloc, 4096);
  tg_buf_free(&b);

  tg_buf_init_hint(&b, 10, 4096); /* the cap wins over the hint */
  assert_int_equal(tg_buf_add(&b, "abc", 3), 0);
  assert_int_equal(b.alloc, 11);
  assert_int_equal(tg_buf_add(&b, "01234567", 8), TG_ETOOBIG);
  tg_buf_free(&b);

  tg_buf_init_hint(&b, 1u << 20, 256); /* a first append larger than the hint */
  assert_int_equal(tg_buf_reserve(&b, 300), 0);
  assert_int_equal(b.alloc, 512);
  tg_buf_free(&b);
}

TG_UNIT_MAIN(cmocka_unit_test(test_empty), cmocka_unit_test(test_cap_edges),
             cmocka_unit_test(test_growth), cmocka_unit_test(test_printf),
             cmocka_unit_test(test_reserve_commit_truncate), cmocka_unit_test(test_init_hint))
