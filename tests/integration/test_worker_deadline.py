"""The worker interrupting and classifying calls (DESIGN.md section 5):

- the run deadline cancels a tool call in flight (notifications/cancelled on the wire), the row is
  'unknown' with error_class timeout and the run fails 'timeout' at once, not when the call ends;
- SIGTERM's grace expiry cancels calls in flight the same way and releases the run to 'queued';
- a call whose connection was refused (certainly not delivered) is retried, while one whose
  connection closed after the request went out may have run: 'unknown', repeated only for a
  tool whose annotations say readOnlyHint / idempotentHint;
- Composio rejecting the worker's API key fails the run with broker_auth (tg_check's flag).

Real simulator, mcp-peer, gateway and workers on 127.0.0.1; for the reset case a tiny MCP
endpoint in this file that reads each tools/call and closes the connection without answering.
"""
import http.server as httpserver
import json
import socket
import socketserver
import os
import threading
import time

from harness import BUILD, Stack, free_port, http, main, wait_until
from test_worker_peer import admit, calls, executions, flow, run_row, setup


def peer_log(s):
    return s.peer("GET", "/_peer/log")["requests"]


def cancelled_ids(s):
    return [e.get("request_id") for e in peer_log(s) if e["rpc_method"] == "notifications/cancelled"]


def test_deadline_cancels_the_call_in_flight():
    env = {"TOOLGATE_RUN_DEADLINE_MS": "1000", "TOOLGATE_MCP_TIMEOUT_MS": "30000"}
    with Stack(peer=True, extra_env=env) as s:
        setup(s)
        wf = s.create_workflow(flow(("sleep", {"ms": 8000}), ("echo", {"message": "never"})))
        s.start_worker()
        run_id = admit(s, wf)
        t0 = time.monotonic()
        run = s.wait_run(run_id)
        took = time.monotonic() - t0
        assert run["status"] == "failed", run
        row = run_row(s, run_id)
        assert row["error_class"] == "timeout" and "deadline" in row["error"], row
        assert took < 6, took  # interrupted at the deadline, not when the 8 s call ended
        ex = s.query("SELECT status, error_class, error, duration_ms, completed_at "
                     "FROM tool_executions WHERE run_id=?", run_id)
        assert len(ex) == 1, ex  # step 2 never ran, the call was not repeated
        assert ex[0]["status"] == "unknown" and ex[0]["error_class"] == "timeout", ex
        # The call ended at the run's deadline, counted from the claim (the MCP session's set-up
        # comes out of the same 1000 ms, so the call's own duration is less: 657 ms once in CI).
        started = s.query("SELECT started_at FROM workflow_runs WHERE id=?", run_id)[0]["started_at"]
        assert 0 < ex[0]["duration_ms"] < 6000, ex
        assert 900 <= ex[0]["completed_at"] - started < 6000, (ex, started)
        call = calls(s, "sleep")
        assert len(call) == 1 and not calls(s, "echo"), call
        wait_until(lambda: cancelled_ids(s), 5, "notifications/cancelled")
        assert cancelled_ids(s) == [call[0]["rpc_id"]], (cancelled_ids(s), call)


def test_sigterm_grace_expiry_cancels_calls_and_releases_the_run():
    env = {"TOOLGATE_SHUTDOWN_GRACE_MS": "500", "TOOLGATE_WORKER_CONCURRENCY": "2"}
    with Stack(peer=True, extra_env=env) as s:
        setup(s)
        wf = s.create_workflow(flow(("sleep", {"ms": 8000})))
        w = s.start_worker()
        runs = [admit(s, wf), admit(s, wf)]
        wait_until(lambda: len(calls(s, "sleep")) == 2, 15, "both calls to go out")
        t0 = time.monotonic()
        assert w.stop() == 0, w.text()[-2000:]
        assert time.monotonic() - t0 < 6  # grace, then cancel; not the 8 s calls
        for run_id in runs:
            row = run_row(s, run_id)
            assert row["status"] == "queued" and row["claimed_by"] is None, row  # released
            assert row["attempt"] == 1 and row["lease_expires_at"] is None, row
            assert [e["status"] for e in executions(s, run_id)] == ["unknown"]  # may have run
        wait_until(lambda: len(cancelled_ids(s)) == 2, 5, "notifications/cancelled for both")
        assert sorted(cancelled_ids(s)) == sorted(c["rpc_id"] for c in calls(s, "sleep"))


class _DropCalls(httpserver.BaseHTTPRequestHandler):
    """An MCP endpoint (JSON answers) whose tools/call reads the request and hangs up."""
    calls = []  # tool names, in order
    lists = 0

    def log_message(self, *args):
        pass

    def _json(self, status, obj, headers=()):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_DELETE(self):
        self._json(200, {})

    def do_GET(self):
        self.send_response(405)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self):
        msg = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        method, rid = msg.get("method"), msg.get("id")
        if method == "initialize":
            self._json(200, {"jsonrpc": "2.0", "id": rid, "result": {
                "protocolVersion": "2025-11-25", "capabilities": {"tools": {}},
                "serverInfo": {"name": "drop", "version": "1"}}},
                headers=[("Mcp-Session-Id", "drop-1")])
        elif rid is None:
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif method == "tools/list":
            type(self).lists += 1
            self._json(200, {"jsonrpc": "2.0", "id": rid, "result": {"tools": [
                {"name": "write", "inputSchema": {"type": "object"}},
                {"name": "read", "inputSchema": {"type": "object"},
                 "annotations": {"readOnlyHint": True}}]}})
        else:  # tools/call: the whole request arrived; hang up without an answer
            type(self).calls.append(msg["params"]["name"])
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)


class _Server(socketserver.ThreadingMixIn, httpserver.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def test_reset_after_send_is_unknown_refused_is_retried():
    env = {"TOOLGATE_TOOL_RETRIES": "2", "TOOLGATE_RETRY_BASE_MS": "20"}
    with Stack(peer=True, extra_env=env) as s:
        setup(s)
        port = free_port()
        srv = _Server(("127.0.0.1", port), _DropCalls)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        try:
            s.set_mcp_url("alice", "http://127.0.0.1:%d/mcp" % port)
            write = s.create_workflow(flow(("write", {})))
            read = s.create_workflow(flow(("read", {})))
            s.start_worker()
            r1 = admit(s, write)
            assert s.wait_run(r1)["status"] == "failed"
            # Sent, then the connection closed: it may have run, and nothing says a repeat is
            # harmless: one call, 'unknown', never repeated.
            assert _DropCalls.calls == ["write"], _DropCalls.calls
            assert [(e["status"], e["error_class"]) for e in executions(s, r1)] == [
                ("unknown", "internal")]
            r2 = admit(s, read)
            assert s.wait_run(r2)["status"] == "failed"
            # readOnlyHint: repeated (1 + 2 retries), each row 'unknown'; annotations listed once.
            assert _DropCalls.calls == ["write"] + ["read"] * 3, _DropCalls.calls
            assert [e["status"] for e in executions(s, r2)] == ["unknown"] * 3
            assert _DropCalls.lists == 1
        finally:
            srv.shutdown()
            srv.server_close()
        # Now the port refuses connections: certainly not delivered, so even 'write' is retried,
        # and a server that comes back in time gets exactly one delivered call.
        n0 = len(executions(s, r1))
        r3 = admit(s, write)
        wait_until(lambda: [e for e in executions(s, r3) if e["status"] == "failed"], 15,
                   "a refused call to be recorded")
        assert s.wait_run(r3)["status"] == "failed"
        ex = executions(s, r3)
        assert [(e["status"], e["error_class"]) for e in ex] == [("failed", "internal")] * 3, ex
        assert _DropCalls.calls == ["write"] + ["read"] * 3  # none of them reached a server
        assert len(executions(s, r1)) == n0


def test_refused_then_back_succeeds_with_one_delivered_call():
    env = {"TOOLGATE_TOOL_RETRIES": "4", "TOOLGATE_RETRY_BASE_MS": "400"}
    with Stack(peer=True, extra_env=env) as s:
        setup(s)
        port = free_port()  # nothing listens there yet: the first call is refused
        s.set_mcp_url("alice", "http://127.0.0.1:%d/mcp/alice" % port)
        wf = s.create_workflow(flow(("sleep", {"ms": 10})))  # no hints: never repeated if sent
        s.start_worker()
        run_id = admit(s, wf)
        wait_until(lambda: executions(s, run_id), 15, "the refused call to be recorded")
        s._start("mcp-peer-2", [os.path.join(BUILD, "mcp-peer"), "--listen",
                                "127.0.0.1:%d" % port])  # the server comes back
        run = s.wait_run(run_id)
        assert run["status"] == "succeeded", (run, executions(s, run_id))
        ex = executions(s, run_id)
        assert len(ex) >= 2 and ex[-1]["status"] == "success", ex
        assert all(e["status"] == "failed" for e in ex[:-1]), ex  # refused: nothing ran
        st, _, log = http("GET", "http://127.0.0.1:%d/_peer/log" % port)
        assert st == 200
        assert len([e for e in log["requests"] if e["rpc_method"] == "tools/call"]) == 1, log


def test_rejected_api_key_fails_with_broker_auth():
    with Stack(peer=True) as s:
        setup(s)
        wf = s.create_workflow(flow(("echo", {"message": "hi"})))
        s.start_worker(extra_env={"COMPOSIO_API_KEY": "ak_wrong_key"})
        run_id = admit(s, wf)
        run = s.wait_run(run_id)
        assert run["status"] == "failed", run
        assert run_row(s, run_id)["error_class"] == "broker_auth", run_row(s, run_id)
        assert not calls(s) and not executions(s, run_id)


if __name__ == "__main__":
    main(dict(globals()))
