"""Fan-out: one run of Start -> FAN API nodes in parallel -> End, each a GET to a local target
that answers after DELAY ms (a threaded Python server on 127.0.0.1). Reports the time from the
first request reaching the target to the last answer (the fan-out itself, without claim and
journal), and the run's wall time from created_at to finished_at. Target (issue 13): FAN=50 at
100 ms finishes in <= 150 ms.

Usage: python3 bench/engine/fanout.py [FAN] [DELAY_MS] [REPEAT]   (via bench/engine/run.sh's
environment: TOOLGATE_BUILD_DIR names the Release tree)
"""
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tests", "integration"))
from harness import Stack, free_port  # noqa: E402


def target(delay_s, log):
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_GET(self):
            t0 = time.monotonic()
            time.sleep(delay_s)
            body = b'{"ok": true}'
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            log.append((t0, time.monotonic()))

    class Server(ThreadingHTTPServer):
        request_queue_size = 256  # listen(2) backlog: 50 connections arrive at once
        daemon_threads = True

    port = free_port()
    srv = Server(("127.0.0.1", port), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, "http://127.0.0.1:%d" % port


def main():
    fan = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    delay = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    repeat = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    log = []
    srv, url = target(delay / 1000.0, log)
    nodes = [{"id": "start", "type": "Start", "name": "Start", "config": {}}]
    nodes += [{"id": "a%d" % i, "type": "API", "name": "a%d" % i,
               "config": {"method": "GET", "url": "%s/item/%d" % (url, i)}} for i in range(fan)]
    nodes.append({"id": "end", "type": "End", "name": "End", "config": {}})
    conns = [{"id": "s%d" % i, "from": "start", "to": "a%d" % i} for i in range(fan)]
    conns += [{"id": "e%d" % i, "from": "a%d" % i, "to": "end"} for i in range(fan)]
    with Stack(mcp=False) as s:
        wf = s.create_workflow({"title": "fan", "nodes": nodes, "connections": conns})
        s.start_worker()
        for k in range(repeat):
            del log[:]
            st, _, body = s.gw("POST", "/api/workflows/%s/run" % wf, {"inputs": {}})
            assert st == 202, (st, body)
            run = s.wait_run(body["run_id"])
            assert run["status"] == "succeeded", run
            assert len(log) == fan, len(log)
            spread = (max(e for _, e in log) - min(b for b, _ in log)) * 1000
            total = run["finished_at"] - run["created_at"]
            print("fan=%d delay=%d ms: first request to last answer %.0f ms; run %d ms "
                  "(admission to finish)" % (fan, delay, spread, total))
    srv.shutdown()


if __name__ == "__main__":
    main()
