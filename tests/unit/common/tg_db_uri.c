/*
 * Unit tests for common/tg_db_uri.c: a TOOLGATE_DB value as it may appear in a log line. A
 * SQLite path is kept; a PostgreSQL URI keeps only host:port/dbname, whether its password is in
 * the authority or in the query string; a URI libpq cannot parse says only "postgresql".
 */
#include "tg_unit.h"

#include "tg_db_uri.h"

#include <string.h>

static void test_sqlite_path_is_kept(void **state)
{
  char out[64];
  (void)state;
  tg_db_describe("/var/lib/toolgate/toolgate.db", out, sizeof out);
  assert_string_equal(out, "/var/lib/toolgate/toolgate.db");
  tg_db_describe("toolgate.db", out, 8); /* truncated, terminated */
  assert_string_equal(out, "toolgat");
}

static void test_pg_uri_loses_user_and_password(void **state)
{
  char out[128];
  (void)state;
  tg_db_describe("postgresql://tg:s3cret-pw@db.internal:6543/toolgate?sslmode=require", out,
                 sizeof out);
  assert_string_equal(out, "db.internal:6543/toolgate");
  tg_db_describe("postgres://db.internal/toolgate?user=tg&password=s3cret-pw", out, sizeof out);
  assert_string_equal(out, "db.internal:/toolgate");
  assert_null(strstr(out, "s3cret"));
}

static void test_unparsable_uri_says_nothing_more(void **state)
{
  char out[64];
  (void)state;
  tg_db_describe("postgresql://tg:s3cret@[::1/x", out, sizeof out); /* unclosed IPv6 bracket */
  assert_string_equal(out, "postgresql");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sqlite_path_is_kept),
      cmocka_unit_test(test_pg_uri_loses_user_and_password),
      cmocka_unit_test(test_unparsable_uri_says_nothing_more),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
