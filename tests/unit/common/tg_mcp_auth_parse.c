/* Unit tests for common/tg_mcp_auth_parse.c: WWW-Authenticate parsing, discovery URLs, URL,
 * resource and issuer checks, form encoding, query parameters, PKCE. */
#include "tg_unit.h"

#include "tg_err.h"
#include "tg_mcp_auth.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

static void test_challenge(void **state)
{
  tg_mcp_auth_challenge_params p;
  (void)state;
  assert_int_equal(
      tg_mcp_auth_parse_challenge("Bearer error=\"insufficient_scope\", scope=\"mcp:basic "
                                  "mcp:write\", resource_metadata=\"http://localhost:1/"
                                  ".well-known/oauth-protected-resource/mcp\"",
                                  &p),
      0);
  assert_true(p.bearer);
  assert_string_equal(p.error, "insufficient_scope");
  assert_string_equal(p.scope, "mcp:basic mcp:write");
  assert_string_equal(p.resource_metadata,
                      "http://localhost:1/.well-known/oauth-protected-resource/mcp");
  tg_mcp_auth_challenge_clear(&p);

  /* another scheme first, a token value, an escaped quote, case-insensitive names */
  assert_int_equal(
      tg_mcp_auth_parse_challenge("Basic realm=\"x\", BEARER Scope=read, error=\"a\\\"b\"", &p), 0);
  assert_string_equal(p.scope, "read");
  assert_string_equal(p.error, "a\"b");
  assert_null(p.resource_metadata);
  tg_mcp_auth_challenge_clear(&p);

  /* parameters of a later non-Bearer challenge are not Bearer's */
  assert_int_equal(tg_mcp_auth_parse_challenge("Bearer, Basic scope=\"no\"", &p), 0);
  assert_null(p.scope);
  tg_mcp_auth_challenge_clear(&p);

  assert_int_equal(tg_mcp_auth_parse_challenge("Basic realm=\"x\"", &p), TG_ENOTFOUND);
  tg_mcp_auth_challenge_clear(&p);
  /* an unterminated quoted value is dropped, the challenge is still Bearer */
  assert_int_equal(tg_mcp_auth_parse_challenge("Bearer scope=\"unterminated", &p), 0);
  assert_null(p.scope);
  tg_mcp_auth_challenge_clear(&p);
}

static void test_url_allowed(void **state)
{
  (void)state;
  assert_true(tg_mcp_auth_url_allowed("https://as.example.com/token"));
  assert_true(tg_mcp_auth_url_allowed("http://localhost:8080/x"));
  assert_true(tg_mcp_auth_url_allowed("http://127.0.0.1/x"));
  assert_true(tg_mcp_auth_url_allowed("http://[::1]:9/x"));
  assert_false(tg_mcp_auth_url_allowed("http://example.com/x"));
  assert_false(tg_mcp_auth_url_allowed("http://127.0.0.1.evil.com/x"));
  assert_false(tg_mcp_auth_url_allowed("https://user@as.example.com/"));
  assert_false(tg_mcp_auth_url_allowed("https://as.example.com/#frag"));
  assert_false(tg_mcp_auth_url_allowed("javascript:alert(1)"));
  assert_false(tg_mcp_auth_url_allowed("not a url"));
  assert_false(tg_mcp_auth_url_allowed(NULL));
}

/* fn(in) gives exactly the NULL-terminated list want. */
static void expect_urls(int (*fn)(const char *, char **, size_t *), const char *in,
                        const char *const *want)
{
  char *u[3];
  size_t n, i;
  assert_int_equal(fn(in, u, &n), 0);
  for (i = 0; want[i]; i++) {
    assert_true(i < n);
    assert_string_equal(u[i], want[i]);
  }
  assert_int_equal(n, i);
  while (n)
    free(u[--n]);
}

static int prm_urls(const char *in, char **u, size_t *n)
{
  return tg_mcp_auth_prm_urls(in, u, n);
}

static int as_urls(const char *in, char **u, size_t *n)
{
  return tg_mcp_auth_as_urls(in, u, n);
}

static void test_discovery_urls(void **state)
{
  char *u[3];
  size_t n;
  (void)state;
  expect_urls(prm_urls, "http://localhost:5/mcp",
              (const char *const[]){"http://localhost:5/.well-known/oauth-protected-resource/mcp",
                                    "http://localhost:5/.well-known/oauth-protected-resource",
                                    NULL});
  expect_urls(
      prm_urls, "https://a.example/",
      (const char *const[]){"https://a.example/.well-known/oauth-protected-resource", NULL});
  expect_urls(as_urls, "https://auth.example.com/tenant1",
              (const char *const[]){
                  "https://auth.example.com/.well-known/oauth-authorization-server/tenant1",
                  "https://auth.example.com/.well-known/openid-configuration/tenant1",
                  "https://auth.example.com/tenant1/.well-known/openid-configuration", NULL});
  expect_urls(as_urls, "http://127.0.0.1:9",
              (const char *const[]){"http://127.0.0.1:9/.well-known/oauth-authorization-server",
                                    "http://127.0.0.1:9/.well-known/openid-configuration", NULL});
  assert_int_equal(tg_mcp_auth_as_urls("::", u, &n), TG_EINVAL);
}

static void test_resource_and_issuer(void **state)
{
  (void)state;
  assert_true(tg_mcp_auth_resource_matches("http://localhost:5/mcp", "http://localhost:5/mcp"));
  assert_true(tg_mcp_auth_resource_matches("http://localhost:5/mcp", "http://localhost:5"));
  assert_true(tg_mcp_auth_resource_matches("http://LOCALHOST:5/mcp/x", "http://localhost:5/mcp/"));
  assert_false(
      tg_mcp_auth_resource_matches("http://localhost:5/mcp", "https://evil.example.com/mcp"));
  assert_false(tg_mcp_auth_resource_matches("http://localhost:5/mcp", "http://localhost:6/mcp"));
  assert_false(tg_mcp_auth_resource_matches("http://localhost:5/mcpx", "http://localhost:5/mcp"));
  assert_false(tg_mcp_auth_resource_matches("http://localhost:5/mcp", "http://localhost:5/mcp/a"));
  assert_false(tg_mcp_auth_resource_matches("http://localhost:5/mcp", NULL));

  assert_true(tg_mcp_auth_issuer_matches("https://as.example/t1", "https://as.example/t1"));
  assert_true(tg_mcp_auth_issuer_matches("https://as.example/t1", "https://as.example/t1/"));
  assert_false(tg_mcp_auth_issuer_matches("https://as.example/t1", "https://as.example/t2"));
  assert_false(tg_mcp_auth_issuer_matches("https://as.example", "https://evil.example"));
  assert_false(tg_mcp_auth_issuer_matches("https://as.example", NULL));
  assert_false(tg_mcp_auth_issuer_matches("/", "/"));
}

static void test_form_and_query(void **state)
{
  tg_buf b;
  char *v;
  (void)state;
  tg_buf_init(&b, 4096);
  assert_int_equal(tg_mcp_auth_form_add(&b, "scope", "mcp:basic mcp:write"), 0);
  assert_int_equal(tg_mcp_auth_form_add(&b, "redirect_uri", "http://127.0.0.1/cb?a=1&b"), 0);
  assert_string_equal(tg_buf_str(&b), "scope=mcp%3Abasic%20mcp%3Awrite&redirect_uri=http%3A%2F%2F"
                                      "127.0.0.1%2Fcb%3Fa%3D1%26b");
  tg_buf_free(&b);

  v = tg_mcp_auth_query_param("http://127.0.0.1/cb?code=test-auth-code&state=a%2Bb+c", "state");
  assert_string_equal(v, "a+b c");
  free(v);
  v = tg_mcp_auth_query_param("http://127.0.0.1/cb?xcode=1&code=2#frag", "code");
  assert_string_equal(v, "2");
  free(v);
  assert_null(tg_mcp_auth_query_param("http://127.0.0.1/cb?codes=1", "code"));
  assert_null(tg_mcp_auth_query_param("http://127.0.0.1/cb", "code"));
  v = tg_mcp_auth_query_param("http://x/?error=%zz", "error"); /* a bad escape stays as is */
  assert_string_equal(v, "%zz");
  free(v);
}

/* RFC 7636 appendix B. */
static void test_pkce(void **state)
{
  char v[44], c[44], c2[44];
  (void)state;
  tg_mcp_auth_s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", c);
  assert_string_equal(c, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
  tg_mcp_auth_pkce(v, c);
  assert_int_equal(strlen(v), 43);
  tg_mcp_auth_s256(v, c2);
  assert_string_equal(c, c2);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_challenge),      cmocka_unit_test(test_url_allowed),
      cmocka_unit_test(test_discovery_urls), cmocka_unit_test(test_resource_and_issuer),
      cmocka_unit_test(test_form_and_query), cmocka_unit_test(test_pkce),
  };
  if (sodium_init() < 0)
    return 1;
  return cmocka_run_group_tests(tests, NULL, NULL);
}
