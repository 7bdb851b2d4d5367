"""Workflow definitions through the gateway: the builder's own format is stored and returned as
given (integer ids, UI fields), the reference workflow is accepted as it is, and every
definition error comes back at once in one 422.

Real processes on 127.0.0.1 (composio-sim + toolgate-gateway, fresh SQLite file each test).
"""
import copy
import json
import os

from harness import SRC, Stack, main

REFERENCE = os.path.join(SRC, "tests", "fuzz", "corpus", "workflow", "proposal-generation.json")

# Start -> MCP -> Conditional -> {API | HITL} -> End, in the builder's format.
BUILDER = {
    "title": "Branching", "description": "d",
    "nodes": [
        {"id": 1, "type": "Start", "name": "In", "icon": "s", "color": "#10b981", "x": 100,
         "y": 300, "status": "idle",
         "config": {"inputVariables": [{"name": "value", "type": "number", "required": True}]}},
        {"id": 2, "type": "MCP", "name": "Score", "x": 1.5, "y": -2,
         "config": {"provider": "everything", "tool": "echo",
                    "arguments": {"message": "{{inputs.value}}"}}},
        {"id": 3, "type": "Conditional", "name": "Pursue?",
         "config": {"branches": [
             {"type": "if", "condition": "win_probability < 30 AND value < 500000",
              "targetNodeId": 4},
             {"type": "else", "condition": "", "targetNodeId": 5}]}},
        {"id": 4, "type": "API", "name": "Decline",
         "config": {"method": "POST", "url": "https://api.crm.com/v1/decline",
                    "headers": {"Authorization": "Bearer {{secrets.crm}}"},
                    "body": {"echo": "{{nodes.2.output.content.0.text}}"}}},
        {"id": 5, "type": "HITL", "name": "Review",
         "config": {"reviewTitle": "Approve?", "message": "Value {{inputs.value}}",
                    "priority": "high", "allowedDecisions": ["approve", "request_revisions"]}},
        {"id": 6, "type": "End", "name": "Done",
         "config": {"outputVariables": [{"name": "decision", "type": "string"}]}},
    ],
    "connections": [
        {"id": 10, "from": 1, "to": 2}, {"id": 11, "from": 2, "to": 3},
        {"id": 12, "from": 3, "to": 4}, {"id": 13, "from": 3, "to": 5},
        {"id": 14, "from": 4, "to": 6}, {"id": 15, "from": 5, "to": 6},
    ],
}


def test_builder_format_stored_as_given():
    with Stack(mcp=False) as s:
        st, _, body = s.gw("POST", "/api/workflows", BUILDER)
        assert st == 201, (st, body)
        assert body["definition"] == BUILDER and body["name"] == "Branching", body
        st, _, got = s.gw("GET", "/api/workflows/" + body["id"])
        assert st == 200 and got["definition"] == BUILDER, got
        assert got["definition"]["nodes"][0]["id"] == 1 and got["definition"]["nodes"][0]["x"] == 100
        st, _, listed = s.gw("GET", "/api/workflows")
        assert st == 200 and listed["workflows"][0]["definition"] == BUILDER, listed


def test_reference_workflow_accepted():
    """The builder's reference workflow is stored as it is: every node type of it validates."""
    with open(REFERENCE) as f:
        reference = json.load(f)
    with Stack(mcp=False) as s:
        st, _, body = s.gw("POST", "/api/workflows", reference)
        assert st == 201 and body["definition"] == reference, (st, body)


def test_every_error_at_once():
    bad = copy.deepcopy(BUILDER)
    nodes = {n["id"]: n for n in bad["nodes"]}
    nodes[3]["config"]["branches"][0]["condition"] = "win_probability < < 30"
    nodes[3]["config"]["branches"][1]["targetNodeId"] = 6
    nodes[4]["config"]["headers"]["Authorization"] = "Bearer sk_live_123"
    nodes[5]["config"]["message"] = "{{nodes.4.output.data}}"
    nodes[2]["type"] = "Teleport"
    bad["connections"].append({"id": 16, "from": 6, "to": 99})
    with Stack(mcp=False) as s:
        st, _, body = s.gw("POST", "/api/workflows", bad)
        assert st == 422 and body["error"] == "invalid_workflow", (st, body)
        got = {(e["node"], e["field"]): e["message"] for e in body["errors"]}
        assert got[("2", "type")] == "unknown node type Teleport", got
        assert "column 19" in got[("3", "config.branches[0].condition")], got
        assert "not a successor" in got[("3", "config.branches[1].targetNodeId")], got
        assert "successor 5 is not the target" in got[("3", "config.branches")], got
        assert got[("4", "config.headers.Authorization")] == (
            "literal secret in config.headers.Authorization: store it as a credential and write "
            "{{secrets.<name>}}"), got
        assert "node 4 does not run before this node" in got[("5", "config.message")], got
        assert "unknown node 99" in got[(None, "connections[6].to")], got
        # The literal secret is not echoed back anywhere in the answer.
        assert "sk_live_123" not in json.dumps(body), body
        assert s.query("SELECT count(*) AS n FROM workflows")[0]["n"] == 0


if __name__ == "__main__":
    main(globals())
