/*
 * temp_dir.h: a fresh directory per unit test (/tmp/tg_unit_XXXXXX, mkdtemp) with `path` naming
 * the database file t.db in it, removed with everything in it afterwards (SQLite's WAL and
 * shared-memory files, other databases a test made there). Header-only (static) so several test
 * executables can share it: pass temp_dir_setup and temp_dir_teardown to
 * cmocka_unit_test_setup_teardown.
 */
#ifndef TEMP_DIR_H
#define TEMP_DIR_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char dir[64];   /* the test's directory */
static char path[128]; /* dir/t.db */

/* A cmocka setup: makes dir and path. */
static int temp_dir_setup(void **state)
{
  (void)state;
  strcpy(dir, "/tmp/tg_unit_XXXXXX");
  assert_non_null(mkdtemp(dir));
  snprintf(path, sizeof path, "%s/t.db", dir);
  return 0;
}

/* A cmocka teardown: removes dir and everything in it. */
static int temp_dir_teardown(void **state)
{
  char cmd[160];
  (void)state;
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  return system(cmd) == 0 ? 0 : -1;
}

#endif
