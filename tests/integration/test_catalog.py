#!/usr/bin/env python3
"""The tool catalog (README "Tool catalog"): built-ins, connector sync, idempotence, two users,
soft delete, schema inference, register/delete, the available-tools fallback, MCP discovery
from server-everything through a connected Composio provider, and notifications/tools/list_changed
from mcp-peer's GET stream re-syncing that provider.

Connectors are inserted as rows (the schema is fixed by schema/007) and a sync is started the way
a running gateway notices a changed source: GET /api/agents/available-tools reads the sources'
versions and syncs those it has not listed (or a restart syncs every user).
"""
import base64
import json
import os
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Stack, http, main, wait_until  # noqa: E402

NS = uuid.uuid5(uuid.NAMESPACE_URL, "urn:toolgate:tools")
BUILTINS = {"calculator", "http_request", "code_execution"}

OPS = [{"name": "create_issue", "method": "POST", "path": "/issues",
        "example_payload": {"title": "t", "labels": ["x"], "meta": {"n": 1}}},
       {"name": "get_issue", "method": "GET", "path": "/issues/{id}",
        "input_schema": {"type": "object", "properties": {"id": {"type": "string"}}}}]


def tool_id(user, string_id):
    return str(uuid.uuid5(NS, user + "\n" + string_id))


def add_user(s, user):
    with s.db() as c:
        c.execute("INSERT OR IGNORE INTO users (id, credits, created_at) VALUES (?, 0, 0)", (user,))


def add_connector(s, user, cid, ops=OPS, kind="api", config=None):
    add_user(s, user)
    cfg = config or {"base_url": "https://api.example.com", "operations": ops,
                     "example_payload": {"q": "s", "limit": 3, "deep": {"tags": [{"k": 1.5}]}}}
    with s.db() as c:
        c.execute("INSERT INTO connectors (id, user_id, kind, name, config, version, created_at, "
                  "updated_at) VALUES (?, ?, ?, ?, ?, 1, 0, 0)",
                  (cid, user, kind, "c-" + cid, json.dumps(cfg)))


def bump_connector(s, cid, config=None, deleted=False):
    with s.db() as c:
        if config is not None:
            c.execute("UPDATE connectors SET config=? WHERE id=?", (json.dumps(config), cid))
        if deleted:
            c.execute("UPDATE connectors SET deleted_at=1 WHERE id=?", (cid,))
        c.execute("UPDATE connectors SET version=version+1 WHERE id=?", (cid,))


def install_counter(s):
    """A trigger counting every row SQLite writes to tools (no-op upserts fire none)."""
    with s.db() as c:
        c.execute("CREATE TABLE IF NOT EXISTS t_tool_writes (n INTEGER)")
        c.execute("CREATE TRIGGER IF NOT EXISTS t_tw_i AFTER INSERT ON tools BEGIN "
                  "INSERT INTO t_tool_writes VALUES (1); END")
        c.execute("CREATE TRIGGER IF NOT EXISTS t_tw_u AFTER UPDATE ON tools BEGIN "
                  "INSERT INTO t_tool_writes VALUES (1); END")


def writes(s):
    return s.query("SELECT count(*) AS n FROM t_tool_writes")[0]["n"]


def available(s, user):
    st, _, body = s.gw("GET", "/api/agents/available-tools", user=user)
    assert st == 200, (st, body)
    assert body["success"] is True and body["count"] == len(body["tools"]), body
    return body


def names(body, source=None):
    return {t["name"] for t in body["tools"] if source is None or t["source"] == source}


def wait_tools(s, user, pred, what, timeout=20):
    return wait_until(lambda: (lambda b: b if pred(b) else None)(available(s, user)), timeout, what,
                      0.1)


def live(s, user, prefix):
    return s.query("SELECT * FROM tools WHERE user_id=? AND string_id LIKE ? AND deleted_at IS NULL"
                   " ORDER BY string_id", user, prefix + "%")


def test_builtins_and_api_connector_sync_two_users():
    with Stack(mcp=False) as s:
        body = available(s, "alice")
        assert names(body, "builtin") == BUILTINS, body
        calc = [t for t in body["tools"] if t["name"] == "calculator"][0]
        assert calc["tool_id"] == tool_id("__system__", "builtin:calculator"), calc
        assert calc["input_schema"]["required"] == ["expression"], calc
        for user in ("alice", "bob"):
            add_connector(s, user, "con_" + user)
        # a second GET (the cached answer is per generation) starts the sync of the new source
        body = wait_tools(s, "alice", lambda b: {"create_issue", "get_issue"} <= names(b),
                          "alice's connector tools")
        wait_tools(s, "bob", lambda b: {"create_issue", "get_issue"} <= names(b), "bob's tools")
        rows = live(s, "alice", "api:con_alice:")
        assert [r["name"] for r in rows] == ["create_issue", "get_issue"], rows
        assert rows[0]["tool_id"] == tool_id("alice", "api:con_alice:create_issue")
        assert json.loads(rows[0]["tags"]) == ["synced"] and rows[0]["source"] == "connector"
        bob = live(s, "bob", "api:con_bob:")
        assert {r["tool_id"] for r in bob}.isdisjoint({r["tool_id"] for r in rows})
        t = [t for t in body["tools"] if t["name"] == "create_issue"][0]
        assert t["source"] == "connector" and t["type"] == "api" and t["connector_id"] == "con_alice"
        assert t["input_schema"]["properties"]["meta"]["required"] == ["n"], t
        # alice sees none of bob's tools
        assert all(x.get("connector_id") in (None, "con_alice") for x in body["tools"]), body


def test_sync_idempotent_and_soft_delete():
    with Stack(mcp=False) as s:
        add_connector(s, "alice", "con_a")
        wait_tools(s, "alice", lambda b: "get_issue" in names(b), "first sync")
        before = live(s, "alice", "api:con_a:")
        install_counter(s)
        s.restart_gateway()  # the start-up sync of every user: nothing changed, nothing written
        wait_until(lambda: "catalog_synced" in s.procs["gateway"].text(), 10, "start-up sync")
        assert writes(s) == 0, writes(s)
        after = live(s, "alice", "api:con_a:")
        assert [(r["version"], r["updated_at"]) for r in before] == \
               [(r["version"], r["updated_at"]) for r in after], (before, after)
        # a changed connector: one operation changes, one is gone
        ops = [dict(OPS[0], description="now described")]
        bump_connector(s, "con_a", {"base_url": "https://api.example.com", "operations": ops})
        wait_tools(s, "alice", lambda b: "get_issue" not in names(b), "the removed operation")
        rows = {r["name"]: r for r in s.query(
            "SELECT * FROM tools WHERE user_id='alice' AND connector_id='con_a'")}
        assert rows["create_issue"]["version"] == 2 and rows["create_issue"]["deleted_at"] is None
        assert rows["create_issue"]["description"] == "now described"
        assert rows["get_issue"]["deleted_at"] is not None and rows["get_issue"]["version"] == 2
        assert writes(s) == 2, writes(s)
        # a deleted connector soft-deletes its tools
        bump_connector(s, "con_a", deleted=True)
        wait_tools(s, "alice", lambda b: "create_issue" not in names(b), "the deleted connector")
        assert live(s, "alice", "api:con_a:") == []
        assert len(s.query("SELECT * FROM tools WHERE connector_id='con_a'")) == 2  # soft


def test_create_from_connector_register_delete():
    with Stack(mcp=False) as s:
        add_connector(s, "alice", "con_x")
        st, _, t = s.gw("POST", "/api/agents/create-tool-from-connector",
                        {"connector_id": "con_x", "tool_name": "search",
                         "tool_description": "Search things"})
        assert st == 201, (st, t)
        assert t["tool_id"] == tool_id("alice", "custom:con_x:search"), t
        assert t["input_schema"] == {
            "type": "object", "required": ["q", "limit", "deep"],
            "properties": {"q": {"type": "string"}, "limit": {"type": "integer"},
                           "deep": {"type": "object", "required": ["tags"], "properties": {
                               "tags": {"type": "array", "items": {
                                   "type": "object", "required": ["k"],
                                   "properties": {"k": {"type": "number"}}}}}}}}, t
        assert t["description"] == "Search things" and t["connector_id"] == "con_x"
        st, _, _ = s.gw("POST", "/api/agents/create-tool-from-connector",
                        {"connector_id": "con_x", "tool_name": "search"}, user="bob")
        assert st == 404
        st, _, e = s.gw("POST", "/api/agents/create-tool-from-connector", {"connector_id": "con_x"})
        assert st == 422, e
        st, _, r = s.gw("POST", "/api/tools/register",
                        {"name": "my_tool", "description": "mine",
                         "input_schema": {"type": "object"}, "tags": ["x"]})
        assert st == 201 and r["source"] == "connector" and r["origin"] == "user", r
        assert r["type"] == "custom" and r["tags"] == ["x"], r
        assert {"search", "my_tool"} <= names(available(s, "alice"))
        assert "my_tool" not in names(available(s, "bob"))
        st, _, _ = s.gw("DELETE", "/api/tools/" + r["tool_id"], user="bob")
        assert st == 404
        builtin = tool_id("__system__", "builtin:calculator")
        st, _, _ = s.gw("DELETE", "/api/tools/" + builtin)
        assert st == 404
        st, _, d = s.gw("DELETE", "/api/tools/" + r["tool_id"])
        assert st == 200 and d == {"tool_id": r["tool_id"], "deleted": True}, d
        assert "my_tool" not in names(available(s, "alice"))
        st, _, _ = s.gw("DELETE", "/api/tools/" + r["tool_id"])
        assert st == 404


def test_connector_routes_drive_the_catalog():
    """POST/PUT/DELETE /api/connectors sync the connector's tools at once (no restart)."""
    key = "key1:" + base64.b64encode(b"3" * 32).decode()
    with Stack(mcp=False, extra_env={"TOOLGATE_SECRET_KEY": key}) as s:
        add_user(s, "alice")
        body = {"name": "crm", "base_url": "https://api.example.com",
                "auth": {"type": "bearer", "token": "tok-cat-1"},
                "operations": [{"name": "find", "method": "GET", "path": "/find",
                                "example_payload": {"q": "x", "n": 1}},
                               {"name": "make", "method": "POST", "path": "/make"}]}
        st, _, c = s.gw("POST", "/api/connectors/api", body)
        assert st == 201, (st, c)
        got = wait_tools(s, "alice", lambda b: {"find", "make"} <= names(b, "connector"),
                         "the connector's tools")
        find = [t for t in got["tools"] if t["name"] == "find"][0]
        assert find["connector_id"] == c["id"], find
        assert find["input_schema"]["properties"]["n"]["type"] in ("integer", "number"), find
        st, _, u = s.gw("PUT", "/api/connectors/" + c["id"],
                        {"operations": [{"name": "find", "method": "GET", "path": "/find"}]})
        assert st == 200, (st, u)
        wait_tools(s, "alice", lambda b: "make" not in names(b, "connector") and
                   "find" in names(b, "connector"), "the removed operation's tool to go")
        st, _, _ = s.gw("DELETE", "/api/connectors/" + c["id"])
        assert st in (200, 204), st
        wait_tools(s, "alice", lambda b: not names(b, "connector"), "the tools to go")
        assert live(s, "alice", "api:") == [], live(s, "alice", "api:")
        assert "tok-cat-1" not in json.dumps(s.query("SELECT * FROM tools"))


def test_available_tools_fallback():
    with Stack(mcp=False) as s:
        wait_until(lambda: s.query("SELECT count(*) AS n FROM tools")[0]["n"] == 3, 10, "built-ins")
        with s.db() as c:
            c.execute("DELETE FROM tools")  # an empty registry
        body = available(s, "carol")
        assert names(body) == BUILTINS and "degraded" not in body, body
        with s.db() as c:
            c.execute("ALTER TABLE tools RENAME TO tools_away")  # an unreadable registry
        body = available(s, "dave")
        assert names(body) == BUILTINS and body["degraded"] is True, body
        with s.db() as c:
            c.execute("ALTER TABLE tools_away RENAME TO tools")


def test_mcp_discovery_via_composio_provider():
    with Stack() as s:
        s.connect("alice")
        body = wait_tools(s, "alice", lambda b: "echo" in names(b), "server-everything's tools")
        echo = [t for t in body["tools"] if t["name"] == "echo"][0]
        assert echo["type"] == "mcp" and echo["origin"] == "composio", echo
        assert echo["input_schema"]["type"] == "object", echo
        rows = live(s, "alice", "composio:everything:")
        assert len(rows) >= 5 and all(json.loads(r["tags"]) == ["synced"] for r in rows), rows
        assert rows[0]["tool_id"] == tool_id("alice", rows[0]["string_id"])
        assert "echo" not in names(available(s, "bob"))
        install_counter(s)
        s.restart_gateway()  # lists every source again: nothing changed, nothing written
        wait_until(lambda: "catalog_synced" in s.procs["gateway"].text(), 15, "start-up sync")
        time.sleep(0.2)
        assert writes(s) == 0, writes(s)
        # the provider disconnected: its tools are soft-deleted
        st, _, _ = s.gw("DELETE", "/api/mcp/auth/everything")
        assert st == 200, st
        wait_tools(s, "alice", lambda b: "echo" not in names(b), "tools of the disconnected provider")
        assert live(s, "alice", "composio:everything:") == []


def test_list_changed_resyncs_the_source():
    with Stack(peer=True) as s:
        def peer(path, body):
            st, _, b = http("POST", s.peer_url + path, body)
            assert st == 200, (st, b)
            return b

        def get_streams():
            st, _, b = http("GET", s.peer_url + "/_peer/log")
            return [e for e in b["requests"] if e["http_method"] == "GET" and e["status"] == 200]

        peer("/_peer/get_streams", {"enabled": True})
        s.connect("alice")
        wait_tools(s, "alice", lambda b: "echo" in names(b), "the peer's tools")
        wait_until(get_streams, 15, "the catalog's GET stream")
        # the server's tool list changes: the notification alone brings the new tool
        assert peer("/_peer/list_changed", {"add_tool": "fresh_tool"})["streams"] >= 1
        body = wait_tools(s, "alice", lambda b: "fresh_tool" in names(b), "the new tool")
        fresh = [t for t in body["tools"] if t["name"] == "fresh_tool"][0]
        assert fresh["type"] == "mcp" and fresh["origin"] == "composio", fresh
        assert "catalog_list_changed" in s.procs["gateway"].text()
        # the re-sync's session listens in turn
        wait_until(lambda: len(get_streams()) >= 2, 15, "the re-sync's GET stream")
        peer("/_peer/list_changed", {"add_tool": "second_tool"})
        wait_tools(s, "alice", lambda b: "second_tool" in names(b), "the second new tool")
        # disconnected: the listener is closed, its stream ends
        st, _, _ = s.gw("DELETE", "/api/mcp/auth/everything")
        assert st == 200, st
        wait_tools(s, "alice", lambda b: "echo" not in names(b), "tools of the disconnected provider")
        wait_until(lambda: peer("/_peer/list_changed", {})["streams"] == 0, 15, "streams closed")


if __name__ == "__main__":
    main(globals())
