"""GET /api/agents/available-tools for a user with TOOLS (default 10,000) tools: an API connector
with that many operations is synced into the catalog, then REQUESTS GETs on one keep-alive
connection are timed from the request's first byte to the body's last (the body is read, not
parsed). The answer is cached per user and catalog generation (gateway/gw_catalog.c), so after
the first GET each one is served from memory; the first (cold) GET is reported apart.
"""
import http.client
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tests", "integration"))
from harness import Stack, wait_until  # noqa: E402

TOOLS = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
REQUESTS = int(sys.argv[2]) if len(sys.argv) > 2 else 2000


def main():
    with Stack(mcp=False, extra_env={"TOOLGATE_LOG_LEVEL": "warn"}) as s:
        ops = [{"name": "op_%05d" % i, "method": "POST", "path": "/things/%d" % i,
                "description": "Operation number %d of the bench connector" % i,
                "example_payload": {"id": "x", "count": 1, "tags": ["a"], "meta": {"ok": True}}}
               for i in range(TOOLS)]
        with s.db() as c:
            c.execute("INSERT INTO users (id, credits, created_at) VALUES ('alice', 0, 0)")
            c.execute("INSERT INTO connectors (id, user_id, kind, name, config, version, "
                      "created_at, updated_at) VALUES ('con_bench', 'alice', 'api', 'bench', ?, 1, "
                      "0, 0)", (json.dumps({"base_url": "https://api.example.com",
                                            "operations": ops}),))
        t0 = time.monotonic()
        s.restart_gateway({"TOOLGATE_LOG_LEVEL": "warn"})  # the start-up sync writes the tools
        wait_until(lambda: s.query("SELECT count(*) AS n FROM tools WHERE user_id='alice' AND "
                                   "deleted_at IS NULL")[0]["n"] == TOOLS, 120, "the sync")
        sync_s = time.monotonic() - t0
        conn = http.client.HTTPConnection("127.0.0.1", s.gw_port, timeout=30)
        hdr = {"X-User-Id": "alice"}

        def get():
            t = time.perf_counter()
            conn.request("GET", "/api/agents/available-tools", headers=hdr)
            r = conn.getresponse()
            body = r.read()
            assert r.status == 200, r.status
            return (time.perf_counter() - t) * 1000, len(body)

        cold, size = get()
        lat = sorted(get()[0] for _ in range(REQUESTS))
        n = len(lat)
        print("tools=%d body=%d bytes sync=%.1fs cold=%.1f ms" % (TOOLS + 3, size, sync_s, cold))
        print("warm GETs=%d p50=%.2f ms p90=%.2f ms p99=%.2f ms max=%.2f ms" % (
            n, lat[n // 2], lat[int(n * 0.9)], lat[int(n * 0.99)], lat[-1]))
        conn.close()


if __name__ == "__main__":
    main()
