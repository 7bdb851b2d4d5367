#!/usr/bin/env python3
"""GET /metrics passes `promtool check metrics` (Debian's prometheus package): metric names in
base units (seconds), counters ending in _total, HELP and TYPE lines right. A stack answers a few
requests first (a preflight and runs, so the check-latency histogram and the counters have
values), then /metrics is piped to promtool: no problem may be reported."""
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Stack, main  # noqa: E402

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def test_promtool_check_metrics():
    assert os.path.exists(PROMTOOL), "promtool not found (apt-get install prometheus)"
    with Stack() as s:
        s.connect()
        wf = s.create_workflow()
        st, _, body = s.gw("POST", "/api/workflows/%s/preflight" % wf, {})
        assert st == 200, (st, body)
        st, _, body = s.gw("POST", "/api/workflows/%s/run" % wf,
                           {"inputs": {"message": "hi", "a": 1, "b": 2}})
        assert st == 202, (st, body)
        assert s.gw("GET", "/api/workflows/wf_nope")[0] == 404
        st, h, text = s.gw("GET", "/metrics", user=None)
        assert st == 200 and h["content-type"].startswith("text/plain"), (st, h)
        assert "toolgate_check_duration_seconds_bucket" in text, text
        assert "_ms" not in text, "a metric not in base units:\n" + text
        count = [ln for ln in text.splitlines()
                 if ln.startswith("toolgate_check_duration_seconds_count ")]
        assert count and float(count[0].split()[1]) >= 2, text
        p = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                           text=True, timeout=60)
        assert p.returncode == 0 and not p.stdout.strip() and not p.stderr.strip(), \
            "promtool check metrics: rc %d\n%s%s\n--- metrics:\n%s" % (
                p.returncode, p.stdout, p.stderr, text)


if __name__ == "__main__":
    main(globals())
