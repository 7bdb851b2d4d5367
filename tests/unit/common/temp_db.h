/*
 * temp_db.h: a fresh, migrated SQLite file per unit test (/tmp/<name>_<pid>.db) and its removal
 * with the WAL and shared-memory files next to it. Header-only (static functions) so several
 * test executables can share it: each opens temp in its cmocka setup (temp_db_open) and passes
 * temp_db_teardown as the teardown.
 */
#ifndef TEMP_DB_H
#define TEMP_DB_H

#include "tg_db_sqlite.h"

#include <stdio.h>
#include <unistd.h>

typedef struct temp_db {
  char path[96];
  tg_db *db;
} temp_db;

/* Opens t->db on a new file named after name; seed (may be NULL) is run with sqlite3_exec (any
 * number of statements). Fails the test on error. */
static void temp_db_open(temp_db *t, const char *name, const char *seed)
{
  snprintf(t->path, sizeof t->path, "/tmp/%s_%ld.db", name, (long)getpid());
  unlink(t->path);
  assert_int_equal(tg_db_open(&t->db, t->path, 1000), 0);
  if (seed)
    assert_int_equal(sqlite3_exec(tg_db_sqlite_handle(t->db), seed, NULL, NULL, NULL), SQLITE_OK);
}

/* Closes t->db and removes its files. */
static void temp_db_remove(temp_db *t)
{
  static const char *const suffix[] = {"", "-wal", "-shm"};
  char p[sizeof t->path + 8];
  tg_db_close(t->db);
  t->db = NULL;
  for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
    snprintf(p, sizeof p, "%s%s", t->path, suffix[i]);
    unlink(p);
  }
}

/* The test's database (one per test executable). */
static temp_db temp;

/* A cmocka teardown: removes temp. */
static int temp_db_teardown(void **state)
{
  (void)state;
  temp_db_remove(&temp);
  return 0;
}

#endif
