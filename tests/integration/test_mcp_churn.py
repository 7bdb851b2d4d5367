"""MCP session churn under concurrency: a server that drops each session after 3 requests (the
4th gets 404 before it runs, as the spec's session expiry does), with 4 calls in flight.

The client replays a call lost with its session on each newer session (one initialize per lost
session, shared by the callers that lost it), so every call succeeds, and the server answers
each tools/call 200 exactly once: once per bench call, once per journaled tool_executions row.
Real mcp-peer (--drop-session-after / POST /_peer/churn), toolgate-mcp, simulator, gateway and
worker on 127.0.0.1.
"""
import collections
import json
import os
import subprocess
import tempfile

from harness import BUILD, Proc, Stack, free_port, http, main, wait_until

DROP_AFTER = 3


def tool_calls(log):
    return [e for e in log if e["rpc_method"] == "tools/call"]


def check_wire(log):
    """Each (session, request id) is sent once; 404s end their session; one initialize each."""
    calls = tool_calls(log)
    pairs = collections.Counter((e["session"], e["rpc_id"]) for e in calls)
    assert max(pairs.values()) == 1, [p for p, n in pairs.items() if n > 1]
    lost = {e["session"] for e in log if e["status"] == 404}
    inits = [e for e in log if e["rpc_method"] == "initialize"]
    assert lost, "the peer dropped no session: the test did not test churn"
    assert len(inits) == 1 + len(lost), (len(inits), len(lost))
    per_session = collections.Counter(e["session"] for e in log
                                      if e["rpc_method"] in ("tools/call", "tools/list")
                                      and e["status"] == 200)
    assert max(per_session.values()) <= DROP_AFTER, per_session
    return calls


def test_bench_40_concurrency_4_all_succeed():
    port = free_port()
    url = "http://127.0.0.1:%d" % port
    tmp = tempfile.mkdtemp(prefix="toolgate-churn-")
    peer = Proc("mcp-peer", [os.path.join(BUILD, "mcp-peer"), "--listen", "127.0.0.1:%d" % port,
                             "--drop-session-after", str(DROP_AFTER)], dict(os.environ), tmp)
    try:
        wait_until(lambda: http("GET", url + "/healthz")[0] == 200, 10, "mcp-peer")
        out = subprocess.run([os.path.join(BUILD, "toolgate-mcp"), "--bench", "40",
                              "--concurrency", "4", url + "/mcp", "echo", '{"message":"b"}'],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, (out.returncode, out.stderr[-2000:])
        report = json.loads(out.stdout.strip().splitlines()[-1])
        assert report["calls"] == 40 and report["errors"] == 0, report
        st, _, body = http("GET", url + "/_peer/log")
        assert st == 200
        calls = check_wire(body["requests"])
        ok = collections.Counter(e["rpc_id"] for e in calls if e["status"] == 200)
        assert len(ok) == 90 and max(ok.values()) == 1, ok  # 50 warm-up + 40, each run once
        assert all(e["status"] in (200, 404) for e in calls), calls
    finally:
        assert peer.stop() == 0, peer.text()[-2000:]


def flow():
    """Start -> echo who-a -> echo who-b -> End: two journaled calls per run."""
    nodes = [{"id": "start", "type": "Start", "name": "Start", "config": {}}]
    for i, part in enumerate(("a", "b")):
        nodes.append({"id": "n%d" % i, "type": "MCP", "name": "echo", "config": {
            "provider": "everything", "tool": "echo",
            "arguments": {"message": "{{inputs.who}}-%s" % part}}})
    nodes.append({"id": "end", "type": "End", "name": "End", "config": {
        "outputVariables": {"said": "{{nodes.n1.output.content.0.text}}"}}})
    ids = [n["id"] for n in nodes]
    conns = [{"id": "c%d" % i, "from": a, "to": b} for i, (a, b) in enumerate(zip(ids, ids[1:]))]
    return {"title": "churn", "nodes": nodes, "connections": conns}


def test_worker_12_runs_at_default_concurrency_all_succeed():
    with Stack(peer=True) as s:  # TOOLGATE_WORKER_CONCURRENCY: the default (4)
        s.connect("alice")
        s.set_mcp_url("alice", s.peer_url + "/mcp/alice")
        s.peer("POST", "/_peer/churn", {"drop_session_after": DROP_AFTER})
        wf = s.create_workflow(flow())
        runs = []
        for i in range(12):
            st, _, body = s.gw("POST", "/api/workflows/%s/run" % wf,
                               {"inputs": {"who": "r%d" % i}})
            assert st == 202, (st, body)
            runs.append(body["run_id"])
        s.start_worker()
        for r in runs:
            run = s.wait_run(r, timeout=60)
            assert run["status"] == "succeeded", run
        calls = check_wire(s.peer("GET", "/_peer/log")["requests"])
        executed = collections.Counter(e["arguments"]["message"] for e in calls
                                       if e["status"] == 200)
        rows = s.query("SELECT arguments, status FROM tool_executions")
        journaled = collections.Counter(json.loads(x["arguments"])["message"] for x in rows)
        assert all(x["status"] == "success" for x in rows), rows
        assert len(journaled) == 24 and max(journaled.values()) == 1, journaled
        assert executed == journaled, (executed, journaled)  # one 200 per journaled call


if __name__ == "__main__":
    main(dict(globals()))
