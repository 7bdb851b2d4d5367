"""{{secrets.<name>}} in an ad-hoc MCP node's headers (README "Credentials"): the credential's
value reaches the MCP server and nothing the product stores or shows; a missing credential fails
the node with credential_missing; a value that comes from the run (an input, a tool's answer)
and brings its own {{secrets.<name>}} reference is refused instead of having the secret
substituted into it.

Real simulator, mcp-peer (logs the headers it receives), gateway and worker on 127.0.0.1.
"""
import base64
import json

from harness import Stack, main

KEY = "key1:" + base64.b64encode(b"5" * 32).decode()
TOKEN = "adhoc-tok-7Hq2"


def adhoc(s, headers, message="{{inputs.note}}"):
    return {
        "title": "ad-hoc with a credential",
        "nodes": [
            {"id": 1, "type": "Start", "name": "Start",
             "config": {"inputVariables": [{"name": "note", "type": "string"}]}},
            {"id": 2, "type": "MCP", "name": "Echo",
             "config": {"url": s.peer_url + "/mcp/adhoc", "headers": headers, "tool": "echo",
                        "arguments": {"message": message}}},
            {"id": 3, "type": "End", "name": "End",
             "config": {"outputVariables": {"said": "{{nodes.2.output.content.0.text}}"}}},
        ],
        "connections": [{"id": 10, "from": 1, "to": 2}, {"id": 11, "from": 2, "to": 3}],
    }


def run(s, wf, note):
    st, _, body = s.gw("POST", "/api/workflows/%s/run" % wf, {"inputs": {"note": note}})
    assert st == 202, (st, body)
    return s.wait_run(body["run_id"])


def tool_calls(s):
    return [e for e in s.peer("GET", "/_peer/log")["requests"] if e["rpc_method"] == "tools/call"]


def test_adhoc_header_secret_reaches_the_server_only():
    with Stack(peer=True, extra_env={"TOOLGATE_SECRET_KEY": KEY}) as s:
        s.connect()
        st, _, body = s.gw("POST", "/api/credentials",
                           {"name": "peer", "type": "bearer", "token": TOKEN})
        assert st == 201, (st, body)
        # A literal token where a credential belongs is refused when the workflow is stored.
        st, _, body = s.gw("POST", "/api/workflows", {
            "name": "literal", "definition": adhoc(s, {"Authorization": "Bearer " + TOKEN})})
        assert st == 422 and "literal secret" in json.dumps(body), (st, body)
        wf = s.create_workflow(adhoc(s, {"Authorization": "Bearer {{secrets.peer}}"}))
        s.start_worker()
        r = run(s, wf, "hello")
        assert r["status"] == "succeeded" and r["output"] == {"said": "Echo: hello"}, r
        calls = tool_calls(s)
        assert len(calls) == 1 and calls[0]["headers"]["authorization"] == "Bearer " + TOKEN, \
            calls
        st, _, stored = s.gw("GET", "/api/workflows/" + wf)
        assert "{{secrets.peer}}" in json.dumps(stored), stored
        seen = json.dumps([stored, r, s.query("SELECT * FROM node_executions"),
                           s.query("SELECT * FROM tool_executions"),
                           s.query("SELECT id, user_id, name, type, hosts, meta FROM credentials"),
                           s.gw("GET", "/api/runs/%s/events" % r["id"])[2]])
        assert TOKEN not in seen
        for p in s.procs.values():
            if p.name != "mcp-peer":
                assert TOKEN not in p.text(), p.name


def test_missing_credential_fails_the_node():
    with Stack(peer=True, extra_env={"TOOLGATE_SECRET_KEY": KEY}) as s:
        s.connect()
        wf = s.create_workflow(adhoc(s, {"Authorization": "Bearer {{secrets.nope}}"}))
        s.start_worker()
        r = run(s, wf, "hello")
        assert r["status"] == "failed" and r["error_class"] == "credential_missing", r
        assert "nope" in r["error"], r
        assert tool_calls(s) == []


def test_a_reference_smuggled_in_by_the_run_is_refused():
    with Stack(peer=True, extra_env={"TOOLGATE_SECRET_KEY": KEY}) as s:
        s.connect()
        st, _, body = s.gw("POST", "/api/credentials",
                           {"name": "peer", "type": "bearer", "token": TOKEN})
        assert st == 201, (st, body)
        # The input lands in a header that names the secret itself: without the rule the header
        # would carry the token twice over, and an input could pull any credential by name.
        wf = s.create_workflow(adhoc(s, {"Authorization": "Bearer {{secrets.peer}}",
                                         "X-Note": "{{inputs.note}}"}))
        s.start_worker()
        r = run(s, wf, "{{ secrets.peer }}")
        assert r["status"] == "failed", r
        assert "holds a {{secrets.<name>}} reference" in r["error"], r
        assert tool_calls(s) == []
        assert TOKEN not in json.dumps(r)


if __name__ == "__main__":
    main(dict(globals()))
