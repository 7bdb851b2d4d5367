# The python side of tg_sandbox (README "Code nodes"): runs inside bubblewrap as
# `python3 -I -c <this file>`, embedded into tg_sandbox.c at build time.
#
# stdin: {"code": str, "inputs": {name: value}, "outputs": [name] | null}. The inputs become
# globals (names starting with "_" are dropped: they could replace __builtins__). The code runs
# with exec(compile(code, "<code>", "exec")) at top level. Descriptor 3 gets one JSON object:
#   success: the names to return. With "outputs", exactly those names (a missing or
#            non-serialisable one is an error). Else every top-level name that does not start
#            with "_", is not a module, function, class or other callable, is not an input
#            still bound to the object it came in as, and is JSON-serialisable; numpy scalars
#            and arrays become numbers and lists (.item(), .tolist()); NaN and infinities are
#            not JSON, so such names are left out.
#   failure: {"__error__": "<the exception's last line>"}; the traceback goes to stderr.
# Exit status: 0 success, 1 the code failed, 3 MemoryError (the parent's memory_exceeded).
# Start-up time is most of a Code node's overhead, so the runner imports only what python has
# loaded anyway: the json package (and the re module it compiles patterns with) is replaced by
# its C scanner for the job and a small encoder for the result; traceback only on an error.
import os
import sys
from _json import encode_basestring_ascii as _quote
from _json import make_scanner as _make_scanner


class _Ctx:  # what the C scanner reads of json.JSONDecoder
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = None  # NaN and Infinity: never in the job (jansson does not write them)
    memo = {}


def _fail(res, message, status):
    res.write('{"__error__": %s}' % _quote(message[:400]))
    res.flush()
    sys.stdout.flush()
    os._exit(status)


def _plain(v):
    np = sys.modules.get("numpy")
    if np is not None:
        if isinstance(v, np.ndarray):
            return v.tolist()
        if isinstance(v, np.generic):
            return v.item()
    if isinstance(v, (set, frozenset)):
        return sorted(v, key=repr)
    if isinstance(v, tuple):
        return list(v)
    raise TypeError("%s is not JSON-serialisable" % type(v).__name__)


def _enc(v, out, depth):
    if depth > 64:
        raise ValueError("nested too deeply")
    if v is None:
        out.append("null")
    elif v is True:
        out.append("true")
    elif v is False:
        out.append("false")
    elif isinstance(v, str):
        out.append(_quote(v))
    elif isinstance(v, int):
        out.append(int.__repr__(v))
    elif isinstance(v, float):
        if v != v or v in (float("inf"), float("-inf")):
            raise ValueError("NaN and infinities are not JSON")
        out.append(float.__repr__(v))
    elif isinstance(v, list):
        out.append("[")
        for i, x in enumerate(v):
            if i:
                out.append(",")
            _enc(x, out, depth + 1)
        out.append("]")
    elif isinstance(v, dict):
        out.append("{")
        for i, (k, x) in enumerate(v.items()):
            if k is None or isinstance(k, bool):  # as json.dumps converts keys
                k = "null" if k is None else "true" if k else "false"
            elif isinstance(k, (int, float)):
                k = repr(k)
            elif not isinstance(k, str):
                raise TypeError("keys must be strings")
            out.append(("," if i else "") + _quote(k) + ":")
            _enc(x, out, depth + 1)
        out.append("}")
    else:
        _enc(_plain(v), out, depth + 1)


def _encode(v):
    out = []
    _enc(v, out, 0)
    return "".join(out)


def _main():
    job = _make_scanner(_Ctx())(sys.stdin.buffer.read().decode("utf-8"), 0)[0]
    res = os.fdopen(3, "w", encoding="utf-8")
    inputs = {k: v for k, v in (job.get("inputs") or {}).items() if not k.startswith("_")}
    wanted = job.get("outputs")
    g = {"__name__": "__main__", "__builtins__": __builtins__}
    g.update(inputs)
    try:
        exec(compile(job["code"], "<code>", "exec"), g)
    except SystemExit as e:
        if e.code not in (None, 0):
            print("SystemExit: %s" % (e.code,), file=sys.stderr)
            _fail(res, "SystemExit: %s" % (e.code,), 1)
    except MemoryError:
        g.clear()
        print("MemoryError", file=sys.stderr)
        _fail(res, "MemoryError", 3)
    except BaseException as e:
        import traceback
        tb = e.__traceback__.tb_next if e.__traceback__ else None
        sys.stderr.write("".join(traceback.format_exception(type(e), e, tb)))
        _fail(res, traceback.format_exception_only(type(e), e)[-1].strip(), 1)
    out = []
    if wanted is not None:
        for name in wanted:
            if name not in g:
                _fail(res, "output %s is not defined" % name, 1)
            try:
                out.append('%s: %s' % (_quote(name), _encode(g[name])))
            except (TypeError, ValueError) as e:
                _fail(res, "output %s: %s" % (name, e), 1)
    else:
        for name, v in list(g.items()):
            if name.startswith("_") or isinstance(v, type(sys)) or callable(v):
                continue
            if name in inputs and v is inputs[name]:
                continue
            try:
                out.append('%s: %s' % (_quote(name), _encode(v)))
            except (TypeError, ValueError, RecursionError, MemoryError):
                continue
    sys.stdout.flush()
    res.write("{" + ", ".join(out) + "}")
    res.flush()


try:
    _main()
except MemoryError:
    os.write(3, b'{"__error__": "MemoryError"}')
    os._exit(3)
