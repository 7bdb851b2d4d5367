-- toolgate schema, version 1 (DESIGN.md section 2).
-- Timestamps are integer milliseconds since the epoch (UTC). JSON columns hold JSON text.
-- Applied once by tg_db_open() inside a transaction; PRAGMA user_version records it.

CREATE TABLE users (
  id          TEXT PRIMARY KEY,                 -- from the auth system (JWT sub / X-User-Id)
  credits     INTEGER NOT NULL DEFAULT 0 CHECK (credits >= 0),
  created_at  INTEGER NOT NULL
);

CREATE TABLE credit_ledger (
  id          INTEGER PRIMARY KEY,
  user_id     TEXT NOT NULL REFERENCES users(id),
  run_id      TEXT,                             -- NULL for grants
  delta       INTEGER NOT NULL,                 -- negative: debit; positive: refund or grant
  reason      TEXT NOT NULL,                    -- 'run_admitted', 'run_refund', 'grant', ...
  created_at  INTEGER NOT NULL
);
CREATE INDEX credit_ledger_user ON credit_ledger(user_id, created_at);
CREATE INDEX credit_ledger_run ON credit_ledger(run_id);

CREATE TABLE auth_configs (
  id            TEXT PRIMARY KEY,               -- Composio 'ac_...'
  provider      TEXT NOT NULL UNIQUE,           -- 'gmail', 'slack', ...
  toolkit_slug  TEXT NOT NULL,
  display_name  TEXT NOT NULL,
  allowed_tools TEXT,                           -- JSON array or NULL (all)
  created_at    INTEGER NOT NULL,
  updated_at    INTEGER NOT NULL
);

CREATE TABLE connected_accounts (
  id                  INTEGER PRIMARY KEY,
  user_id             TEXT NOT NULL REFERENCES users(id),
  provider            TEXT NOT NULL,
  auth_config_id      TEXT NOT NULL REFERENCES auth_configs(id),
  composio_account_id TEXT,                     -- 'ca_...'
  status              TEXT NOT NULL CHECK (status IN ('PENDING','ACTIVE','EXPIRED','INACTIVE',
                                                      'FAILED','REVOKED','DISCONNECTED')),
  status_reason       TEXT,                     -- Composio's status/reason verbatim where it differs
  version             INTEGER NOT NULL DEFAULT 1, -- bumped on every change
  last_checked_at     INTEGER,
  connected_at        INTEGER,
  created_at          INTEGER NOT NULL,
  updated_at          INTEGER NOT NULL,
  UNIQUE (user_id, auth_config_id)
);
CREATE INDEX connected_accounts_user ON connected_accounts(user_id, provider);
CREATE INDEX connected_accounts_ca ON connected_accounts(composio_account_id);

CREATE TABLE mcp_connections (
  id                   INTEGER PRIMARY KEY,
  connected_account_id INTEGER NOT NULL UNIQUE REFERENCES connected_accounts(id) ON DELETE CASCADE,
  url                  TEXT,                    -- per-user MCP URL from Composio; NULL when cleared
  headers_enc          BLOB,                    -- encrypted JSON of per-user secret headers only
  last_synced_at       INTEGER,
  last_error           TEXT,
  created_at           INTEGER NOT NULL,
  updated_at           INTEGER NOT NULL
);

CREATE TABLE oauth_states (
  state        TEXT PRIMARY KEY,                -- random, >= 128 bits, URL-safe
  user_id      TEXT NOT NULL,
  provider     TEXT NOT NULL,
  redirect_uri TEXT,
  composio_account_id TEXT,                     -- the INITIATED account the link created
  created_at   INTEGER NOT NULL,
  expires_at   INTEGER NOT NULL,
  used_at      INTEGER                          -- single use
);
CREATE INDEX oauth_states_expiry ON oauth_states(expires_at);

CREATE TABLE workflows (
  id          TEXT PRIMARY KEY,                 -- 'wf_' + random
  user_id     TEXT NOT NULL REFERENCES users(id),
  name        TEXT NOT NULL,
  definition  TEXT NOT NULL,                    -- JSON, DESIGN.md section 6
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL
);
CREATE INDEX workflows_user ON workflows(user_id, created_at);

CREATE TABLE workflow_runs (
  id               TEXT PRIMARY KEY,            -- 'run_' + random
  workflow_id      TEXT NOT NULL REFERENCES workflows(id),
  user_id          TEXT NOT NULL REFERENCES users(id),
  status           TEXT NOT NULL CHECK (status IN ('queued','running','succeeded','failed',
                                                   'attention','canceled')),
  inputs           TEXT NOT NULL DEFAULT '{}',  -- JSON
  metadata         TEXT NOT NULL DEFAULT '{}',  -- JSON: tool_constraints, providers, reasons, error
  output           TEXT,                        -- JSON
  error            TEXT,                        -- human-readable
  error_class      TEXT,                        -- broker_auth, provider_auth, mcp_session_lost,
                                                -- tool_error, rate_limited, timeout, internal
  idempotency_key  TEXT,
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
  UNIQUE (user_id, idempotency_key)
);
CREATE INDEX workflow_runs_queue ON workflow_runs(status, available_at);
CREATE INDEX workflow_runs_user ON workflow_runs(user_id, created_at);
CREATE INDEX workflow_runs_lease ON workflow_runs(status, lease_expires_at);

CREATE TABLE tool_executions (
  id           INTEGER PRIMARY KEY,
  run_id       TEXT NOT NULL REFERENCES workflow_runs(id),
  attempt      INTEGER NOT NULL,
  node_id      TEXT NOT NULL,
  provider     TEXT,                            -- NULL for ad-hoc MCP nodes
  tool_name    TEXT NOT NULL,
  arguments    TEXT,                            -- JSON, secrets redacted
  response     TEXT,                            -- JSON (CallToolResult or error)
  status       TEXT NOT NULL CHECK (status IN ('pending','success','failed','unknown')),
  error        TEXT,
  error_class  TEXT,
  duration_ms  INTEGER,
  executed_at  INTEGER NOT NULL,                -- when the pending row was written
  completed_at INTEGER
);
CREATE INDEX tool_executions_run ON tool_executions(run_id, id);

CREATE TABLE webhook_events (                   -- each webhook-id processed once
  id          TEXT PRIMARY KEY,
  type        TEXT NOT NULL,
  received_at INTEGER NOT NULL
);

-- Views for humans at the sqlite3 shell. Times shown as UTC text.
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
