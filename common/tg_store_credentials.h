/*
 * tg_store_credentials: the one owner of the credentials table (schema/006_engine.sql): a
 * user's named secrets for API nodes (README "Credentials").
 *
 * A credential is {name, type, hosts, meta, secret}: type "bearer" | "api_key" | "basic" |
 * "oauth2"; hosts the host names it serves (exact, or "*.suffix"); meta its non-secret settings
 * (api_key: in, param_name; oauth2: token_url, client_id, scope, grant); secret an object of its
 * secret fields (bearer: token; api_key: value; basic: username, password; oauth2:
 * client_secret and/or refresh_token), sealed with tg_crypto into secret_enc with the associated
 * data "credentials|<id>|<user id>|<kid>". Secrets are never stored in clear, never returned by
 * the reads the routes use and never logged: only tg_store_credentials_open* gives them out, to
 * the worker's executors.
 *
 * Every function runs on the caller's connection (a tg_dbq job); strings are borrowed for the
 * call; times are ms since the epoch. Errors are TG_E* codes.
 */
#ifndef TG_STORE_CREDENTIALS_H
#define TG_STORE_CREDENTIALS_H

#include "tg_crypto.h"

#include <jansson.h>
#include <stdint.h>

typedef struct tg_db tg_db;

#define TG_CREDENTIAL_NAME_MAX 64 /* [A-Za-z0-9_.-]{1,64} */
#define TG_CREDENTIAL_HOSTS_MAX 32

/* A credential to write, as tg_store_credentials_parse builds it (every member owned). */
typedef struct tg_credential_input {
  char *name;
  const char *type; /* static */
  json_t *hosts;    /* array of lowercased host names */
  json_t *meta;     /* object */
  json_t *secret;   /* object of strings */
} tg_credential_input;

/* 1 when name is a valid credential name. */
int tg_credential_name_ok(const char *name);

/*
 * Validates a POST /api/credentials body: {name, type, hosts?, and per type: bearer {token};
 * api_key {value, in?: "header"|"query", param_name?}; basic {username, password}; oauth2
 * {token_url (http or https), client_id, client_secret?, refresh_token?, scope?}}. Returns NULL
 * and fills *in (free with tg_credential_input_free), or a new array of {field, message} listing
 * every problem (then *in is zeroed). Pure; no secret value appears in the messages.
 */
json_t *tg_store_credentials_parse(const json_t *body, tg_credential_input *in);
void tg_credential_input_free(tg_credential_input *in); /* wipes the secret strings */

/*
 * Creates or replaces user's credential in->name (one IMMEDIATE transaction): a replacement
 * keeps its id and created_at. *row gets the public view {name, type, hosts, meta, created_at,
 * updated_at} (new reference) and *created 1 when it was new. The user must exist (users row).
 * Errors: TG_ESTATE (c NULL: no key configured), TG_EDB, TG_EBUSY, TG_ENOMEM.
 */
int tg_store_credentials_put(tg_db *db, const tg_crypto *c, const char *user,
                             const tg_credential_input *in, int64_t now_ms, json_t **row,
                             int *created);

/* The user's credentials, public view, sorted by name: a new array, or NULL with *err set. */
json_t *tg_store_credentials_list(tg_db *db, int *err, const char *user);

/* One credential's public view: a new object, or NULL with *err (TG_ENOTFOUND when user has no
 * credential of that name). */
json_t *tg_store_credentials_get(tg_db *db, int *err, const char *user, const char *name);

/* Deletes user's credential name: 0, TG_ENOTFOUND, or a database error. */
int tg_store_credentials_delete(tg_db *db, const char *user, const char *name);

/*
 * Worker side: opens user's credentials whose names are in names (an array of strings; missing
 * names are simply absent from the result) into *out, a new object name -> {"type", "meta",
 * "secret"}. The secret strings are the plaintexts: the caller keeps them out of anything
 * journaled or logged and releases *out when the request is sent. Errors: TG_ESTATE (the user
 * has a credential and no key is configured), tg_crypto_open's (TG_EAUTH, TG_ENOTFOUND for an
 * unknown kid), TG_EINVAL (a plaintext that is not an object), TG_EDB, TG_ENOMEM.
 */
int tg_store_credentials_open(tg_db *db, const tg_crypto *c, const char *user, const json_t *names,
                              json_t **out);

/*
 * Worker side: the first of user's credentials (by name) bound to host (its hosts list holds
 * host, case-insensitively, or "*.suffix" with host ending in ".suffix"), opened as one member
 * of *out as above. TG_ENOTFOUND when none is bound to host; other errors as
 * tg_store_credentials_open.
 */
int tg_store_credentials_open_for_host(tg_db *db, const tg_crypto *c, const char *user,
                                       const char *host, json_t **out);

/* 1 when host matches one entry of hosts (an array of host patterns as stored). Pure. */
int tg_credential_host_match(const json_t *hosts, const char *host);

#endif
