"""Run events: GET /api/runs/{id}/events as JSON pages (?after, ?limit, next_after) and as an SSE
stream (Accept: text/event-stream): the backlog, live events polled from the table, resume with
Last-Event-ID, the end after run_finished (and once a final run has nothing more), 404 for
another user's run, 429 past the per-user stream cap.

The engine writes run_events; here the rows are inserted with SQL while a stream is open.
"""
import json
import socket
import time

from harness import Stack, main

INPUTS = {"message": "hi", "a": 1, "b": 2}


def admit(s, wf, user="alice"):
    st, _, body = s.gw("POST", "/api/workflows/%s/run" % wf, {"inputs": INPUTS}, user=user)
    assert st == 202, (st, body)
    return body["run_id"]


def event(s, run_id, type_, node="2", data=None):
    with s.db() as c:
        cur = c.execute("INSERT INTO run_events (run_id, type, node_id, at, data) VALUES "
                        "(?, ?, ?, ?, ?)", (run_id, type_, node, int(time.time() * 1000),
                                            json.dumps(data) if data is not None else None))
        return cur.lastrowid


class SSE:
    """A raw SSE client: the response head, then events as dicts until the server closes."""

    def __init__(self, s, run_id, user="alice", last_id=None, query=""):
        self.sock = socket.create_connection(("127.0.0.1", s.gw_port), timeout=10)
        hdr = "Last-Event-ID: %s\r\n" % last_id if last_id is not None else ""
        self.sock.sendall(("GET /api/runs/%s/events%s HTTP/1.1\r\nHost: x\r\nX-User-Id: %s\r\n"
                           "Accept: text/event-stream\r\n%s\r\n" % (run_id, query, user, hdr))
                          .encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self._more()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {k.lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
        self.closed = False

    def _more(self):
        got = self.sock.recv(65536)
        if not got:
            self.closed = True
            raise EOFError
        self.buf += got

    def next(self):
        """The next event as {id, event, data}; comments skipped. None at the end of stream."""
        while True:
            while b"\n\n" not in self.buf:
                try:
                    self._more()
                except EOFError:
                    return None
            block, self.buf = self.buf.split(b"\n\n", 1)
            ev = {}
            for line in block.decode().split("\n"):
                if line.startswith(":"):
                    continue
                k, v = line.split(": ", 1)
                ev[k] = v
            if ev:
                ev["data"] = json.loads(ev["data"])
                return ev

    def close(self):
        self.sock.close()


def test_json_paging():
    with Stack(mcp=False) as s:
        s.connect("alice")
        wf = s.create_workflow()
        r = admit(s, wf)
        seqs = [event(s, r, "node_started", "1"), event(s, r, "node_finished", "1", {"ms": 3}),
                event(s, r, "node_started", "2")]
        st, _, body = s.gw("GET", "/api/runs/%s/events" % r)
        assert st == 200 and [e["seq"] for e in body["events"]] == seqs, body
        assert body["next_after"] == seqs[-1], body
        assert body["events"][1] == {"seq": seqs[1], "type": "node_finished", "node_id": "1",
                                     "at": body["events"][1]["at"], "data": {"ms": 3}}, body
        st, _, body = s.gw("GET", "/api/runs/%s/events?after=%d&limit=1" % (r, seqs[0]))
        assert [e["seq"] for e in body["events"]] == [seqs[1]] and body["next_after"] == seqs[1]
        st, _, body = s.gw("GET", "/api/runs/%s/events?after=%d" % (r, seqs[-1]))
        assert body == {"events": [], "next_after": seqs[-1]}, body
        assert s.gw("GET", "/api/runs/%s/events" % r, user="bob")[0] == 404
        assert s.gw("GET", "/api/runs/run_nope/events")[0] == 404
        for bad in ("after=x", "limit=0", "limit=5000"):
            assert s.gw("GET", "/api/runs/%s/events?%s" % (r, bad))[0] == 400, bad


def test_sse_backlog_live_resume_end():
    with Stack(mcp=False) as s:
        s.connect("alice")
        wf = s.create_workflow()
        r = admit(s, wf)
        a = event(s, r, "node_started", "1")
        b = event(s, r, "node_finished", "1")
        st = SSE(s, r)
        assert st.status == 200 and st.headers["content-type"].startswith("text/event-stream")
        e1, e2 = st.next(), st.next()
        assert (int(e1["id"]), e1["event"], int(e2["id"])) == (a, "node_started", b), (e1, e2)
        c = event(s, r, "waiting", "2", {"review_id": "rev_x"})  # live, while the stream is open
        e3 = st.next()
        assert int(e3["id"]) == c and e3["event"] == "waiting" and \
            e3["data"]["data"] == {"review_id": "rev_x"}, e3
        st.close()
        again = SSE(s, r, last_id=b)  # resume after b
        e = again.next()
        assert int(e["id"]) == c, e
        d = event(s, r, "resumed", "2")
        f = event(s, r, "run_finished", None, {"status": "succeeded"})
        assert int(again.next()["id"]) == d
        last = again.next()
        assert int(last["id"]) == f and last["event"] == "run_finished", last
        assert again.next() is None and again.closed  # the stream ends after run_finished
        again.close()
        q = SSE(s, r, query="?after=%d" % d)
        assert int(q.next()["id"]) == f and q.next() is None
        q.close()


def test_sse_final_run_without_event_ends_and_limits():
    with Stack(mcp=False) as s:
        s.connect("alice")
        wf = s.create_workflow()
        r = admit(s, wf)
        other = SSE(s, r, user="bob")
        assert other.status == 404
        other.close()
        streams = [SSE(s, r) for _ in range(8)]
        assert all(x.status == 200 for x in streams)
        over = SSE(s, r)
        assert over.status == 429, over.status
        over.close()
        for x in streams:
            x.close()
        time.sleep(0.5)  # the gateway notices the closes
        again = SSE(s, r)
        assert again.status == 200
        event(s, r, "node_started", "1")
        s.query("UPDATE workflow_runs SET status='canceled' WHERE id=?", r)
        assert again.next()["event"] == "node_started"
        assert again.next() is None  # final status and nothing more: the end
        again.close()


if __name__ == "__main__":
    main(globals())
