/*
 * tg_jsonrpc: JSON-RPC 2.0 framing (https://www.jsonrpc.org/specification, as profiled by MCP
 * 2025-11-25 basic/index.mdx "Messages"; ../shared/reference/mcp-client.md A.10).
 *
 * Builders return compact JSON text (malloc'd, NUL-terminated, caller frees with free()). Our
 * request ids are integers and never null. The decoder classifies one message text (key order
 * is arbitrary) and rejects anything that is not a well-formed single message; batches are not
 * supported (removed from MCP in 2025-06-18).
 */
#ifndef TG_JSONRPC_H
#define TG_JSONRPC_H

#include <jansson.h>
#include <stddef.h>

/* Standard error codes. */
enum {
  TG_JSONRPC_PARSE_ERROR = -32700,
  TG_JSONRPC_INVALID_REQUEST = -32600,
  TG_JSONRPC_METHOD_NOT_FOUND = -32601,
  TG_JSONRPC_INVALID_PARAMS = -32602,
  TG_JSONRPC_INTERNAL_ERROR = -32603
};

typedef enum tg_jsonrpc_kind {
  TG_JSONRPC_INVALID = 0,
  TG_JSONRPC_REQUEST,      /* id, method, params? */
  TG_JSONRPC_NOTIFICATION, /* method, params? */
  TG_JSONRPC_RESPONSE      /* id, and exactly one of result / error */
} tg_jsonrpc_kind;

/* A decoded message. Pointers borrow from root and live until tg_jsonrpc_msg_clear(). */
typedef struct tg_jsonrpc_msg {
  tg_jsonrpc_kind kind;
  json_t *root;       /* owned: the parsed message (NULL if the text was not JSON) */
  json_t *id;         /* integer or string; NULL for a notification or an error with null id */
  const char *method; /* requests and notifications */
  json_t *params;     /* object or array, or NULL when absent */
  json_t *result;     /* successful response: any JSON value (possibly null); else NULL */
  int is_error;       /* 1 for an error response */
  long long error_code;
  const char *error_message; /* "" when the peer omitted it */
  json_t *error_data;        /* may be NULL */
  char reason[160];          /* why the message is TG_JSONRPC_INVALID */
} tg_jsonrpc_msg;

/* Request {"jsonrpc":"2.0","id":id,"method":method[,"params":params]}. params (object, array or
 * NULL) is borrowed. Errors: TG_EINVAL (no method, params not object/array), TG_ENOMEM. */
int tg_jsonrpc_request(char **out, long long id, const char *method, const json_t *params);

/* Notification: a request without id. Same errors. */
int tg_jsonrpc_notification(char **out, const char *method, const json_t *params);

/* Success response for id (integer or string, borrowed) with result (borrowed; NULL = {}).
 * Errors: TG_EINVAL (id missing or of wrong type), TG_ENOMEM. */
int tg_jsonrpc_result(char **out, const json_t *id, const json_t *result);

/* Error response {"error":{"code","message"[,"data"]}} for id (integer, string, or NULL/json
 * null when the request could not be read). Errors: TG_EINVAL, TG_ENOMEM. */
int tg_jsonrpc_error(char **out, const json_t *id, int code, const char *message,
                     const json_t *data);

/*
 * Decodes one message text of len bytes into *msg (always initialized; clear it after). Returns
 * 0 for a valid request, notification or response; TG_EINVAL with msg->kind ==
 * TG_JSONRPC_INVALID and msg->reason set when the text is not JSON, not an object, lacks
 * "jsonrpc":"2.0", has both or neither of result/error, has an error without an integer code,
 * or has an id that is not an integer or string (null is allowed only on error responses);
 * TG_ENOMEM.
 */
int tg_jsonrpc_decode(const char *text, size_t len, tg_jsonrpc_msg *msg);

/* Releases msg->root and resets msg. Accepts NULL. */
void tg_jsonrpc_msg_clear(tg_jsonrpc_msg *msg);

/* 1 when id is a JSON integer equal to want. */
int tg_jsonrpc_id_is(const json_t *id, long long want);

#endif
