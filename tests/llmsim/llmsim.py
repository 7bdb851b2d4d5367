#!/usr/bin/python3
"""llmsim: a scriptable language-model server speaking the Anthropic Messages and the OpenAI Chat
Completions wire formats, for toolgate's tests (README "Language models").

    /usr/bin/python3 tests/llmsim/llmsim.py --port P [--anthropic-key K] [--openai-key K]

Prints "llmsim listening on P" once it accepts connections (127.0.0.1 only). Standard library
only; one thread per connection (HTTP/1.1 keep-alive, as curl reuses connections).

Model endpoints (the same shapes as the real APIs, so the client's parsing is tested for real):
  POST /v1/messages          Anthropic: x-api-key must be the configured key (else 401
                             authentication_error), anthropic-version required (else 400).
  POST /v1/chat/completions  OpenAI: Authorization: Bearer <key> (else 401 invalid_api_key);
                             an empty --openai-key accepts any or no key (openai_compatible).
Scripting:
  POST /_sim/queue  {"steps":[step,...]}   appended; each model request takes the next (FIFO)
  POST /_sim/rules  {"rules":[{"when":{...}, "step":step, "times":n?}]}  used when the queue is
                    empty: the first rule whose every "when" key holds and has times left
                    (system_contains, model, last_user_contains, has_tool_results, tools_include,
                    structured); no match answers {"text":"ok"}
  POST /_sim/reset  empties queue, rules and the request log
  GET  /_sim/requests  {"requests":[{"path","headers" (lower-case),"body","at_ms"}]}
A step: {"text"} | {"tool_calls":[{"name","arguments","id"?}]} (with an optional "text") |
{"json": obj} | {"status": 429|529|5xx|4xx, "retry_after"?, "retry_after_ms"?, "body"?} |
{"raw": "<body>", "status"?} | {"truncate": true} | {"bad_tool_json": true, "name"?}; any step
may add "delay_ms" and "usage": {"input_tokens", "output_tokens"}.

Sources of the shapes: docs.anthropic.com/en/api/messages, /en/api/errors (529
overloaded_error); platform.openai.com/docs/api-reference/chat/create, /docs/guides/error-codes.
"""
import argparse
import collections
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 16 * 1024 * 1024
MAX_LOG = 10000  # requests kept in the log

ANTHROPIC_ERRORS = {400: "invalid_request_error", 401: "authentication_error",
                    403: "permission_error", 404: "not_found_error", 413: "request_too_large",
                    429: "rate_limit_error", 500: "api_error", 529: "overloaded_error"}
OPENAI_ERRORS = {400: ("invalid_request_error", None), 401: ("invalid_request_error",
                                                             "invalid_api_key"),
                 403: ("invalid_request_error", "unsupported_country_region_territory"),
                 404: ("invalid_request_error", "model_not_found"),
                 429: ("requests", "rate_limit_exceeded")}
MESSAGES = {400: "Bad request", 401: "invalid x-api-key", 403: "Forbidden", 404: "Not found",
            413: "Request too large", 429: "Rate limit reached, retry later",
            500: "Internal server error", 502: "Bad gateway", 503: "Service unavailable",
            504: "Gateway timeout", 529: "Overloaded"}


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        self.queue = collections.deque()
        self.rules = []
        self.log = []
        self.serial = 0

    def next_id(self):
        with self.lock:
            self.serial += 1
            return self.serial


def text_of(content):
    """The text of a message's content: a string, or the text blocks / parts joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(b.get("text", "") for b in content
                       if isinstance(b, dict) and isinstance(b.get("text"), str))
    return ""


def facts(fmt, body):
    """What rules match on, read from a request body of format fmt ("anthropic"|"openai")."""
    msgs = body.get("messages") if isinstance(body.get("messages"), list) else []
    msgs = [m for m in msgs if isinstance(m, dict)]
    if fmt == "anthropic":
        system = text_of(body.get("system"))
        tools = [t.get("name") for t in body.get("tools") or [] if isinstance(t, dict)]
        choice = body.get("tool_choice") if isinstance(body.get("tool_choice"), dict) else {}
        structured = choice.get("type") == "tool" and choice.get("name") == "structured_output"
        last = msgs[-1] if msgs else {}
        has_results = last.get("role") == "user" and isinstance(last.get("content"), list) and \
            any(isinstance(b, dict) and b.get("type") == "tool_result" for b in last["content"])
    else:
        system = "".join(text_of(m.get("content")) for m in msgs
                         if m.get("role") in ("system", "developer"))
        tools = [(t.get("function") or {}).get("name") for t in body.get("tools") or []
                 if isinstance(t, dict)]
        rf = body.get("response_format") if isinstance(body.get("response_format"), dict) else {}
        structured = rf.get("type") == "json_schema"
        has_results = bool(msgs) and msgs[-1].get("role") == "tool"
    users = [m for m in msgs if m.get("role") == "user" and text_of(m.get("content"))]
    return {"system": system, "model": body.get("model"), "tools": tools,
            "structured": structured, "has_tool_results": has_results,
            "last_user": text_of(users[-1].get("content")) if users else ""}


def matches(when, f):
    for k, v in (when or {}).items():
        if k == "system_contains" and v not in f["system"]:
            return False
        if k == "model" and v != f["model"]:
            return False
        if k == "last_user_contains" and v not in f["last_user"]:
            return False
        if k == "has_tool_results" and bool(v) != f["has_tool_results"]:
            return False
        if k == "tools_include" and v not in f["tools"]:
            return False
        if k == "structured" and bool(v) != f["structured"]:
            return False
        if k not in ("system_contains", "model", "last_user_contains", "has_tool_results",
                     "tools_include", "structured"):
            return False  # an unknown condition never holds (a typo must not match everything)
    return True


def take_step(state, f):
    with state.lock:
        if state.queue:
            return state.queue.popleft()
        for r in state.rules:
            if r.get("times") is not None and r["times"] <= 0:
                continue
            if matches(r.get("when"), f):
                if r.get("times") is not None:
                    r["times"] -= 1
                return r.get("step") or {"text": "ok"}
    return {"text": "ok"}


def usage_of(step, req_len, answer):
    u = step.get("usage") or {}
    return (int(u.get("input_tokens", 10 + req_len // 100)),
            int(u.get("output_tokens", 5 + len(json.dumps(answer)) // 50)))


def answer_anthropic(state, step, f, body, req_len):
    """(status, headers, body bytes) of a 2xx answer step in the Messages format."""
    content, stop = [], "end_turn"
    if isinstance(step.get("text"), str):
        content.append({"type": "text", "text": step["text"]})
    if "json" in step:
        if f["structured"]:
            content.append({"type": "tool_use", "id": "toolu_sim_%d" % state.next_id(),
                            "name": "structured_output", "input": step["json"]})
            stop = "tool_use"
        else:
            content.append({"type": "text", "text": json.dumps(step["json"])})
    for c in step.get("tool_calls") or []:
        content.append({"type": "tool_use", "id": c.get("id") or "toolu_sim_%d" % state.next_id(),
                        "name": c["name"], "input": c.get("arguments", {})})
        stop = "tool_use"
    if step.get("bad_tool_json"):
        content.append({"type": "tool_use", "id": "toolu_sim_%d" % state.next_id(),
                        "name": step.get("name", "calculator"), "input": "not an object"})
        stop = "tool_use"
    inp, out = usage_of(step, req_len, content)
    return {"id": "msg_sim_%d" % state.next_id(), "type": "message", "role": "assistant",
            "model": body.get("model"), "content": content, "stop_reason": stop,
            "stop_sequence": None, "usage": {"input_tokens": inp, "output_tokens": out}}


def answer_openai(state, step, f, body, req_len):
    message, finish = {"role": "assistant", "content": None}, "stop"
    if isinstance(step.get("text"), str):
        message["content"] = step["text"]
    if "json" in step:
        message["content"] = json.dumps(step["json"])
    calls = [{"id": c.get("id") or "call_sim_%d" % state.next_id(), "type": "function",
              "function": {"name": c["name"], "arguments": json.dumps(c.get("arguments", {}))}}
             for c in step.get("tool_calls") or []]
    if step.get("bad_tool_json"):
        calls.append({"id": "call_sim_%d" % state.next_id(), "type": "function",
                      "function": {"name": step.get("name", "calculator"),
                                   "arguments": "{not json"}})
    if calls:
        message["tool_calls"] = calls
        finish = "tool_calls"
    message.setdefault("refusal", None)
    inp, out = usage_of(step, req_len, message)
    return {"id": "chatcmpl-sim%d" % state.next_id(), "object": "chat.completion",
            "created": int(time.time()), "model": body.get("model"),
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": finish}],
            "usage": {"prompt_tokens": inp, "completion_tokens": out,
                      "total_tokens": inp + out}}


def error_body(fmt, status, message=None):
    message = message or MESSAGES.get(status, "Error")
    if fmt == "anthropic":
        etype = ANTHROPIC_ERRORS.get(status, "api_error")
        return {"type": "error", "error": {"type": etype, "message": message},
                "request_id": "req_sim"}
    etype, code = OPENAI_ERRORS.get(status, ("server_error", None))
    return {"error": {"message": message, "type": etype, "param": None, "code": code}}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "llmsim/1"
    # TCP_NODELAY: headers and body go out in two writes; with Nagle's algorithm and the
    # client's delayed ACK every answer on a kept-alive connection waited ~40 ms.
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):  # quiet: tests read the request log instead
        pass

    def send(self, status, obj=None, raw=None, headers=()):
        data = raw if raw is not None else json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def read_body(self):
        """The request body bytes, or None after answering 413 (over 16 MiB) / 400."""
        try:
            n = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            n = -1
        if n < 0 or n > MAX_BODY:
            self.close_connection = True
            self.send(413 if n > MAX_BODY else 400, {"error": "body too large or unframed"})
            return None
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        st = self.server.state
        if self.path == "/_sim/requests":
            with st.lock:
                self.send(200, {"requests": list(st.log)})
        elif self.path == "/healthz":
            self.send(200, {"ok": True})
        else:
            self.send(404, {"error": "not found"})

    def do_POST(self):
        raw = self.read_body()
        if raw is None:
            return
        st = self.server.state
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = None
        if self.path.startswith("/_sim/"):
            return self.control(st, body)
        fmt = {"/v1/messages": "anthropic", "/v1/chat/completions": "openai"}.get(self.path)
        if not fmt:
            return self.send(404, error_body("anthropic", 404, "no such endpoint"))
        with st.lock:
            if len(st.log) < MAX_LOG:
                st.log.append({"path": self.path,
                               "headers": {k.lower(): v for k, v in self.headers.items()},
                               "body": body if body is not None else raw.decode("utf-8", "replace"),
                               "at_ms": int(time.time() * 1000)})
        if not self.authorized(fmt):
            return self.send(401, error_body(fmt, 401))
        if fmt == "anthropic" and not self.headers.get("anthropic-version"):
            return self.send(400, error_body(fmt, 400, "anthropic-version: header is required"))
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return self.send(400, error_body(fmt, 400, "the body is not a JSON request"))
        f = facts(fmt, body)
        step = take_step(st, f)
        if step.get("delay_ms"):
            time.sleep(float(step["delay_ms"]) / 1000.0)
        self.answer(st, fmt, step, f, body, len(raw))

    def authorized(self, fmt):
        if fmt == "anthropic":
            return self.headers.get("x-api-key") == self.server.anthropic_key
        if not self.server.openai_key:
            return True
        return self.headers.get("Authorization") == "Bearer " + self.server.openai_key

    def answer(self, st, fmt, step, f, body, req_len):
        if "status" in step and "raw" not in step:
            status = int(step["status"])
            headers = []
            if step.get("retry_after") is not None:
                headers.append(("retry-after", str(step["retry_after"])))
            if step.get("retry_after_ms") is not None:
                headers.append(("retry-after-ms", str(step["retry_after_ms"])))
            if "body" in step:
                return self.send(status, raw=str(step["body"]).encode(), headers=headers)
            return self.send(status, error_body(fmt, status), headers=headers)
        if "raw" in step:
            return self.send(int(step.get("status", 200)), raw=str(step["raw"]).encode())
        build = answer_anthropic if fmt == "anthropic" else answer_openai
        obj = build(st, step, f, body, req_len)
        if step.get("truncate"):
            data = json.dumps(obj).encode()
            self.close_connection = True
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data[:len(data) // 2])
            self.wfile.flush()
            return
        self.send(200, obj)

    def control(self, st, body):
        if self.path == "/_sim/reset":
            with st.lock:
                st.reset()
            return self.send(200, {"ok": True})
        if not isinstance(body, dict):
            return self.send(400, {"error": "a JSON object is expected"})
        if self.path == "/_sim/queue" and isinstance(body.get("steps"), list):
            with st.lock:
                st.queue.extend(s for s in body["steps"] if isinstance(s, dict))
                n = len(st.queue)
            return self.send(200, {"queued": n})
        if self.path == "/_sim/rules" and isinstance(body.get("rules"), list):
            with st.lock:
                st.rules.extend(dict(r) for r in body["rules"] if isinstance(r, dict))
                n = len(st.rules)
            return self.send(200, {"rules": n})
        return self.send(400, {"error": "unknown control request"})


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--anthropic-key", default="sim-anthropic-key")
    ap.add_argument("--openai-key", default="sim-openai-key",
                    help="empty: any key or none is accepted")
    a = ap.parse_args()
    srv = Server(("127.0.0.1", a.port), Handler)
    srv.state = State()
    srv.anthropic_key = a.anthropic_key
    srv.openai_key = a.openai_key
    print("llmsim listening on %d" % srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
