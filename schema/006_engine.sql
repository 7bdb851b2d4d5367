-- toolgate schema, version 6: the workflow engine (issue 13).
-- (1) workflow_runs gains the status 'waiting': a run parked at a HITL node, held by no worker
--     (claimed_by and lease_expires_at NULL), requeued by a review decision. The CHECK cannot be
--     altered in place, so the table is rebuilt as in 003_cheaper_writes.sql (foreign keys are
--     OFF in the migration runner; views dropped first and re-created unchanged; the indexes and
--     the user_queue triggers of 003 and 005 re-created unchanged: 'waiting' is neither queued
--     nor running, so a run parked there leaves its user's claim counts).
-- (2) node_executions: the node-by-node journal. One row per execution of a node in an attempt;
--     the engine reuses the output of a node whose last row is 'success' when the run is claimed
--     again, and decides about a node whose last row is 'pending' or 'unknown' (it was in
--     flight). resolution records the user's answer to an outcome_unknown attention
--     (POST /api/runs/{id}/resolve): 'retry', 'skip' or 'fail'.
-- (3) run_events: what happened, in order, for GET /api/runs/{id}/events (JSON and SSE). seq is
--     the event's id (Last-Event-ID); it only grows (rows are never deleted one by one).
-- (4) reviews: a HITL node's request for a human decision.
-- (5) credentials: a user's named secrets for API nodes (sealed like mcp_connections.headers_enc).

DROP VIEW v_runs;

CREATE TABLE new_workflow_runs (
  id               TEXT PRIMARY KEY,            -- 'run_' + random
  workflow_id      TEXT NOT NULL REFERENCES workflows(id),
  user_id          TEXT NOT NULL REFERENCES users(id),
  status           TEXT NOT NULL CHECK (status = 'queued' OR status = 'running' OR
                                        status = 'succeeded' OR status = 'failed' OR
                                        status = 'attention' OR status = 'canceled' OR
                                        status = 'waiting'),
  inputs           TEXT NOT NULL DEFAULT '{}',  -- JSON
  metadata         TEXT NOT NULL DEFAULT '{}',  -- JSON: tool_constraints, providers, reasons, error
  output           TEXT,                        -- JSON
  error            TEXT,                        -- human-readable
  error_class      TEXT,                        -- broker_auth, provider_auth, mcp_session_lost,
                                                -- tool_error, rate_limited, timeout, internal,
                                                -- expression_error, credential_missing,
                                                -- egress_denied, review_expired, outcome_unknown
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
CREATE INDEX workflow_runs_user ON workflow_runs(user_id, created_at);
CREATE INDEX workflow_runs_lease ON workflow_runs(lease_expires_at) WHERE status = 'running';
CREATE INDEX workflow_runs_user_queue ON workflow_runs(user_id, available_at)
  WHERE status = 'queued';

-- The user_queue triggers of 005_fair_claim.sql, unchanged.
CREATE TRIGGER user_queue_insert AFTER INSERT ON workflow_runs
WHEN new.status = 'queued' OR new.status = 'running'
BEGIN
  INSERT INTO user_queue (user_id, running, head_at)
  VALUES (new.user_id, new.status = 'running',
          CASE WHEN new.status = 'queued' THEN new.available_at END)
  ON CONFLICT (user_id) DO UPDATE SET
    running = running + excluded.running,
    head_at = min(coalesce(head_at, excluded.head_at), coalesce(excluded.head_at, head_at))
  WHERE excluded.running > 0 OR head_at IS NULL OR excluded.head_at < head_at;
END;

CREATE TRIGGER user_queue_update AFTER UPDATE OF status, available_at ON workflow_runs
WHEN old.status IS NOT new.status OR
     (new.status = 'queued' AND old.available_at IS NOT new.available_at)
BEGIN
  INSERT OR IGNORE INTO user_queue (user_id) VALUES (new.user_id);
  UPDATE user_queue SET
    running = running - (old.status = 'running') + (new.status = 'running'),
    served_at = CASE WHEN old.status = 'queued' AND new.status = 'running'
                     THEN CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
                     ELSE served_at END,
    head_at = CASE WHEN old.status = 'queued' OR new.status = 'queued'
                   THEN (SELECT min(available_at) FROM workflow_runs
                         WHERE status = 'queued' AND user_id = new.user_id)
                   ELSE head_at END
  WHERE user_id = new.user_id;
END;

CREATE TRIGGER user_queue_delete AFTER DELETE ON workflow_runs
WHEN old.status = 'queued' OR old.status = 'running'
BEGIN
  UPDATE user_queue SET
    running = running - (old.status = 'running'),
    head_at = (SELECT min(available_at) FROM workflow_runs
               WHERE status = 'queued' AND user_id = old.user_id)
  WHERE user_id = old.user_id;
END;

CREATE VIEW v_runs AS
SELECT r.id, r.user_id, w.name AS workflow, r.status, r.attempt, r.claimed_by,
       r.error_class, r.error,
       strftime('%Y-%m-%d %H:%M:%f', r.created_at / 1000.0, 'unixepoch') AS created,
       CASE WHEN r.finished_at IS NOT NULL THEN r.finished_at - r.created_at END AS total_ms,
       (SELECT count(*) FROM tool_executions t WHERE t.run_id = r.id) AS tool_calls
FROM workflow_runs r JOIN workflows w ON w.id = r.workflow_id;

CREATE TABLE node_executions (
  id          INTEGER PRIMARY KEY,
  run_id      TEXT NOT NULL REFERENCES workflow_runs(id),
  attempt     INTEGER NOT NULL,                 -- the run's attempt that executed it
  node_id     TEXT NOT NULL,                    -- the definition's id as a string
  node_type   TEXT NOT NULL,                    -- 'Start', 'MCP', 'API', 'Conditional', ...
  status      TEXT NOT NULL CHECK (status = 'pending' OR status = 'success' OR
                                   status = 'failed' OR status = 'skipped' OR
                                   status = 'waiting' OR status = 'unknown'),
  output      TEXT,                             -- JSON, secrets redacted
  error       TEXT,
  error_class TEXT,
  resolution  TEXT CHECK (resolution IS NULL OR resolution = 'retry' OR resolution = 'skip' OR
                          resolution = 'fail'),
  started_at  INTEGER NOT NULL,                 -- ms since the epoch
  finished_at INTEGER
);
CREATE INDEX node_executions_run ON node_executions(run_id, node_id, id);

CREATE TABLE run_events (
  seq     INTEGER PRIMARY KEY,                  -- the event id (SSE id, ?after=)
  run_id  TEXT NOT NULL REFERENCES workflow_runs(id),
  type    TEXT NOT NULL CHECK (type = 'node_started' OR type = 'node_finished' OR
                               type = 'node_skipped' OR type = 'waiting' OR
                               type = 'resumed' OR type = 'run_finished'),
  node_id TEXT,
  at      INTEGER NOT NULL,                     -- ms since the epoch
  data    TEXT                                  -- small JSON object, or NULL
);
CREATE INDEX run_events_run ON run_events(run_id, seq);

CREATE TABLE reviews (
  id                TEXT PRIMARY KEY,           -- 'rev_' + random
  run_id            TEXT NOT NULL REFERENCES workflow_runs(id),
  node_id           TEXT NOT NULL,
  user_id           TEXT NOT NULL REFERENCES users(id),
  title             TEXT,
  priority          TEXT,
  message           TEXT,
  allowed_decisions TEXT NOT NULL,              -- JSON array of strings
  status            TEXT NOT NULL CHECK (status = 'pending' OR status = 'decided' OR
                                         status = 'expired' OR status = 'canceled'),
  decision          TEXT,
  comment           TEXT,
  created_at        INTEGER NOT NULL,
  decided_at        INTEGER,
  expires_at        INTEGER,                    -- NULL: never
  UNIQUE (run_id, node_id)
);
CREATE INDEX reviews_user ON reviews(user_id, status, created_at);
CREATE INDEX reviews_expiry ON reviews(expires_at) WHERE status = 'pending';

CREATE TABLE credentials (
  id         TEXT PRIMARY KEY,                  -- 'cred_' + random
  user_id    TEXT NOT NULL REFERENCES users(id),
  name       TEXT NOT NULL,                     -- what {{secrets.<name>}} and config.credential say
  type       TEXT NOT NULL CHECK (type = 'bearer' OR type = 'api_key' OR type = 'basic' OR
                                  type = 'oauth2'),
  hosts      TEXT NOT NULL DEFAULT '[]',        -- JSON array of host names it serves
  meta       TEXT NOT NULL DEFAULT '{}',        -- JSON, non-secret settings (token_url, client_id,
                                                -- scope, grant, header or parameter name)
  secret_enc BLOB NOT NULL,                     -- sealed JSON of the secret fields (tg_sealed)
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  UNIQUE (user_id, name)
);
