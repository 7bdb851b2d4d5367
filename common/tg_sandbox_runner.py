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
import json
import os
import sys
import traceback
import types


def _fail(res, message, status):
    res.write(json.dumps({"__error__": message[:400]}))
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
    raise TypeError("%s is not JSON-serialisable" % type(v).__name__)


def _encode(v):
    return json.dumps(v, default=_plain, allow_nan=False)


_SKIP = (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType, type)


def _main():
    job = json.loads(sys.stdin.buffer.read().decode("utf-8"))
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
        tb = e.__traceback__.tb_next if e.__traceback__ else None
        sys.stderr.write("".join(traceback.format_exception(type(e), e, tb)))
        _fail(res, traceback.format_exception_only(type(e), e)[-1].strip(), 1)
    out = []
    if wanted is not None:
        for name in wanted:
            if name not in g:
                _fail(res, "output %s is not defined" % name, 1)
            try:
                out.append('%s: %s' % (json.dumps(name), _encode(g[name])))
            except (TypeError, ValueError) as e:
                _fail(res, "output %s: %s" % (name, e), 1)
    else:
        for name, v in list(g.items()):
            if name.startswith("_") or isinstance(v, _SKIP) or callable(v):
                continue
            if name in inputs and v is inputs[name]:
                continue
            try:
                out.append('%s: %s' % (json.dumps(name), _encode(v)))
            except (TypeError, ValueError, RecursionError):
                continue
    sys.stdout.flush()
    res.write("{" + ", ".join(out) + "}")
    res.flush()


try:
    _main()
except MemoryError:
    os.write(3, b'{"__error__": "MemoryError"}')
    os._exit(3)
