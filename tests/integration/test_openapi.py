#!/usr/bin/env python3
"""The API's description (README "API description"): docs/openapi.json against the gateway.

- Route parity: the router's table (`toolgate-gateway --routes`, one "METHOD /path" a line, "{*}"
  for an id segment) and the document's operations are the same set, "{*}" standing for any
  "{param}". Routes the router marks "static" serve the web UI's files and are not API routes:
  they are left out of the comparison (and of the document).
- GET /openapi.json is public, application/json, and byte for byte docs/openapi.json (compiled in).
- The document itself: OpenAPI 3.1, every $ref resolves, every schema is valid JSON Schema
  2020-12, every operation has an operationId and documents 401 when it needs an identity.
- The harness checks every answer of every integration test against the document
  (harness.openapi_check); here a few deliberate misses prove that check bites: an undocumented
  status, a body that breaks its schema, a path with no operation.

The lint (`redocly lint`, recommended ruleset) is the ctest lint/openapi.
"""
import json
import os
import re
import subprocess
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import BUILD, SRC, Stack, http, main, openapi_check, openapi_doc  # noqa: E402

METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


def router_routes():
    out = subprocess.run([os.path.join(BUILD, "toolgate-gateway"), "--routes"],
                         capture_output=True, text=True, check=True).stdout
    api, static = set(), set()
    for line in out.splitlines():
        f = line.split()
        assert len(f) in (2, 3) and (len(f) == 2 or f[2] == "static"), line
        assert f[1].startswith("/"), line
        (static if len(f) == 3 else api).add((f[0], f[1]))
    return api, static


def document_routes():
    doc = openapi_doc()
    out = set()
    for path, item in doc["paths"].items():
        for m in item:
            if m in METHODS:
                out.add((m.upper(), re.sub(r"\{[^/]+\}", "{*}", path)))
    return out


def test_route_parity():
    api, static = router_routes()
    doc = document_routes()
    assert api, "toolgate-gateway --routes printed no route"
    missing = sorted(api - doc)
    extra = sorted(doc - api)
    assert not missing, "routes without an operation in docs/openapi.json: %s" % missing
    assert not extra, "operations in docs/openapi.json that the router lacks: %s" % extra
    assert not (static & doc), "static UI routes must not be in the document: %s" % (static & doc)


def test_help_lists_routes_option():
    out = subprocess.run([os.path.join(BUILD, "toolgate-gateway"), "--help"],
                         capture_output=True, text=True, check=True).stdout
    assert "--routes" in out, out


def walk(node, path=()):
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            yield from walk(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk(v, path + (i,))


def test_document_is_sound():
    from jsonschema import Draft202012Validator
    doc = openapi_doc()
    assert doc["openapi"].startswith("3.1."), doc["openapi"]
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearerAuth"]["type"] == "http" and schemes["bearerAuth"]["scheme"] == "bearer"
    assert schemes["userHeader"] == dict(schemes["userHeader"], type="apiKey", **{"in": "header"})
    assert schemes["userHeader"]["name"] == "X-User-Id"
    for where, node in walk(doc):
        r = node.get("$ref")
        if isinstance(r, str):
            assert r.startswith("#/"), (where, r)  # nothing to fetch: the lint runs offline
            target = doc
            for part in r[2:].split("/"):
                assert part in target, "%s: $ref %s does not resolve" % ("/".join(map(str, where)), r)
                target = target[part]
    for name, schema in doc["components"]["schemas"].items():
        Draft202012Validator.check_schema(schema)
    ids = set()
    for path, item in doc["paths"].items():
        for m, op in item.items():
            assert op["operationId"] not in ids, op["operationId"]
            ids.add(op["operationId"])
            if op.get("security", doc["security"]):
                assert "401" in op["responses"], (m, path)


def test_served_document():
    with Stack(mcp=False) as s:
        st, h, body = s.gw("GET", "/openapi.json", user=None)
        assert st == 200 and h["content-type"].startswith("application/json"), (st, h)
        with open(os.path.join(SRC, "docs", "openapi.json"), "rb") as f:
            want = f.read()
        assert json.loads(want) == body
        with urllib.request.urlopen(s.gw_url + "/openapi.json", timeout=15) as r:
            assert r.read() == want, "GET /openapi.json is not docs/openapi.json byte for byte"
        # A path with no route and a method the path does not have: the router's answers.
        assert s.gw("GET", "/api/nope")[0] == 404
        st, h, _ = s.gw("PATCH", "/api/workflows")
        assert st == 405 and "allow" in h, (st, h)


def test_edge_answers_are_documented():
    """Garbage a client may send: each answer goes through harness.http, so through the check."""
    with Stack(mcp=False, extra_env={"TOOLGATE_MAX_BODY_BYTES": "2048",
                                     "TOOLGATE_MAX_URL_BYTES": "1024"}) as s:
        assert s.gw("POST", "/api/workflows", "{not json")[0] == 400
        assert s.gw("POST", "/api/workflows", "x" * 4096)[0] == 413
        assert s.gw("GET", "/api/runs?cursor=" + "a" * 2048)[0] == 414
        many = {"X-H%d" % i: "v" for i in range(80)}
        assert s.gw("GET", "/api/runs", headers=many)[0] == 431
        assert s.gw("GET", "/api/runs?limit=0")[0] == 400
        assert s.gw("GET", "/api/runs", user=None)[0] == 401
        assert s.gw("GET", "/api/runs/..")[0] == 404
        assert s.gw("DELETE", "/api/runs")[0] == 405
        assert s.gw("POST", "/api/runs/run_x/resolve", {"node_id": "1"})[0] == 422
        assert s.gw("GET", "/readyz", user=None)[0] == 200


def expect_violation(*args):
    try:
        openapi_check(*args)
    except harness.OpenApiViolation as e:
        return str(e)
    raise AssertionError("openapi_check accepted %r" % (args,))


def test_check_bites():
    js = {"content-type": "application/json"}
    # a status the operation does not document
    assert "not documented" in expect_violation("GET", "/api/workflows", 418, js, {"error": "x"})
    # a body that breaks its schema: a run without its id, a workflow list that is not a list
    assert "does not match" in expect_violation("GET", "/api/runs/run_1", 200, js, {"status": 1})
    assert "does not match" in expect_violation("GET", "/api/workflows", 200, js,
                                                {"workflows": {}})
    # an error body without its code
    assert "does not match" in expect_violation("GET", "/api/runs/run_1", 404, js,
                                                {"message": "x"})
    # a body of another type where the operation documents JSON only
    assert "text/plain body" in expect_violation("GET", "/api/workflows", 200,
                                                 {"content-type": "text/plain"}, "oops")
    # a path no operation has, answered other than 404
    assert "no operation" in expect_violation("GET", "/api/nope", 200, js, {})
    # what is right passes: other members are allowed (fields other modules add)
    openapi_check("GET", "/api/workflows", 200, js, {"workflows": [], "more": 1})
    openapi_check("GET", "/api/nope", 404, js, {"error": "not_found", "message": "No such route."})


if __name__ == "__main__":
    main(globals())
