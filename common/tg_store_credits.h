/*
 * tg_store_credits: the one owner of the users table (first sight of a user with its credit
 * grant, the credits column) and of credit_ledger. Every statement that moves users.credits is
 * here, and each writes, in the same call, the ledger row that explains the move (grant on first
 * sight, 'run_admitted' debit, 'run_refund'), so a user's credits always equal the sum of the
 * user's ledger deltas.
 *
 * Every function runs on the caller's connection (one thread at a time, a tg_dbq job). The
 * functions named _tx and the debit and refund run inside the transaction the caller has open
 * (they never begin or commit), so a route can combine them with its own writes;
 * tg_store_credits_ensure_user opens its own. Errors are the TG_E* codes of tg_db (TG_EDB,
 * TG_EBUSY, TG_ECONFLICT, TG_ENOMEM); times are ms since the epoch; credits are whole units;
 * strings are borrowed for the call.
 */
#ifndef TG_STORE_CREDITS_H
#define TG_STORE_CREDITS_H

#include <jansson.h>
#include <stdint.h>

typedef struct tg_db tg_db;

/*
 * Inserts user_id on first sight with credits = default_credits and a 'grant' ledger row (run_id
 * NULL) for that amount, in one IMMEDIATE transaction of its own; a no-op when the user exists
 * (found by one read, without taking the write lock). Call before any other transaction of the
 * job. Logs "user_created" when it inserted.
 */
int tg_store_credits_ensure_user(tg_db *db, const char *user_id, int64_t default_credits);

/* The same inside a transaction the caller has open. */
int tg_store_credits_ensure_user_tx(tg_db *db, const char *user_id, int64_t default_credits);

/* The user's credits into *credits. 0, or TG_ENOTFOUND (no such user; *credits = 0), or a TG_E*
 * code. */
int tg_store_credits_balance(tg_db *db, const char *user_id, int64_t *credits);

/*
 * The admission debit of run_id (cost >= 0): when the user's credits cover cost, takes them and
 * writes a 'run_admitted' ledger row of -cost, and returns 1; when they do not, writes nothing,
 * puts the balance into *credits (0 when the user is missing) and returns 0. A negative TG_E*
 * code on error (the caller rolls its transaction back).
 */
int tg_store_credits_debit(tg_db *db, const char *user_id, const char *run_id, int64_t cost,
                           int64_t now_ms, int64_t *credits);

/* Gives amount (> 0) back to the user for run_id with a 'run_refund' ledger row. 0 or TG_E*. */
int tg_store_credits_refund(tg_db *db, const char *user_id, const char *run_id, int64_t amount,
                            int64_t now_ms);

/*
 * The user's newest ledger rows, at most limit, newest first: a new array of {id, run_id, delta,
 * reason, created_at}, or NULL with *err set.
 */
json_t *tg_store_credits_ledger(tg_db *db, int *err, const char *user_id, int limit);

#endif
