/*
 * tg_jsonrpc: building and classifying JSON-RPC 2.0 messages with jansson.
 *
 * Builders assemble a jansson object and dump it compactly; the decoder parses with
 * JSON_REJECT_DUPLICATES (a message with two "id" keys is ambiguous) and validates the shape
 * before classifying. Invariant: a message returned with kind != INVALID satisfies every rule in
 * the header, so callers route on kind without re-checking types.
 */
#include "tg_jsonrpc.h"
#include "tg_err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int dump(json_t *o, char **out)
{
  if (!o)
    return TG_ENOMEM;
  *out = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  return *out ? 0 : TG_ENOMEM;
}

static int valid_params(const json_t *params)
{
  return !params || json_is_object(params) || json_is_array(params);
}

static int build_call(char **out, const long long *id, const char *method, const json_t *params)
{
  json_t *o;
  *out = NULL;
  if (!method || !valid_params(params))
    return TG_EINVAL;
  o = json_object();
  if (!o)
    return TG_ENOMEM;
  if (json_object_set_new(o, "jsonrpc", json_string("2.0")) ||
      (id && json_object_set_new(o, "id", json_integer(*id))) ||
      json_object_set_new(o, "method", json_string(method)) ||
      (params && json_object_set(o, "params", (json_t *)params))) {
    json_decref(o);
    return TG_ENOMEM;
  }
  return dump(o, out);
}

int tg_jsonrpc_request(char **out, long long id, const char *method, const json_t *params)
{
  return build_call(out, &id, method, params);
}

int tg_jsonrpc_notification(char **out, const char *method, const json_t *params)
{
  return build_call(out, NULL, method, params);
}

static int valid_id(const json_t *id)
{
  return json_is_integer(id) || json_is_string(id);
}

int tg_jsonrpc_result(char **out, const json_t *id, const json_t *result)
{
  json_t *o;
  *out = NULL;
  if (!valid_id(id))
    return TG_EINVAL;
  o = json_object();
  if (!o)
    return TG_ENOMEM;
  if (json_object_set_new(o, "jsonrpc", json_string("2.0")) ||
      json_object_set(o, "id", (json_t *)id) ||
      json_object_set_new(o, "result", result ? json_incref((json_t *)result) : json_object())) {
    json_decref(o);
    return TG_ENOMEM;
  }
  return dump(o, out);
}

int tg_jsonrpc_error(char **out, const json_t *id, int code, const char *message,
                     const json_t *data)
{
  json_t *o, *e;
  *out = NULL;
  if (id && !json_is_null(id) && !valid_id(id))
    return TG_EINVAL;
  o = json_object();
  e = json_object();
  if (!o || !e) {
    json_decref(o);
    json_decref(e);
    return TG_ENOMEM;
  }
  if (json_object_set_new(e, "code", json_integer(code)) ||
      json_object_set_new(e, "message", json_string(message ? message : "")) ||
      (data && json_object_set(e, "data", (json_t *)data)) ||
      json_object_set_new(o, "jsonrpc", json_string("2.0")) ||
      json_object_set_new(o, "id", id ? json_incref((json_t *)id) : json_null()) ||
      json_object_set_new(o, "error", e)) {
    json_decref(o);
    return TG_ENOMEM;
  }
  return dump(o, out);
}

static int invalid(tg_jsonrpc_msg *m, const char *reason)
{
  m->kind = TG_JSONRPC_INVALID;
  snprintf(m->reason, sizeof m->reason, "%s", reason);
  return TG_EINVAL;
}

static int decode_response(tg_jsonrpc_msg *m, json_t *id)
{
  json_t *result = json_object_get(m->root, "result");
  json_t *error = json_object_get(m->root, "error");
  json_t *code, *msg;

  if (result && error)
    return invalid(m, "response has both result and error");
  if (!result && !error)
    return invalid(m, "message has neither method, result nor error");
  if (result) {
    if (!valid_id(id))
      return invalid(m, "response id must be an integer or a string");
    m->id = id;
    m->result = result;
    m->kind = TG_JSONRPC_RESPONSE;
    return 0;
  }
  /* An error answering an unreadable request may carry a null or missing id. */
  if (id && !json_is_null(id) && !valid_id(id))
    return invalid(m, "error id must be an integer, a string or null");
  if (!json_is_object(error))
    return invalid(m, "error is not an object");
  code = json_object_get(error, "code");
  if (!json_is_integer(code))
    return invalid(m, "error without an integer code");
  msg = json_object_get(error, "message");
  if (msg && !json_is_string(msg))
    return invalid(m, "error message is not a string");
  m->id = json_is_null(id) ? NULL : id;
  m->is_error = 1;
  m->error_code = (long long)json_integer_value(code);
  m->error_message = msg ? json_string_value(msg) : "";
  m->error_data = json_object_get(error, "data");
  m->kind = TG_JSONRPC_RESPONSE;
  return 0;
}

int tg_jsonrpc_decode(const char *text, size_t len, tg_jsonrpc_msg *m)
{
  json_error_t jerr;
  json_t *v, *method, *id, *params;

  memset(m, 0, sizeof *m);
  m->root = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
  if (!m->root) {
    char why[160];
    snprintf(why, sizeof why, "not JSON: %.120s", jerr.text);
    return invalid(m, why);
  }
  if (!json_is_object(m->root))
    return invalid(m, json_is_array(m->root) ? "batches are not supported"
                                             : "message is not a JSON object");
  v = json_object_get(m->root, "jsonrpc");
  if (!json_is_string(v) || strcmp(json_string_value(v), "2.0") != 0)
    return invalid(m, "missing or wrong \"jsonrpc\":\"2.0\"");
  id = json_object_get(m->root, "id");
  method = json_object_get(m->root, "method");
  if (!method)
    return decode_response(m, id);
  if (!json_is_string(method))
    return invalid(m, "method is not a string");
  if (json_object_get(m->root, "result") || json_object_get(m->root, "error"))
    return invalid(m, "message has both method and result/error");
  params = json_object_get(m->root, "params");
  if (!valid_params(params))
    return invalid(m, "params must be an object or an array");
  m->method = json_string_value(method);
  m->params = params;
  if (!id) {
    m->kind = TG_JSONRPC_NOTIFICATION;
    return 0;
  }
  if (!valid_id(id))
    return invalid(m, "request id must be an integer or a string");
  m->id = id;
  m->kind = TG_JSONRPC_REQUEST;
  return 0;
}

void tg_jsonrpc_msg_clear(tg_jsonrpc_msg *m)
{
  if (!m)
    return;
  json_decref(m->root);
  memset(m, 0, sizeof *m);
}

int tg_jsonrpc_id_is(const json_t *id, long long want)
{
  return json_is_integer(id) && (long long)json_integer_value(id) == want;
}
