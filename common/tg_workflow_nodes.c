/*
 * tg_workflow_nodes: the checks of one node's config, by node type, and the literal-secret rule
 * (rules in tg_workflow.h; README "Workflow definitions").
 *
 * Each check appends one error per problem and carries on, so a 422 lists them all. Fields are
 * named as the definition spells them under the node ("config.headers.Authorization"). An
 * Agent's tool names are not checked against any catalog here (this layer is pure): the gateway
 * warns about the ones the user's catalog cannot resolve, and the node fails with
 * tool_not_found. What a Code node needs of the machine (its packages, a javascript interpreter) is
 * not the pure validator's business: tg_workflow_check_code asks the caller's environment. The
 * literal-secret rule covers the places a credential belongs in a request the worker sends to a
 * user-supplied URL (API nodes and ad-hoc MCP nodes): sensitive headers and the authentication
 * object's token / value. Their value must reference a stored credential
 * ({{secrets.<name>}}, possibly inside a longer string such as "Bearer {{secrets.crm}}"), so
 * that no secret is stored in a definition, which is returned by the API and copied into runs.
 */
#include "tg_workflow_int.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define API_TIMEOUT_MAX_MS 300000
#define HITL_TIMEOUT_MAX_S 31536000
#define CODE_MAX_BYTES (256 * 1024)
#define CODE_TIMEOUT_MAX_S 3600
#define CODE_MEMORY_MIN_MB 16
#define CODE_MEMORY_MAX_MB 65536
#define AGENT_MAX_ITERATIONS 50

static const char *const input_types[] = {"string", "number", "boolean", "object", "array"};
static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"};
static const char *const auth_kinds[] = {"bearer", "api_key", "oauth2", "custom_header", "none"};
static const char *const secret_headers[] = {"authorization", "proxy-authorization", "x-api-key",
                                             "api-key", "cookie"};
static const char *const secret_words[] = {"token", "secret", "key"};
static const char *const code_languages[] = {"python", "javascript"};
static const char *const llm_providers[] = {"anthropic", "openai", "openai_compatible"};
static const char *const on_fail_modes[] = {"fail", "continue"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

void tg_workflow__err(json_t *errs, const char *node, const char *field, const char *fmt, ...)
{
  char msg[384];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  json_array_append_new(
      errs, json_pack("{s:s?, s:s?, s:s}", "node", node, "field", field, "message", msg));
}

#define add_err tg_workflow__err

static const char *str_member(const json_t *o, const char *key)
{
  return json_string_value(json_object_get(o, key));
}

static int nonempty(const char *s)
{
  return s && *s;
}

static int one_of(const char *s, const char *const *set, size_t n)
{
  for (size_t i = 0; s && i < n; i++)
    if (strcmp(s, set[i]) == 0)
      return 1;
  return 0;
}

/* Present and not null. */
static int given(const json_t *v)
{
  return v && !json_is_null(v);
}

/* An optional member that must be a string when given. */
static void opt_string(const json_t *config, const char *key, const char *id, json_t *errs)
{
  const json_t *v = json_object_get(config, key);
  char field[64];
  if (given(v) && !json_is_string(v)) {
    snprintf(field, sizeof field, "config.%s", key);
    add_err(errs, id, field, "must be a string");
  }
}

/* A required non-empty string member. */
static void req_string(const json_t *config, const char *key, const char *id, json_t *errs)
{
  char field[64];
  if (!nonempty(str_member(config, key))) {
    snprintf(field, sizeof field, "config.%s", key);
    add_err(errs, id, field, "needs a non-empty string");
  }
}

/* An optional integer member within [lo, hi]. */
static void opt_range(const json_t *config, const char *key, long long lo, long long hi,
                      const char *id, json_t *errs)
{
  const json_t *v = json_object_get(config, key);
  char field[64];
  if (!given(v))
    return;
  if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
    snprintf(field, sizeof field, "config.%s", key);
    add_err(errs, id, field, "must be an integer from %lld to %lld", lo, hi);
  }
}

/* An optional member of JSON type `type`: NULL when absent or null, or (after the error msg)
 * when of another type; field gets its name ("config.<key>"). */
static const json_t *opt_member(const json_t *config, const char *key, json_type type,
                                const char *msg, char *field, size_t len, const char *id,
                                json_t *errs)
{
  const json_t *v = json_object_get(config, key);
  if (!given(v))
    return NULL;
  snprintf(field, len, "config.%s", key);
  if (json_typeof(v) != type) {
    add_err(errs, id, field, "%s", msg);
    return NULL;
  }
  return v;
}

/* An optional object of string values (headers, query parameters). */
static void opt_string_map(const json_t *config, const char *key, const char *id, json_t *errs)
{
  char field[64];
  const json_t *m = opt_member(config, key, JSON_OBJECT, "must be an object of name to string",
                               field, sizeof field, id, errs);
  const json_t *v;
  const char *k;
  if (!m)
    return;
  json_object_foreach((json_t *)m, k, v)
  {
    if (!json_is_string(v)) {
      add_err(errs, id, field, "%s must be a string", k);
      return;
    }
  }
}

/* ---- the literal-secret rule ---- */

static int contains_word(const char *s, const char *word)
{
  size_t n = strlen(word);
  for (; *s; s++)
    if (strncasecmp(s, word, n) == 0)
      return 1;
  return 0;
}

static int sensitive_header(const char *name)
{
  for (size_t i = 0; i < COUNT(secret_headers); i++)
    if (strcasecmp(name, secret_headers[i]) == 0)
      return 1;
  for (size_t i = 0; i < COUNT(secret_words); i++)
    if (contains_word(name, secret_words[i]))
      return 1;
  return 0;
}

/* 1 when s holds a {{secrets.<name>}} reference. */
static int has_secret_ref(const char *s)
{
  size_t a, b, pos = 0, len;
  const char *ref;
  while (tg_workflow__next_template(s, pos, &a, &b)) {
    tg_workflow__ref(s, a, b, &ref, &len);
    if (len > 8 && strncmp(ref, "secrets.", 8) == 0)
      return 1;
    pos = b;
  }
  return 0;
}

static void literal_secret(const json_t *v, const char *field, const char *id, json_t *errs)
{
  if (json_is_string(v) && !has_secret_ref(json_string_value(v)))
    add_err(errs, id, field,
            "literal secret in %s: store it as a credential and write {{secrets.<name>}}", field);
}

static void check_secret_headers(const json_t *config, const char *id, json_t *errs)
{
  const json_t *h = json_object_get(config, "headers"), *v;
  const char *k;
  if (!json_is_object(h))
    return;
  json_object_foreach((json_t *)h, k, v)
  {
    char field[192];
    if (!sensitive_header(k))
      continue;
    snprintf(field, sizeof field, "config.headers.%s", k);
    literal_secret(v, field, id, errs);
  }
}

/* ---- per type ---- */

static void check_start(const json_t *config, const char *id, json_t *errs)
{
  const json_t *vars = json_object_get(config, "inputVariables");
  size_t i;
  const json_t *v;
  if (!given(vars))
    return;
  if (!json_is_array(vars)) {
    add_err(errs, id, "config.inputVariables", "must be an array of {name, type, required}");
    return;
  }
  json_array_foreach(vars, i, v)
  {
    char field[64];
    const char *name = str_member(v, "name"), *type = str_member(v, "type");
    const json_t *req = json_object_get(v, "required"), *secret = json_object_get(v, "secret");
    snprintf(field, sizeof field, "config.inputVariables[%zu]", i);
    if (!json_is_object(v) || !nonempty(name)) {
      add_err(errs, id, field, "needs a non-empty name");
      continue;
    }
    if (json_object_get(v, "type") && !one_of(type, input_types, COUNT(input_types)))
      add_err(errs, id, field, "type of %s must be string, number, boolean, object or array", name);
    if (req && !json_is_boolean(req))
      add_err(errs, id, field, "required of %s must be a boolean", name);
    if (secret && !json_is_boolean(secret))
      add_err(errs, id, field, "secret of %s must be a boolean", name);
    else if (json_is_true(secret) && strcmp(type ? type : "", "string") != 0)
      add_err(errs, id, field, "secret input %s must have type string", name);
  }
}

static void check_mcp(const json_t *config, const char *id, json_t *errs)
{
  const json_t *provider = json_object_get(config, "provider");
  const json_t *url = json_object_get(config, "url");
  const json_t *args = json_object_get(config, "arguments");
  const json_t *connector = json_object_get(config, "connector_id");

  if (!nonempty(str_member(config, "tool")))
    add_err(errs, id, "config.tool", "MCP node needs a tool name");
  if (given(provider) && !nonempty(json_string_value(provider)))
    add_err(errs, id, "config.provider", "must be a non-empty string");
  if (given(url)) {
    const char *u = json_string_value(url);
    if (!u || (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0))
      add_err(errs, id, "config.url", "must be an http(s) URL");
  }
  if (given(connector) && !nonempty(json_string_value(connector)))
    add_err(errs, id, "config.connector_id", "must be a non-empty string");
  if (given(connector) && (given(provider) || given(url)))
    add_err(errs, id, "config.connector_id", "give either connector_id or provider / url");
  if (!given(provider) && !given(url) && !given(connector))
    add_err(errs, id, "config.provider",
            "MCP node needs a provider or a connector_id (managed mode) or a url (ad-hoc mode)");
  opt_string_map(config, "headers", id, errs);
  if (given(url))
    check_secret_headers(config, id, errs);
  if (given(args) && !json_is_object(args))
    add_err(errs, id, "config.arguments", "must be an object");
}

/* The object form of an API node's authentication. */
static void check_auth_object(const json_t *auth, const char *id, json_t *errs)
{
  const char *type = str_member(auth, "type");
  const char *need[3] = {NULL, NULL, NULL};
  if (type && strcmp(type, "bearer") == 0) {
    need[0] = "token";
  } else if (type && strcmp(type, "api_key") == 0) {
    const char *in = str_member(auth, "in");
    need[0] = "name";
    need[1] = "value";
    if (!in || (strcmp(in, "header") != 0 && strcmp(in, "query") != 0))
      add_err(errs, id, "config.authentication.in", "must be \"header\" or \"query\"");
  } else if (type && strcmp(type, "custom_header") == 0) {
    need[0] = "name";
    need[1] = "value";
  } else if (type && strcmp(type, "oauth2") == 0) {
    need[0] = "credential";
  } else {
    add_err(errs, id, "config.authentication.type",
            "must be \"bearer\", \"api_key\", \"custom_header\" or \"oauth2\"");
    return;
  }
  for (size_t i = 0; need[i]; i++) {
    char field[64];
    snprintf(field, sizeof field, "config.authentication.%s", need[i]);
    if (!nonempty(str_member(auth, need[i])))
      add_err(errs, id, field, "%s authentication needs a non-empty string %s", type, need[i]);
  }
  literal_secret(json_object_get(auth, "token"), "config.authentication.token", id, errs);
  literal_secret(json_object_get(auth, "value"), "config.authentication.value", id, errs);
}

/* The managed form of an API node: {connector_id, operation?, payload?, timeout_ms?}; the
 * connector's existence is checked when the node runs. */
static void check_api_connector(const json_t *config, const char *id, json_t *errs)
{
  if (!nonempty(str_member(config, "connector_id")))
    add_err(errs, id, "config.connector_id", "must be a non-empty string");
  if (given(json_object_get(config, "url")))
    add_err(errs, id, "config.url", "give either url or connector_id");
  opt_string(config, "operation", id, errs);
  opt_range(config, "timeout_ms", 1, API_TIMEOUT_MAX_MS, id, errs);
}

static void check_api(const json_t *config, const char *id, json_t *errs)
{
  const json_t *method = json_object_get(config, "method");
  const json_t *auth = json_object_get(config, "authentication");
  const char *url = str_member(config, "url");

  if (given(json_object_get(config, "connector_id"))) {
    check_api_connector(config, id, errs);
    return;
  }
  if (given(method) && !one_of(json_string_value(method), methods, COUNT(methods)))
    add_err(errs, id, "config.method", "must be GET, POST, PUT, PATCH, DELETE or HEAD");
  if (!nonempty(url))
    add_err(errs, id, "config.url", "API node needs a url");
  else if (strncmp(url, "{{", 2) != 0 && strncmp(url, "http://", 7) != 0 &&
           strncmp(url, "https://", 8) != 0)
    add_err(errs, id, "config.url", "must be an http(s) URL (templates allowed)");
  opt_string(config, "endpoint", id, errs);
  opt_string_map(config, "headers", id, errs);
  opt_string_map(config, "query_params", id, errs);
  check_secret_headers(config, id, errs);
  if (json_is_object(auth))
    check_auth_object(auth, id, errs);
  else if (given(auth) && !one_of(json_string_value(auth), auth_kinds, COUNT(auth_kinds)))
    add_err(errs, id, "config.authentication",
            "must be \"bearer\", \"api_key\", \"oauth2\", \"custom_header\", \"none\" or an "
            "object {type, ...}");
  opt_string(config, "credential", id, errs);
  opt_range(config, "timeout_ms", 1, API_TIMEOUT_MAX_MS, id, errs);
  opt_string(config, "idempotency_key", id, errs);
}

static void check_hitl(const json_t *config, const char *id, json_t *errs)
{
  const json_t *d = json_object_get(config, "allowedDecisions"), *v;
  size_t i;
  req_string(config, "reviewTitle", id, errs);
  if (!json_is_string(json_object_get(config, "message")))
    add_err(errs, id, "config.message", "needs a string");
  opt_string(config, "priority", id, errs);
  opt_range(config, "timeout_s", 1, HITL_TIMEOUT_MAX_S, id, errs);
  if (!json_is_array(d) || json_array_size(d) == 0) {
    add_err(errs, id, "config.allowedDecisions", "needs a non-empty array of decisions");
    return;
  }
  json_array_foreach(d, i, v)
  {
    if (!nonempty(json_string_value(v))) {
      add_err(errs, id, "config.allowedDecisions", "each decision must be a non-empty string");
      return;
    }
    for (size_t k = 0; k < i; k++)
      if (json_equal(v, json_array_get(d, k))) {
        add_err(errs, id, "config.allowedDecisions", "decision %s is listed twice",
                json_string_value(v));
        return;
      }
  }
}

static void check_end(const json_t *config, const char *id, json_t *errs)
{
  const json_t *outs = json_object_get(config, "outputVariables");
  size_t i;
  const json_t *v;
  if (!given(outs) || json_is_object(outs))
    return;
  if (!json_is_array(outs)) {
    add_err(errs, id, "config.outputVariables",
            "must be an array of {name, type} or {name, value}, or an object");
    return;
  }
  json_array_foreach(outs, i, v)
  {
    char field[64];
    const char *name = str_member(v, "name");
    snprintf(field, sizeof field, "config.outputVariables[%zu]", i);
    if (!json_is_object(v) || !nonempty(name)) {
      add_err(errs, id, field, "needs a non-empty name");
      continue;
    }
    if (given(json_object_get(v, "type")) && !json_is_string(json_object_get(v, "type")))
      add_err(errs, id, field, "type of %s must be a string", name);
    for (size_t k = 0; k < i; k++)
      if (json_equal(json_object_get(json_array_get(outs, k), "name"), json_object_get(v, "name")))
        add_err(errs, id, field, "output %s is listed twice", name);
  }
}

/* An optional array of non-empty strings (a Code node's packages and outputs). */
static void opt_names(const json_t *config, const char *key, const char *id, json_t *errs)
{
  char field[64];
  const json_t *a = opt_member(config, key, JSON_ARRAY, "must be an array of names", field,
                               sizeof field, id, errs);
  const json_t *v;
  size_t i;
  if (!a)
    return;
  json_array_foreach(a, i, v)
  {
    if (!nonempty(json_string_value(v)) || json_string_length(v) > 128) {
      add_err(errs, id, field, "each name must be a non-empty string of at most 128 bytes");
      return;
    }
  }
}

static void check_code(const json_t *config, const char *id, json_t *errs)
{
  const json_t *lang = json_object_get(config, "language");
  const json_t *code = json_object_get(config, "code");
  if (given(lang) && !one_of(json_string_value(lang), code_languages, COUNT(code_languages)))
    add_err(errs, id, "config.language", "must be \"python\" or \"javascript\"");
  if (!nonempty(json_string_value(code)))
    add_err(errs, id, "config.code", "needs a non-empty string");
  else if (json_string_length(code) > CODE_MAX_BYTES)
    add_err(errs, id, "config.code", "must be at most %d bytes", CODE_MAX_BYTES);
  opt_names(config, "packages", id, errs);
  opt_names(config, "outputs", id, errs);
  opt_range(config, "timeout_s", 1, CODE_TIMEOUT_MAX_S, id, errs);
  opt_range(config, "memory_mb", CODE_MEMORY_MIN_MB, CODE_MEMORY_MAX_MB, id, errs);
}

json_t *tg_workflow_check_code(const json_t *definition, const tg_workflow_code_env *env,
                               int *unknown)
{
  tg_graph *g = NULL;
  json_t *errs = json_array();
  if (unknown)
    *unknown = 0;
  if (!errs || tg_graph_build(&g, definition) != 0) {
    json_decref(errs);
    return NULL;
  }
  for (size_t i = 0; i < tg_graph_size(g); i++) {
    const tg_graph_node *gn = tg_graph_node_at(g, i);
    const char *lang = str_member(gn->config, "language");
    const json_t *pkgs = json_object_get(gn->config, "packages");
    char missing[160];
    int ok;
    if (gn->type != TG_NODE_CODE)
      continue;
    if (lang && strcmp(lang, "javascript") == 0 && !env->javascript)
      add_err(errs, gn->id, "config.language",
              "javascript Code nodes cannot run here: no javascript interpreter is configured "
              "(TOOLGATE_SANDBOX_NODE)");
    if (!json_is_array(pkgs) || json_array_size(pkgs) == 0 || !env->packages_available)
      continue;
    ok = env->packages_available(pkgs, missing, sizeof missing);
    if (ok < 0 && unknown)
      *unknown = 1;
    else if (ok == 0)
      add_err(errs, gn->id, "config.packages", "package '%s' is not installed", missing);
  }
  tg_graph_free(g);
  if (json_array_size(errs) == 0) {
    json_decref(errs);
    return NULL;
  }
  return errs;
}

/* An optional number member within [lo, hi]. */
static void opt_number(const json_t *config, const char *key, double lo, double hi, const char *id,
                       json_t *errs)
{
  const json_t *v = json_object_get(config, key);
  char field[64];
  if (!given(v))
    return;
  if (!json_is_number(v) || json_number_value(v) < lo || json_number_value(v) > hi) {
    snprintf(field, sizeof field, "config.%s", key);
    add_err(errs, id, field, "must be a number from %g to %g", lo, hi);
  }
}

/* The model of an Agent (required) or a Self-Review node (optional): {provider, modelName,
 * displayName?, credential?, baseUrl?}. */
static void check_model(const json_t *config, int required, const char *id, json_t *errs)
{
  char field[64];
  const json_t *m =
      opt_member(config, "model", JSON_OBJECT, "must be an object {provider, modelName}", field,
                 sizeof field, id, errs);
  if (!m) {
    if (required && !given(json_object_get(config, "model")))
      add_err(errs, id, "config.model", "needs an object {provider, modelName}");
    return;
  }
  if (!one_of(str_member(m, "provider"), llm_providers, COUNT(llm_providers)))
    add_err(errs, id, "config.model.provider",
            "must be \"anthropic\", \"openai\" or \"openai_compatible\"");
  if (!nonempty(str_member(m, "modelName")))
    add_err(errs, id, "config.model.modelName", "needs a non-empty string");
  opt_string(m, "credential", id, errs);
}

static void check_agent(const json_t *config, const char *id, json_t *errs)
{
  char field[64];
  if (!json_is_string(json_object_get(config, "prompt")))
    add_err(errs, id, "config.prompt", "needs a string");
  check_model(config, 1, id, errs);
  opt_names(config, "tools", id, errs);
  opt_range(config, "maxIterations", 1, AGENT_MAX_ITERATIONS, id, errs);
  opt_number(config, "temperature", 0, 2, id, errs);
  opt_member(config, "outputSchema", JSON_OBJECT, "must be a JSON schema object", field,
             sizeof field, id, errs);
}

/* config.target, when given, is checked against the graph (tg_workflow.c). */
static void check_self_review(const json_t *config, const char *id, json_t *errs)
{
  const json_t *on_fail = json_object_get(config, "onFail");
  const json_t *target = json_object_get(config, "target");
  req_string(config, "reviewPrompt", id, errs);
  if (!json_is_number(json_object_get(config, "minConfidence")))
    add_err(errs, id, "config.minConfidence", "needs a number from 0 to 1");
  else
    opt_number(config, "minConfidence", 0, 1, id, errs);
  if (given(on_fail) && !one_of(json_string_value(on_fail), on_fail_modes, COUNT(on_fail_modes)))
    add_err(errs, id, "config.onFail", "must be \"fail\" or \"continue\"");
  if (given(target) && !json_is_string(target) && !json_is_integer(target))
    add_err(errs, id, "config.target", "must be a node id");
  check_model(config, 0, id, errs);
}

typedef void (*check_fn)(const json_t *config, const char *id, json_t *errs);

static const check_fn checks[TG_NODE_TYPE_COUNT] = {
    [TG_NODE_START] = check_start, [TG_NODE_END] = check_end,
    [TG_NODE_MCP] = check_mcp,     [TG_NODE_API] = check_api,
    [TG_NODE_HITL] = check_hitl,   [TG_NODE_CODE] = check_code,
    [TG_NODE_AGENT] = check_agent, [TG_NODE_SELF_REVIEW] = check_self_review,
};

void tg_workflow__check_config(const tg_graph_node *gn, json_t *errs)
{
  const char *id = gn->id;
  const json_t *raw = json_object_get(gn->def, "config");
  if (gn->type >= TG_NODE_TYPE_COUNT)
    return; /* unknown: reported by the graph */
  if (given(raw) && !json_is_object(raw))
    add_err(errs, id, "config", "must be an object");
  if (checks[gn->type]) /* Conditional: its branches are the graph's */
    checks[gn->type](gn->config, id, errs);
}
