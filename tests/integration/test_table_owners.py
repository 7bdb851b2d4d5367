#!/usr/bin/env python3
"""One owner per table: no SQL statement in common/, gateway/, worker/ or tools/ writes a table
outside the module that owns it (STYLE.md "One owner per table").

The C sources are read as C: comments are skipped, string literals are collected, and adjacent
literals (split across lines, or around a macro name such as FENCE) are joined into one statement
before the write patterns (INSERT [OR ...] INTO, REPLACE INTO, UPDATE [OR ...], DELETE FROM; any
case, any whitespace) are looked for. No stack is started.
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SRC, main  # noqa: E402

DIRS = ("common", "gateway", "worker", "tools")

# table -> the one file allowed to write it
OWNERS = {
    "connected_accounts": "common/tg_store_accounts.c",
    "workflow_runs": "common/tg_store_runs.c",
    "tool_executions": "common/tg_store_runs.c",
    "credit_ledger": "common/tg_store_credits.c",
    "users": "common/tg_store_credits.c",
    "auth_configs": "common/tg_store_auth_configs.c",
    "reviews": "common/tg_store_reviews.c",
    "node_executions": "common/tg_store_nodes.c",
    "run_events": "common/tg_store_nodes.c",
    "credentials": "common/tg_store_credentials.c",
    "tools": "common/tg_store_tools.c",
    "connectors": "common/tg_store_connectors.c",
    "connector_tokens": "common/tg_store_connector_tokens.c",
    "connector_oauth_states": "common/tg_store_connector_tokens.c",
}

# The repository of sealed columns may write the sealed secret column of a run, and nothing else
# of workflow_runs: one assignment of inputs_secret_enc, addressed by the row. Likewise the key
# rotation re-seals credentials.secret_enc and nothing else of credentials.
SEALED_FILE = "common/tg_sealed.c"
SEALED_OK = re.compile(r"^\s*UPDATE\s+workflow_runs\s+SET\s+inputs_secret_enc\s*=\s*\?\d*\s+WHERE\b",
                       re.I)
SEALED_CRED_OK = re.compile(r"^\s*UPDATE\s+credentials\s+SET\s+secret_enc\s*=\s*\?\d*\s+WHERE\b",
                            re.I)

SEALED_CONN_OK = re.compile(r"^\s*UPDATE\s+connectors\s+SET\s+secret_enc\s*=\s*\?\d*\s+WHERE\b",
                            re.I)
# ... and the sealed columns of an MCP connector's authorization: tokens, client, PKCE verifier.
SEALED_TOK_OK = re.compile(r"^\s*UPDATE\s+(?:connector_tokens\s+SET\s+(?:token|client)_enc|"
                           r"connector_oauth_states\s+SET\s+verifier_enc)\s*=\s*\?\d*\s+WHERE\b",
                           re.I)

WRITE = re.compile(r"\b(?:INSERT(?:\s+OR\s+\w+)?\s+INTO|REPLACE\s+INTO|UPDATE(?:\s+OR\s+\w+)?|"
                   r"DELETE\s+FROM)\s+[\"`\[]?(\w+)", re.I)
# What may stand between two literals that C (or a macro) joins into one string.
JOIN_GAP = re.compile(r"^[\sA-Za-z0-9_]*$")


def literals(source):
    """The string literals of C source, adjacent ones joined: a list of (line, text)."""
    out, i, n = [], 0, len(source)
    last_end = None
    while i < n:
        c = source[i]
        if source.startswith("//", i):
            j = source.find("\n", i)
            i = n if j < 0 else j
        elif source.startswith("/*", i):
            j = source.find("*/", i + 2)
            i = n if j < 0 else j + 2
        elif c == "'":
            i += 1
            while i < n and source[i] != "'":
                i += 2 if source[i] == "\\" else 1
            i += 1
        elif c == '"':
            start, i, buf = i, i + 1, []
            while i < n and source[i] != '"':
                if source[i] == "\\" and i + 1 < n:
                    buf.append(" " if source[i + 1] in "nt" else source[i + 1])
                    i += 2
                else:
                    buf.append(source[i])
                    i += 1
            i += 1
            text = "".join(buf)
            if out and last_end is not None and JOIN_GAP.match(source[last_end:start]):
                out[-1] = (out[-1][0], out[-1][1] + " " + text)
            else:
                out.append((source.count("\n", 0, start) + 1, text))
            last_end = i
        else:
            i += 1
    return out


def writes(source):
    """(line, table, statement) for every write statement in source."""
    return [(line, m.group(1).lower(), text[m.start():])
            for line, text in literals(source) for m in WRITE.finditer(text)]


def offences(rel, source):
    """The writes in file rel (path from the source root) that its module does not own."""
    bad = []
    for line, table, stmt in writes(source):
        owner = OWNERS.get(table)
        if owner is None or owner == rel:
            continue
        if rel == SEALED_FILE and table == "workflow_runs" and SEALED_OK.match(stmt):
            continue  # the sealed column only (see SEALED_OK)
        if rel == SEALED_FILE and table == "credentials" and SEALED_CRED_OK.match(stmt):
            continue  # the sealed column only (see SEALED_CRED_OK)
        if rel == SEALED_FILE and table == "connectors" and SEALED_CONN_OK.match(stmt):
            continue  # the sealed column only (see SEALED_CONN_OK)
        if rel == SEALED_FILE and table.startswith("connector_") and SEALED_TOK_OK.match(stmt):
            continue  # the sealed columns only (see SEALED_TOK_OK)
        bad.append("%s:%d writes %s (owner %s): %s" % (rel, line, table, owner, stmt[:100]))
    return bad


def sources():
    for d in DIRS:
        for root, _, files in os.walk(os.path.join(SRC, d)):
            for f in sorted(files):
                if f.endswith((".c", ".h")):
                    path = os.path.join(root, f)
                    yield os.path.relpath(path, SRC), path


def test_the_patterns_can_fail():
    """The scanner finds writes however they are spelled, and only writes."""
    sample = '''
        /* "UPDATE workflow_runs SET x = 1" in a comment is not code */
        static const char a[] = "insert or ignore INTO credit_ledger (a) VALUES (1)";
        static const char b[] =
            "UPDATE "
            "connected_accounts SET version = version + 1 WHERE " FENCE;
        int c = db_exec("DELETE\\nFROM\\tworkflow_runs WHERE id = ?", 'x', '"');
        int d = db_exec("REPLACE   INTO users (id) VALUES (?)");
        int e = db_exec("SELECT * FROM workflow_runs", "DELETE FROM workflows");
        int f = db_exec("INSERT INTO tool_executions (a) SELECT 1 WHERE EXISTS (SELECT 1 FROM "
                        "workflow_runs)", "ON CONFLICT(id) DO UPDATE SET updated_at = 1");
    '''
    found = sorted(t for _, t, _ in writes(sample) if t in OWNERS)
    assert found == ["connected_accounts", "credit_ledger", "tool_executions", "users",
                     "workflow_runs"], found
    assert {"workflows", "set"} <= {t for _, t, _ in writes(sample)}  # written, but not owned here
    bad = offences("gateway/gw_example.c", sample)
    assert len(bad) == 5, bad
    assert offences("common/tg_store_runs.c", 'x = "UPDATE workflow_runs SET a = 1";') == []
    sealed = '"UPDATE workflow_runs SET inputs_secret_enc = ?1 WHERE id = ?2"'
    assert offences(SEALED_FILE, sealed) == []
    assert offences(SEALED_FILE, '"UPDATE workflow_runs SET status = ?1 WHERE id = ?2"')
    assert offences(SEALED_FILE, '"UPDATE workflow_runs SET inputs_secret_enc = ?1, status = '
                                 '\'queued\' WHERE id = ?2"')
    assert offences("common/tg_crypto.c", sealed)
    assert offences(SEALED_FILE, '"UPDATE credentials SET secret_enc = ?1 WHERE id = ?2"') == []
    assert offences(SEALED_FILE, '"UPDATE credentials SET name = ?1 WHERE id = ?2"')


def test_every_table_has_its_owner_writing_it():
    """The owners are found where this test looks, so the scan below covers real files."""
    seen = {}
    for rel, path in sources():
        with open(path, encoding="utf-8", errors="replace") as f:
            for _, table, _ in writes(f.read()):
                seen.setdefault(table, set()).add(rel)
    for table, owner in OWNERS.items():
        assert owner in seen.get(table, set()), (table, owner, seen.get(table))


def test_no_write_outside_its_owner():
    bad = []
    for rel, path in sources():
        with open(path, encoding="utf-8", errors="replace") as f:
            bad += offences(rel, f.read())
    assert not bad, "\n" + "\n".join(bad)


if __name__ == "__main__":
    main(dict(globals()))
