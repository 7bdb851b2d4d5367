/*
 * tg_connector: the pure part of a user's connectors (README "Connectors"): the validation of a
 * create or update body, the split of a connector into what is stored in clear and what is
 * sealed, and, from an opened connector, the request of an API operation or the header lines of
 * an MCP client. No I/O: tg_store_connectors reads and writes the rows, the gateway and the
 * worker send.
 *
 * An API connector's body: {name, description?, base_url (http or https), auth?, headers?,
 * operations: [{name, method?, path?, input_schema?, example_payload?}]}. auth is absent, null,
 * {type:"none"}, or as a credential (tg_store_credentials.h) with its type inside: {type:
 * "bearer", token} | {type:"api_key", in?: "header"|"query", param_name? (or name), value} |
 * {type:"custom_header", name, value} | {type:"basic", username, password} | {type:"oauth2",
 * token_url, client_id, client_secret?, refresh_token?, scope?}. headers is an object of default
 * header name -> string value.
 * An MCP connector's body: {name, description?, url (http or https, Streamable HTTP), headers?,
 * oauth?: true (or auth: {type:"oauth2", client_id?, scope?}), example_payload?}.
 *
 * Stored: config (clear) holds base_url / url, auth without its secret fields (token, value,
 * username, password, client_secret, refresh_token), header_names (the headers' names only),
 * operations, example_payload, oauth; secret (sealed) is {"auth": {secret fields}, "headers":
 * {name: value}}. An opened connector (tg_store_connectors_open) is {id, kind, name, config,
 * secret, auth_status, version}.
 */
#ifndef TG_CONNECTOR_H
#define TG_CONNECTOR_H

#include "tg_api_request.h"

#include <jansson.h>

#define TG_CONNECTOR_NAME_MAX 128
#define TG_CONNECTOR_OPS_MAX 256

/* A connector to write (every member owned; free with tg_connector_input_free). */
typedef struct tg_connector_input {
  const char *kind; /* "api" | "mcp" (static) */
  char *name;
  char *description;
  json_t *config; /* object, no secret */
  json_t *secret; /* {"auth": {...}, "headers": {...}} of plaintexts */
  int oauth;      /* MCP: 1 when the server requires MCP authorization */
} tg_connector_input;

/*
 * Validates a create body for kind ("api" or "mcp"). Returns NULL and fills *in, or a new array
 * of {field, message} listing every problem (*in zeroed). No secret value appears in a message.
 */
json_t *tg_connector_parse(const char *kind, const json_t *body, tg_connector_input *in);
void tg_connector_input_free(tg_connector_input *in); /* wipes the secret strings */

/*
 * The body an update starts from: the stored connector (opened: {kind, name, description,
 * config, secret}) as a create body, with the members of patch laid over it (a member of patch
 * replaces the stored one whole: "auth" or "headers" given replace the sealed ones). New
 * reference holding plaintexts (wipe with tg_api_wipe_json), NULL when memory runs out.
 */
json_t *tg_connector_update_body(const json_t *opened, const json_t *patch);

/* The public view of a stored row {id, kind, name, description, config, auth_status, version,
 * created_at, updated_at}: the row with config's members lifted to the top; never a secret.
 * New reference. */
json_t *tg_connector_public(const json_t *row);

/*
 * The request of operation (NULL: the first one) of an opened API connector with payload (NULL:
 * the operation's example_payload). For GET, HEAD and DELETE an object payload becomes query
 * parameters, otherwise the JSON body; "{name}" in the operation's path takes payload.name.
 * *config gets the API node config to build (tg_api_request_build: method, url, headers,
 * query_params, body, authentication, credential) and *creds the credentials object it needs
 * (the connector's id -> {type, meta, secret}; secret also holds the default headers' values so
 * that they are redacted with it); *auth the credential name that authenticates (the connector
 * id; NULL when the connector has no auth). Both hold plaintexts: wipe with tg_api_wipe_json.
 * Errors, reason in err: TG_ENOTFOUND (no such operation), TG_EINVAL (not an API connector,
 * stored auth unusable), TG_ENOMEM.
 */
int tg_connector_api_config(const json_t *opened, const char *operation, const json_t *payload,
                            json_t **config, json_t **creds, const char **auth, char *err,
                            size_t errlen);

/*
 * The "Name: value" header lines of an opened MCP connector's static headers, plus
 * "Authorization: Bearer <bearer>" when bearer is not NULL: a NULL-terminated malloc'd array of
 * malloc'd strings (free with tg_connector_lines_free, which wipes them), NULL when memory runs
 * out.
 */
char **tg_connector_mcp_headers(const json_t *opened, const char *bearer);
void tg_connector_lines_free(char **lines);

/*
 * The connector ids a workflow definition's nodes name (config.connector_id of API and MCP
 * nodes; templated ids are skipped): a new sorted array of unique strings, NULL when memory runs
 * out.
 */
json_t *tg_connector_ids_of(const json_t *definition);

/*
 * Blocks, in a check result's providers and reasons (tg_check.h), every connector of named whose
 * status in statuses (an object id -> auth_status, listing only connectors whose auth_status is
 * neither NULL nor ACTIVE) says it cannot run: "connector:<id>" with the auth_status as the
 * reason. Returns how many were added (the caller makes the outcome BLOCKED), or TG_ENOMEM.
 */
int tg_connector_block(json_t *providers, json_t *reasons, const json_t *named,
                       const json_t *statuses);

/* Wipes every string of v (plaintexts) and releases it. NULL-safe. */
void tg_connector_drop(json_t *v);

#endif
