-- toolgate schema, version 3: cheaper admission writes, same rows and the same rules.
-- (1) The status CHECK constraints of workflow_runs, connected_accounts and tool_executions are
--     OR-chains of equalities instead of `status IN (...)`: SQLite codes an IN list of three or
--     more constants as an ephemeral index that it builds on every execution of a statement that
--     writes the column (sqlite3FindInIndex); the equalities are plain comparisons. The allowed
--     values are exactly those of 001_init.sql.
-- (2) workflow_runs_queue and workflow_runs_lease are partial indexes holding only the rows the
--     worker's claim looks for ('queued' by available_at, 'running' by lease_expires_at): an
--     admission no longer writes a lease-index entry, and finished runs leave both. Every query
--     on them names the status with `=` (worker/wk_claim.c), which implies the index's WHERE.
-- (3) The idempotency key's uniqueness (user_id, idempotency_key) is a partial unique index over
--     the rows that have a key (NULL keys never conflicted): a run without a key writes no entry.
--     The lookup `user_id = ? AND idempotency_key = ?` implies `idempotency_key IS NOT NULL`.
--
-- A CHECK cannot be altered in place, so the three tables are rebuilt following
-- https://www.sqlite.org/lang_altertable.html "Making Other Kinds Of Table Schema Changes":
-- tg_db's migration runner turns foreign_keys OFF before BEGIN IMMEDIATE (the pragma is a no-op
-- inside a transaction), so dropping connected_accounts does not cascade into mcp_connections,
-- and runs PRAGMA foreign_key_check before COMMIT. Views are dropped first (a rename checks every
-- view) and re-created unchanged. Row ids are copied, so every reference stays valid.

DROP VIEW v_runs;
DROP VIEW v_connections;
DROP VIEW v_tool_executions;
DROP VIEW v_credits;

-- connected_accounts (parent of mcp_connections ON DELETE CASCADE: foreign keys are OFF here).
CREATE TABLE new_connected_accounts (
  id                  INTEGER PRIMARY KEY,
  user_id             TEXT NOT NULL REFERENCES users(id),
  provider            TEXT NOT NULL,
  auth_config_id      TEXT NOT NULL REFERENCES auth_configs(id),
  composio_account_id TEXT,                     -- 'ca_...'
  status              TEXT NOT NULL CHECK (status = 'PENDING' OR status = 'ACTIVE' OR
                                           status = 'EXPIRED' OR status = 'INACTIVE' OR
                                           status = 'FAILED' OR status = 'REVOKED' OR
                                           status = 'DISCONNECTED'),
  status_reason       TEXT,                     -- Composio's status/reason verbatim where it differs
  version             INTEGER NOT NULL DEFAULT 1, -- bumped on every change
  last_checked_at     INTEGER,
  connected_at        INTEGER,
  created_at          INTEGER NOT NULL,
  updated_at          INTEGER NOT NULL,
  UNIQUE (user_id, auth_config_id)
);
INSERT INTO new_connected_accounts (id, user_id, provider, auth_config_id, composio_account_id,
                                    status, status_reason, version, last_checked_at,
                                    connected_at, created_at, updated_at)
SELECT id, user_id, provider, auth_config_id, composio_account_id, status, status_reason, version,
       last_checked_at, connected_at, created_at, updated_at
FROM connected_accounts;
DROP TABLE connected_accounts;
ALTER TABLE new_connected_accounts RENAME TO connected_accounts;
CREATE INDEX connected_accounts_user ON connected_accounts(user_id, provider);
CREATE INDEX connected_accounts_ca ON connected_accounts(composio_account_id);

-- workflow_runs (parent of tool_executions, rebuilt below).
CREATE TABLE new_workflow_runs (
  id               TEXT PRIMARY KEY,            -- 'run_' + random
  workflow_id      TEXT NOT NULL REFERENCES workflows(id),
  user_id          TEXT NOT NULL REFERENCES users(id),
  status           TEXT NOT NULL CHECK (status = 'queued' OR status = 'running' OR
                                        status = 'succeeded' OR status = 'failed' OR
                                        status = 'attention' OR status = 'canceled'),
  inputs           TEXT NOT NULL DEFAULT '{}',  -- JSON
  metadata         TEXT NOT NULL DEFAULT '{}',  -- JSON: tool_constraints, providers, reasons, error
  output           TEXT,                        -- JSON
  error            TEXT,                        -- human-readable
  error_class      TEXT,                        -- broker_auth, provider_auth, mcp_session_lost,
                                                -- tool_error, rate_limited, timeout, internal
  idempotency_key  TEXT,                        -- unique per user: workflow_runs_idem
  request_hash     TEXT,                        -- hash of the admitted request, for the key
  cost             INTEGER NOT NULL DEFAULT 0,  -- credits debited at admission
  attempt          INTEGER NOT NULL DEFAULT 0,  -- bumped by every claim
  claimed_by       TEXT,
  lease_expires_at INTEGER,
  available_at     INTEGER NOT NULL,            -- not claimable before
  cancel_requested INTEGER NOT NULL DEFAULT 0,
  created_at       INTEGER NOT NULL,
  started_at       INTEGER,
  finished_at      INTEGER,
  inputs_secret_enc BLOB                        -- 002_secret_inputs.sql
);
INSERT INTO new_workflow_runs (id, workflow_id, user_id, status, inputs, metadata, output, error,
                               error_class, idempotency_key, request_hash, cost, attempt,
                               claimed_by, lease_expires_at, available_at, cancel_requested,
                               created_at, started_at, finished_at, inputs_secret_enc)
SELECT id, workflow_id, user_id, status, inputs, metadata, output, error, error_class,
       idempotency_key, request_hash, cost, attempt, claimed_by, lease_expires_at, available_at,
       cancel_requested, created_at, started_at, finished_at, inputs_secret_enc
FROM workflow_runs;
DROP TABLE workflow_runs;
ALTER TABLE new_workflow_runs RENAME TO workflow_runs;
CREATE UNIQUE INDEX workflow_runs_idem ON workflow_runs(user_id, idempotency_key)
  WHERE idempotency_key IS NOT NULL;
CREATE INDEX workflow_runs_queue ON workflow_runs(available_at) WHERE status = 'queued';
CREATE INDEX workflow_runs_user ON workflow_runs(user_id, created_at);
CREATE INDEX workflow_runs_lease ON workflow_runs(lease_expires_at) WHERE status = 'running';

CREATE TABLE new_tool_executions (
  id           INTEGER PRIMARY KEY,
  run_id       TEXT NOT NULL REFERENCES workflow_runs(id),
  attempt      INTEGER NOT NULL,
  node_id      TEXT NOT NULL,
  provider     TEXT,                            -- NULL for ad-hoc MCP nodes
  tool_name    TEXT NOT NULL,
  arguments    TEXT,                            -- JSON, secrets redacted
  response     TEXT,                            -- JSON (CallToolResult or error)
  status       TEXT NOT NULL CHECK (status = 'pending' OR status = 'success' OR
                                    status = 'failed' OR status = 'unknown'),
  error        TEXT,
  error_class  TEXT,
  duration_ms  INTEGER,
  executed_at  INTEGER NOT NULL,                -- when the pending row was written
  completed_at INTEGER
);
INSERT INTO new_tool_executions (id, run_id, attempt, node_id, provider, tool_name, arguments,
                                 response, status, error, error_class, duration_ms, executed_at,
                                 completed_at)
SELECT id, run_id, attempt, node_id, provider, tool_name, arguments, response, status, error,
       error_class, duration_ms, executed_at, completed_at
FROM tool_executions;
DROP TABLE tool_executions;
ALTER TABLE new_tool_executions RENAME TO tool_executions;
CREATE INDEX tool_executions_run ON tool_executions(run_id, id);

-- The views of 001_init.sql, unchanged.
CREATE VIEW v_runs AS
SELECT r.id, r.user_id, w.name AS workflow, r.status, r.attempt, r.claimed_by,
       r.error_class, r.error,
       strftime('%Y-%m-%d %H:%M:%f', r.created_at / 1000.0, 'unixepoch') AS created,
       CASE WHEN r.finished_at IS NOT NULL THEN r.finished_at - r.created_at END AS total_ms,
       (SELECT count(*) FROM tool_executions t WHERE t.run_id = r.id) AS tool_calls
FROM workflow_runs r JOIN workflows w ON w.id = r.workflow_id;

CREATE VIEW v_connections AS
SELECT c.user_id, c.provider, c.status, c.status_reason, c.composio_account_id, c.version,
       m.url IS NOT NULL AS has_mcp_url,
       strftime('%Y-%m-%d %H:%M:%f', c.last_checked_at / 1000.0, 'unixepoch') AS last_checked
FROM connected_accounts c LEFT JOIN mcp_connections m ON m.connected_account_id = c.id;

CREATE VIEW v_tool_executions AS
SELECT t.run_id, t.attempt, t.node_id, t.provider, t.tool_name, t.status, t.error_class,
       t.duration_ms, substr(t.response, 1, 120) AS response_head
FROM tool_executions t;

CREATE VIEW v_credits AS
SELECT u.id AS user_id, u.credits,
       (SELECT count(*) FROM credit_ledger l WHERE l.user_id = u.id) AS ledger_rows
FROM users u;
