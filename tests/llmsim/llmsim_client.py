"""LlmSim: starts tests/llmsim/llmsim.py for a test and scripts it (README "Language models").

    import sys, os
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "llmsim"))
    from llmsim_client import LlmSim

    sim = LlmSim().start()                 # a free loopback port unless one is given
    env = sim.env()                        # ANTHROPIC_/OPENAI_ API keys and base URLs for a worker
    sim.queue([{"status": 429, "retry_after": 1}, {"text": "done"}])
    sim.rules([{"when": {"structured": True}, "step": {"json": {"win_probability": 72}}}])
    ... run the workflow ...
    reqs = sim.requests()                  # [{"path", "headers", "body", "at_ms"}, ...]
    sim.reset(); sim.stop()

Also a context manager (with LlmSim() as sim: ...). Standard library only.
"""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


def _free_port():
    try:  # the harness's pick (below the ephemeral range) when it is importable
        sys.path.insert(0, os.path.join(HERE, "..", "integration"))
        from harness import free_port
        return free_port()
    except ImportError:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]


class LlmSim:
    def __init__(self, port=None, anthropic_key="sim-anthropic-key", openai_key="sim-openai-key",
                 log_path=None):
        self.port = port or _free_port()
        self.anthropic_key = anthropic_key
        self.openai_key = openai_key
        self.log_path = log_path
        self.proc = None
        self._log = None

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    @property
    def anthropic_base(self):
        """ANTHROPIC_BASE_URL: the client appends /v1/messages."""
        return self.url

    @property
    def openai_base(self):
        """OPENAI_BASE_URL (and an openai_compatible base URL): the client appends
        /chat/completions."""
        return self.url + "/v1"

    def env(self):
        """The variables that point a worker at this simulator."""
        return {"ANTHROPIC_API_KEY": self.anthropic_key, "ANTHROPIC_BASE_URL": self.anthropic_base,
                "OPENAI_API_KEY": self.openai_key, "OPENAI_BASE_URL": self.openai_base}

    def start(self, timeout=10):
        self._log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            [PYTHON, os.path.join(HERE, "llmsim.py"), "--port", str(self.port),
             "--anthropic-key", self.anthropic_key, "--openai-key", self.openai_key],
            stdout=subprocess.PIPE, stderr=self._log)
        deadline = time.monotonic() + timeout
        line = self.proc.stdout.readline().decode()
        if not line.startswith("llmsim listening on"):
            self.stop()
            raise RuntimeError("llmsim did not start: %r" % line)
        while time.monotonic() < deadline:  # listening was printed after bind: this is quick
            try:
                socket.create_connection(("127.0.0.1", self.port), 1).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("llmsim does not accept connections")

    def _call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read() or b"{}")

    def queue(self, steps):
        """Appends steps: each model request (either format) takes the next one."""
        return self._call("POST", "/_sim/queue", {"steps": list(steps)})

    def rules(self, rules):
        """Appends rules, used when the queue is empty (first match with times left wins)."""
        return self._call("POST", "/_sim/rules", {"rules": list(rules)})

    def requests(self):
        """The model requests received so far, in arrival order."""
        return self._call("GET", "/_sim/requests")["requests"]

    def reset(self):
        return self._call("POST", "/_sim/reset", {})

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc and self.proc.stdout:
            self.proc.stdout.close()
        if self._log not in (None, subprocess.DEVNULL):
            self._log.close()
        self.proc = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False
