#!/usr/bin/env python3
"""Integration test of composio-sim: starts the real binary on a free loopback port and talks
to it as a client would (urllib, no redirects followed). Python standard library only.
Prints "N passed, M failed" and exits non-zero on any failure."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from harness import free_port  # noqa: E402  (below the ephemeral range)

BUILD = os.environ.get("TOOLGATE_BUILD_DIR", os.path.join(os.path.dirname(__file__), "../../build"))
KEY = "ak_integration_key"
MCP = "http://127.0.0.1:3001/mcp"

passed = 0
failed = 0




class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


OPENER = urllib.request.build_opener(NoRedirect)


def call(base, method, path, body=None, key=KEY, headers=None):
    """Returns (status, headers, parsed JSON or raw text)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method)
    if key is not None:
        req.add_header("x-api-key", key)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        resp = OPENER.open(req, timeout=10)
        status, hdrs, raw = resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        status, hdrs, raw = e.code, e.headers, e.read()
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw.decode(errors="replace")
    return status, hdrs, parsed


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print(f"FAIL {name} {detail}", flush=True)


def main():
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, SIM_AUTH_CONFIGS="gmail=ac_gmail1,slack=ac_slack1")
    proc = subprocess.Popen(
        [os.path.join(BUILD, "composio-sim"), "--listen", f"127.0.0.1:{port}", "--api-key", KEY,
         "--mcp-url", MCP], env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                if call(base, "GET", "/healthz", key=None)[0] == 200:
                    break
            except OSError:
                time.sleep(0.05)
        else:
            raise RuntimeError("composio-sim did not come up")
        run(base)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = -1
        err = proc.stderr.read().decode(errors="replace")
        check("clean exit on SIGTERM", rc == 0, f"rc={rc}")
        check("api key never logged", KEY not in err)
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


def run(base):
    # 401 without and with a wrong key, body and rate-limit headers.
    for key in (None, "ak_wrong"):
        st, h, body = call(base, "GET", "/api/v3/connected_accounts", key=key)
        check(f"401 key={key}", st == 401, st)
        check(f"401 body key={key}", body == {"error": {"message": "Invalid API key: ak_****",
                                                        "code": 10401, "slug": "HTTP_Unauthorized",
                                                        "status": 401}}, body)
        check("rate headers", h.get("X-RateLimit") == "2000" and
              h.get("X-RateLimit-Window-Size") == "60s" and h.get("X-RateLimit-Remaining") is not None)

    # Link -> 201 and an INITIATED account.
    st, _, link = call(base, "POST", "/api/v3/connected_accounts/link",
                       {"auth_config_id": "ac_gmail1", "user_id": "alice",
                        "callback_url": "http://app.local/cb?state=xyz"})
    check("link 201", st == 201, (st, link))
    check("link shape", link["link_token"].startswith("lk_") and
          link["redirect_url"] == f"{base}/link/{link['link_token']}" and
          link["connected_account_id"].startswith("ca_") and len(link["connected_account_id"]) == 15
          and link["expires_at"].endswith("Z"), link)
    ca = link["connected_account_id"]
    st, _, acc = call(base, "GET", f"/api/v3/connected_accounts/{ca}")
    check("initiated", st == 200 and acc["status"] == "INITIATED" and
          acc["state"]["val"]["redirectUrl"] == link["redirect_url"] and
          acc["toolkit"]["slug"] == "gmail" and acc["auth_config"]["id"] == "ac_gmail1", acc)
    st, _, body = call(base, "POST", "/api/v3/connected_accounts/link", {"user_id": "alice"})
    check("link missing field 400", st == 400 and body["error"]["code"] == 10400, body)

    # Hosted link page -> 302 to the callback with status and id appended.
    st, h, _ = call(base, "GET", "/link/" + link["link_token"], key=None)
    check("link page 302", st == 302, st)
    check("302 location", h.get("Location") ==
          f"http://app.local/cb?state=xyz&status=success&connected_account_id={ca}", h.get("Location"))
    st, _, acc = call(base, "GET", f"/api/v3.1/connected_accounts/{ca}")
    check("active", st == 200 and acc["status"] == "ACTIVE" and
          acc["state"]["val"]["access_token"].startswith("tok_"), acc)
    st, _, _ = call(base, "GET", "/link/" + link["link_token"], key=None)
    check("used token 404", st == 404, st)

    # Paging over 5 accounts of bob (3 gmail, 2 slack) with limit=2.
    call(base, "POST", "/_sim/reset", {}, key=None)
    made = []
    for tk in ("gmail", "slack", "gmail", "slack", "gmail"):
        st, _, a = call(base, "POST", "/_sim/accounts",
                        {"user_id": "bob", "toolkit_slug": tk, "status": "ACTIVE"}, key=None)
        check("sim create 201", st == 201, st)
        made.append(a["id"])
        time.sleep(0.002)
    call(base, "POST", "/_sim/accounts", {"user_id": "carol", "toolkit_slug": "gmail"}, key=None)
    seen, cursor, pages = [], None, 0
    while True:
        q = "/api/v3/connected_accounts?user_ids=bob&limit=2" + (f"&cursor={cursor}" if cursor else "")
        st, _, page = call(base, "GET", q)
        pages += 1
        check("page 200", st == 200 and page["total_items"] == 5 and page["total_pages"] == 3 and
              page["current_page"] == pages, page)
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None or pages > 5:
            break
    check("3 pages, null at end", pages == 3 and cursor is None, pages)
    check("all 5 newest first", seen == list(reversed(made)), (seen, made))
    st, _, page = call(base, "GET", "/api/v3/connected_accounts?user_ids=bob,carol&toolkit_slugs=slack")
    check("filters AND/OR", st == 200 and page["total_items"] == 2 and
          all(i["toolkit"]["slug"] == "slack" for i in page["items"]), page)
    st, _, page = call(base, "GET", "/api/v3/connected_accounts?user_ids=bob&user_ids=carol"
                                    "&toolkit_slugs%5B%5D=gmail")
    check("repeated keys and []", st == 200 and page["total_items"] == 4, page)
    st, _, page = call(base, "GET", "/api/v3/connected_accounts?limit=500")
    check("limit clamps", st == 200 and page["total_items"] == 6 and page["next_cursor"] is None, page)

    # Fail injection: 429 with Retry-After and the documented body, then back to normal.
    call(base, "POST", "/_sim/fail", {"count": 1, "status": 429, "retry_after": 3}, key=None)
    st, h, body = call(base, "GET", "/api/v3/connected_accounts")
    check("forced 429", st == 429 and h.get("Retry-After") == "3" and
          body == {"message": "Rate limit exceeded. Limit: 2000 requests per 1 minutes"}, (st, body))
    st, _, _ = call(base, "GET", "/api/v3/connected_accounts")
    check("after failures", st == 200, st)
    call(base, "POST", "/_sim/fail", {"count": 1, "status": 503}, key=None)
    st, _, body = call(base, "GET", f"/api/v3/connected_accounts/{made[0]}")
    check("forced 503 envelope", st == 503 and body["error"]["status"] == 503, body)

    # Latency injection delays API answers.
    call(base, "POST", "/_sim/latency", {"ms": 400}, key=None)
    t0 = time.monotonic()
    st, _, _ = call(base, "GET", f"/api/v3/connected_accounts/{made[0]}")
    dt = time.monotonic() - t0
    check("latency", st == 200 and dt >= 0.38, dt)
    call(base, "POST", "/_sim/latency", {"ms": 0}, key=None)
    t0 = time.monotonic()
    call(base, "GET", f"/api/v3/connected_accounts/{made[0]}")
    check("latency off", time.monotonic() - t0 < 0.3)

    # Delete: 200 once, then 404 on get and delete; gone from lists.
    st, _, body = call(base, "DELETE", f"/api/v3/connected_accounts/{made[0]}")
    check("delete", st == 200 and body == {"success": True}, body)
    st, _, body = call(base, "GET", f"/api/v3/connected_accounts/{made[0]}")
    check("deleted 404", st == 404 and "does not exist or was deleted" in body["error"]["message"],
          body)
    st, _, _ = call(base, "DELETE", f"/api/v3/connected_accounts/{made[0]}")
    check("delete twice 404", st == 404, st)
    st, _, page = call(base, "GET", "/api/v3/connected_accounts?user_ids=bob")
    check("deleted not listed", page["total_items"] == 4, page)

    # Status PATCH, expiry of INITIATED, failed link outcome.
    st, _, _ = call(base, "PATCH", f"/api/v3/connected_accounts/{made[1]}/status", {"enabled": False})
    _, _, acc = call(base, "GET", f"/api/v3/connected_accounts/{made[1]}")
    check("disabled", st == 200 and acc["status"] == "INACTIVE" and acc["is_disabled"] is True, acc)
    _, _, l2 = call(base, "POST", "/api/v3/connected_accounts/link",
                    {"auth_config_id": "ac_slack1", "user_id": "dave"})
    call(base, "POST", "/_sim/expire-initiated", {}, key=None)
    _, _, acc = call(base, "GET", f"/api/v3/connected_accounts/{l2['connected_account_id']}")
    check("expired", acc["status"] == "EXPIRED" and acc["status_reason"] ==
          "Connection initiation did not complete within 10 minutes" and
          "expired_at" in acc["state"]["val"], acc)
    st, _, _ = call(base, "GET", "/link/" + l2["link_token"], key=None)
    check("expired link 404", st == 404, st)
    _, _, l3 = call(base, "POST", "/api/v3/connected_accounts/link",
                    {"auth_config_id": "ac_slack1", "user_id": "dave", "callback_url": "http://x/cb"})
    call(base, "POST", "/_sim/link-outcome", {"outcome": "failed"}, key=None)
    st, h, _ = call(base, "GET", "/link/" + l3["link_token"], key=None)
    check("failed link", st == 302 and h.get("Location") ==
          f"http://x/cb?status=failed&connected_account_id={l3['connected_account_id']}", h.get("Location"))
    call(base, "PATCH", f"/_sim/accounts/{made[2]}", {"auth_refresh_required": True}, key=None)
    _, _, acc = call(base, "GET", f"/api/v3/connected_accounts/{made[2]}")
    check("auth_refresh_required", acc.get("auth_refresh_required") is True, acc)
    _, _, acc = call(base, "GET", f"/api/v3/connected_accounts/{made[3]}")
    check("no auth_refresh_required by default", "auth_refresh_required" not in acc, acc)

    # Generate returns the configured MCP URL with user_id.
    st, _, body = call(base, "POST", "/api/v3/mcp/servers/generate",
                       {"mcp_server_id": "srv-1", "user_ids": ["alice smith"],
                        "connected_account_ids": [made[1]]})
    check("generate", st == 200 and body["mcp_url"] == MCP and
          body["user_ids_url"] == [MCP + "?user_id=alice%20smith"] and
          body["connected_account_urls"] == [MCP + "?connected_account_id=" + made[1]], body)
    st, _, body = call(base, "GET", "/api/v3/nope")
    check("unknown route 404", st == 404 and body["error"]["code"] == 10404, body)

    # Stats count API calls by route.
    st, _, stats = call(base, "GET", "/_sim/stats", key=None)
    check("stats", st == 200 and stats["by_route"]["generate"] == 1 and
          stats["by_route"]["delete"] == 2 and stats["by_route"]["status"] == 1 and
          stats["calls"] >= 20, stats)


if __name__ == "__main__":
    main()
