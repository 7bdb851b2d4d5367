#!/usr/bin/env python3
"""Integration test of the model simulator (tests/llmsim): the agent tests trust its answers, so
each wire format and every step kind is checked here against the shapes of the real APIs
(Anthropic Messages, OpenAI Chat Completions), as a client sees them on the wire."""
import http.client as httpc
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "llmsim"))
from harness import main, raw  # noqa: E402
from llmsim_client import LlmSim  # noqa: E402

SIM = None
AKEY, OKEY = "sim-anthropic-key", "sim-openai-key"


def post(path, body, headers, raw=None):
    c = httpc.HTTPConnection("127.0.0.1", SIM.port, timeout=10)
    data = raw if raw is not None else json.dumps(body).encode()
    c.request("POST", path, body=data, headers=dict(headers, **{"Content-Type": "application/json"}))
    r = c.getresponse()
    text = r.read()
    hdrs = {k.lower(): v for k, v in r.getheaders()}
    c.close()
    try:
        return r.status, hdrs, json.loads(text)
    except ValueError:
        return r.status, hdrs, text


def anthropic(body=None, key=AKEY, version="2023-06-01"):
    h = {"x-api-key": key} if key else {}
    if version:
        h["anthropic-version"] = version
    body = body or {"model": "claude-test", "max_tokens": 100,
                    "messages": [{"role": "user", "content": "hello"}]}
    return post("/v1/messages", body, h)


def openai(body=None, key=OKEY):
    h = {"Authorization": "Bearer " + key} if key else {}
    body = body or {"model": "gpt-test", "messages": [{"role": "user", "content": "hello"}]}
    return post("/v1/chat/completions", body, h)


def fresh(steps=None, rules=None):
    SIM.reset()
    if steps:
        SIM.queue(steps)
    if rules:
        SIM.rules(rules)


def check_anthropic_message(b):
    assert b["type"] == "message" and b["role"] == "assistant" and b["id"].startswith("msg_")
    assert b["model"] == "claude-test" and b["stop_sequence"] is None
    assert isinstance(b["content"], list)
    assert isinstance(b["usage"]["input_tokens"], int) and b["usage"]["output_tokens"] > 0


def check_openai_completion(b):
    assert b["object"] == "chat.completion" and isinstance(b["created"], int)
    assert b["model"] == "gpt-test" and len(b["choices"]) == 1 and b["choices"][0]["index"] == 0
    assert b["choices"][0]["message"]["role"] == "assistant"
    u = b["usage"]
    assert u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"]


def test_text_both_formats():
    fresh([{"text": "hi there"}, {"text": "hello back"}])
    s, _, b = anthropic()
    assert s == 200, b
    check_anthropic_message(b)
    assert b["content"] == [{"type": "text", "text": "hi there"}] and b["stop_reason"] == "end_turn"
    s, _, b = openai()
    assert s == 200, b
    check_openai_completion(b)
    assert b["choices"][0]["message"]["content"] == "hello back"
    assert b["choices"][0]["finish_reason"] == "stop"
    assert "tool_calls" not in b["choices"][0]["message"]


def test_default_answer_is_ok():
    fresh()
    assert anthropic()[2]["content"][0]["text"] == "ok"
    assert openai()[2]["choices"][0]["message"]["content"] == "ok"


def test_auth():
    fresh([{"text": "never taken"}])
    s, _, b = anthropic(key="wrong")
    assert s == 401 and b["type"] == "error" and b["error"]["type"] == "authentication_error"
    s, _, b = anthropic(key=None)
    assert s == 401
    s, _, b = anthropic(version=None)
    assert s == 400 and b["error"]["type"] == "invalid_request_error"
    s, _, b = openai(key="wrong")
    assert s == 401 and b["error"]["code"] == "invalid_api_key" and "message" in b["error"]
    s, _, b = openai(key=None)
    assert s == 401
    # a refused request takes no step
    assert anthropic()[2]["content"][0]["text"] == "never taken"


def test_parallel_tool_calls():
    calls = [{"name": "calculator", "arguments": {"expression": "2+2"}},
             {"name": "search", "arguments": {"q": "x"}, "id": "given_id"}]
    fresh([{"tool_calls": calls}, {"tool_calls": calls}])
    s, _, b = anthropic()
    assert s == 200 and b["stop_reason"] == "tool_use"
    uses = [c for c in b["content"] if c["type"] == "tool_use"]
    assert [u["name"] for u in uses] == ["calculator", "search"]
    assert uses[0]["input"] == {"expression": "2+2"} and uses[1]["id"] == "given_id"
    assert uses[0]["id"].startswith("toolu_")
    s, _, b = openai()
    m = b["choices"][0]
    assert m["finish_reason"] == "tool_calls" and m["message"]["content"] is None
    tc = m["message"]["tool_calls"]
    assert [t["type"] for t in tc] == ["function", "function"]
    assert json.loads(tc[0]["function"]["arguments"]) == {"expression": "2+2"}
    assert isinstance(tc[0]["function"]["arguments"], str) and tc[1]["id"] == "given_id"


def test_structured_json():
    fresh([{"json": {"win_probability": 72}}] * 4)
    forced = {"model": "claude-test", "max_tokens": 100,
              "messages": [{"role": "user", "content": "score it"}],
              "tools": [{"name": "structured_output", "input_schema": {"type": "object"}}],
              "tool_choice": {"type": "tool", "name": "structured_output"}}
    b = anthropic(forced)[2]
    assert b["content"][0]["type"] == "tool_use" and b["content"][0]["name"] == "structured_output"
    assert b["content"][0]["input"] == {"win_probability": 72}
    b = anthropic()[2]  # not forced: the JSON as text
    assert json.loads(b["content"][0]["text"]) == {"win_probability": 72}
    rf = {"model": "gpt-test", "messages": [{"role": "user", "content": "score it"}],
          "response_format": {"type": "json_schema",
                              "json_schema": {"name": "structured_output", "schema": {}}}}
    b = openai(rf)[2]
    assert json.loads(b["choices"][0]["message"]["content"]) == {"win_probability": 72}
    b = openai()[2]
    assert json.loads(b["choices"][0]["message"]["content"]) == {"win_probability": 72}


def test_error_statuses():
    fresh([{"status": 429, "retry_after": 2}, {"status": 529}, {"status": 500, "body": "boom"},
           {"status": 503, "retry_after_ms": 150}, {"status": 429, "retry_after": 1}])
    s, h, b = anthropic()
    assert s == 429 and h["retry-after"] == "2" and b["error"]["type"] == "rate_limit_error"
    s, h, b = anthropic()
    assert s == 529 and b == {"type": "error", "error": {"type": "overloaded_error",
                                                         "message": "Overloaded"},
                              "request_id": "req_sim"}
    s, h, b = anthropic()
    assert s == 500 and b == b"boom"
    s, h, b = openai()
    assert s == 503 and h["retry-after-ms"] == "150" and b["error"]["type"] == "server_error"
    s, h, b = openai()
    assert s == 429 and b["error"]["code"] == "rate_limit_exceeded" and h["retry-after"] == "1"


def test_raw_and_bad_tool_json():
    fresh([{"raw": "{not json at all"}, {"raw": "{}", "status": 200}, {"bad_tool_json": True},
           {"bad_tool_json": True, "name": "lookup"}])
    s, _, b = anthropic()
    assert s == 200 and b == b"{not json at all"
    s, _, b = openai()
    assert s == 200 and b == {}
    b = anthropic()[2]
    assert b["content"][0]["type"] == "tool_use" and b["content"][0]["input"] == "not an object"
    b = openai()[2]
    fn = b["choices"][0]["message"]["tool_calls"][0]["function"]
    assert fn["name"] == "lookup" and fn["arguments"] == "{not json"


def test_truncate():
    fresh([{"truncate": True, "text": "x" * 200}])
    body = json.dumps({"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]})
    data = raw(SIM.port, ("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: "
                          "Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d"
                          "\r\n\r\n%s" % (OKEY, len(body), body)).encode(), shut=False)
    head, _, rest = data.partition(b"\r\n\r\n")
    n = int([ln for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length")][0]
            .split(b":")[1])
    assert head.startswith(b"HTTP/1.1 200") and 0 < len(rest) < n, (len(rest), n)


def test_delay_and_usage():
    fresh([{"text": "slow", "delay_ms": 300, "usage": {"input_tokens": 7, "output_tokens": 3}},
           {"text": "a" * 500}])
    t0 = time.monotonic()
    b = anthropic()[2]
    assert time.monotonic() - t0 >= 0.3
    assert b["usage"] == {"input_tokens": 7, "output_tokens": 3}
    big = {"model": "gpt-test", "messages": [{"role": "user", "content": "q" * 1000}]}
    u = openai(big)[2]["usage"]
    assert u["prompt_tokens"] >= 10 + 1000 // 100 and u["completion_tokens"] >= 5 + 500 // 50


def test_rules():
    fresh(rules=[
        {"when": {"system_contains": "Scorer"}, "step": {"text": "scorer"}},
        {"when": {"has_tool_results": True}, "step": {"text": "after tools"}},
        {"when": {"tools_include": "calculator", "model": "gpt-test"}, "step": {"text": "calc"}},
        {"when": {"last_user_contains": "twice"}, "step": {"text": "once"}, "times": 1},
        {"when": {"structured": True}, "step": {"json": {"k": 1}}},
        {"when": {"bogus_key": 1}, "step": {"text": "never"}}])
    a = {"model": "claude-test", "max_tokens": 10, "system": "You are the Win Probability Scorer",
         "messages": [{"role": "user", "content": "hi"}]}
    assert anthropic(a)[2]["content"][0]["text"] == "scorer"
    o = {"model": "gpt-test", "messages": [{"role": "system", "content": "You are a Scorer"},
                                           {"role": "user", "content": "hi"}]}
    assert openai(o)[2]["choices"][0]["message"]["content"] == "scorer"
    a = {"model": "claude-test", "max_tokens": 10, "messages": [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "c",
                                           "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1",
                                      "content": "4"}]}]}
    assert anthropic(a)[2]["content"][0]["text"] == "after tools"
    o = {"model": "gpt-test", "messages": [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "c", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "4"}]}
    assert openai(o)[2]["choices"][0]["message"]["content"] == "after tools"
    o = {"model": "gpt-test", "messages": [{"role": "user", "content": "x"}],
         "tools": [{"type": "function", "function": {"name": "calculator", "parameters": {}}}]}
    assert openai(o)[2]["choices"][0]["message"]["content"] == "calc"
    o["model"] = "other"  # every key of "when" must hold
    assert openai(o)[2]["choices"][0]["message"]["content"] == "ok"
    twice = {"model": "m", "messages": [{"role": "user", "content": "say it twice"}]}
    assert openai(twice)[2]["choices"][0]["message"]["content"] == "once"
    assert openai(twice)[2]["choices"][0]["message"]["content"] == "ok"  # times used up
    rf = {"model": "m", "messages": [{"role": "user", "content": "x"}],
          "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": {}}}}
    assert json.loads(openai(rf)[2]["choices"][0]["message"]["content"]) == {"k": 1}
    SIM.queue([{"text": "queued first"}])  # the queue wins over rules
    assert anthropic(dict(a, system="Scorer"))[2]["content"][0]["text"] == "queued first"


def test_request_log_and_reset():
    fresh()
    anthropic()
    openai()
    reqs = SIM.requests()
    assert [r["path"] for r in reqs] == ["/v1/messages", "/v1/chat/completions"]
    assert reqs[0]["headers"]["x-api-key"] == AKEY
    assert reqs[0]["headers"]["anthropic-version"] == "2023-06-01"
    assert reqs[1]["headers"]["authorization"] == "Bearer " + OKEY
    assert reqs[0]["body"]["model"] == "claude-test" and reqs[0]["at_ms"] <= reqs[1]["at_ms"]
    SIM.queue([{"text": "left over"}])
    SIM.reset()
    assert SIM.requests() == []
    assert anthropic()[2]["content"][0]["text"] == "ok"


def test_oversized_body_413():
    fresh()
    data = raw(SIM.port, b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
               % (17 * 1024 * 1024), shut=False)
    assert data.startswith(b"HTTP/1.1 413"), data
    assert SIM.requests() == []


def run_all():
    global SIM
    with LlmSim() as sim:
        SIM = sim
        main({k: v for k, v in globals().items() if k.startswith("test_")})


if __name__ == "__main__":
    run_all()
