/*
 * gw_identity: who is calling an /api route (gw_identify). An HS256 bearer token (tg_jwt,
 * secret TOOLGATE_JWT_SECRET, exp at most TOOLGATE_JWT_MAX_LIFETIME_S ahead) when the request
 * carries Authorization; X-User-Id only when
 * TOOLGATE_TRUST_USER_HEADER=1 (development, or behind an authenticating proxy).
 *
 * Invariants: a bearer token, when present, decides (a bad one is never rescued by X-User-Id);
 * a user id is 1 to GW_USER_MAX printable ASCII bytes; every refusal is 401 with
 * WWW-Authenticate: Bearer (RFC 6750 section 3) and a sentence saying what is missing.
 */
#include "gw.h"

#include "tg_jwt.h"
#include "tg_clock.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static int printable(const char *s, size_t *len)
{
  size_t n = 0;
  for (; s[n]; n++)
    if ((unsigned char)s[n] < 0x21 || (unsigned char)s[n] > 0x7e)
      return 0;
  *len = n;
  return 1;
}

/* 401 with the reason; WWW-Authenticate names the scheme (RFC 6750 section 3). */
static int unauthorized(tg_httpd_req *req, const char *msg)
{
  static const char *const hdrs[] = {"WWW-Authenticate: Bearer realm=\"toolgate\"", NULL};
  gw_respond_error(req, 401, "unauthorized", msg, NULL, hdrs);
  return TG_EAUTH;
}

int gw_identify(gw_app *app, tg_httpd_req *req, char *user)
{
  const char *auth = tg_httpd_header(req, "Authorization");
  const char *secret = tg_secret_reveal(&app->cfg.jwt_secret);
  const char *h;
  size_t n = 0;

  /* A bearer token, when present, decides: a bad token is never rescued by X-User-Id. */
  if (auth) {
    const char *why = NULL;
    char msg[160];
    int rc;
    if (strncasecmp(auth, "Bearer ", 7) != 0)
      return unauthorized(req, "Authorization must be \"Bearer <token>\".");
    if (!secret)
      return unauthorized(req, "Bearer tokens are not accepted: TOOLGATE_JWT_SECRET is not set.");
    auth += 7;
    while (*auth == ' ')
      auth++;
    rc = tg_jwt_verify_hs256(auth, strlen(auth), (const unsigned char *)secret, strlen(secret),
                             tg_now_ms() / 1000, app->cfg.jwt_max_lifetime_s, user, GW_USER_MAX + 1,
                             &why);
    if (rc == 0)
      return 0;
    snprintf(msg, sizeof msg, "Invalid bearer token: %s.", why ? why : "rejected");
    tg_debug("auth_rejected", "{s:s}", "reason", why ? why : "rejected");
    return unauthorized(req, msg);
  }
  if (!app->cfg.trust_user_header)
    return unauthorized(req, secret ? "Missing Authorization: Bearer <token>."
                                    : "No accepted identity: set TOOLGATE_JWT_SECRET (bearer "
                                      "tokens) or TOOLGATE_TRUST_USER_HEADER=1.");
  h = tg_httpd_header(req, "X-User-Id");
  if (!h)
    return unauthorized(req, "Missing Authorization: Bearer <token> or X-User-Id header.");
  if (!printable(h, &n) || n == 0 || n > GW_USER_MAX)
    return unauthorized(req, "X-User-Id must be 1 to 128 printable ASCII characters.");
  memcpy(user, h, n + 1);
  return 0;
}
