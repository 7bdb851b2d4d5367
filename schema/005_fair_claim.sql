-- toolgate schema: fair claiming across users.
-- The worker's claim (common/tg_store_runs.c, CLAIM_SQL) no longer takes the queued run available
-- earliest across everyone; it first picks a user, then that user's run available earliest:
--   the user with the fewest runs 'running', then the one served least recently (round-robin),
--   among the users that have a queued run available now and fewer running runs than the
--   per-user cap (TOOLGATE_USER_CONCURRENCY).
-- Picking the user from workflow_runs would walk every user with a queued run; user_queue keeps
-- one row per user with what the pick needs, so it is the first entry of user_queue_pick:
--   running   the user's runs in status 'running' (expired leases included: still in flight);
--   head_at   the earliest available_at of the user's 'queued' runs, NULL when none is queued;
--   served_at when a queued run of the user was last claimed (ms since the epoch, SQLite's
--             clock), NULL when never: the round-robin order among users equally busy.
-- The triggers below keep it exact for every writer of workflow_runs (the run store, and tests
-- or tools that insert queued rows directly): a run entering or leaving 'queued' or 'running',
-- or a queued run whose available_at changes, updates its user's row in the same statement.
-- The earliest available_at is re-read through workflow_runs_user_queue, O(log n) per change.
-- workflow_runs_user_queue (user_id, available_at) over queued rows replaces
-- workflow_runs_queue (available_at): the claim names a user first.

CREATE TABLE user_queue (
  user_id   TEXT PRIMARY KEY,
  running   INTEGER NOT NULL DEFAULT 0,
  head_at   INTEGER,
  served_at INTEGER
) WITHOUT ROWID;
CREATE INDEX user_queue_pick ON user_queue(running, served_at) WHERE head_at IS NOT NULL;

DROP INDEX workflow_runs_queue;
CREATE INDEX workflow_runs_user_queue ON workflow_runs(user_id, available_at)
  WHERE status = 'queued';

INSERT INTO user_queue (user_id, running, head_at)
SELECT user_id, sum(status = 'running'), min(CASE WHEN status = 'queued' THEN available_at END)
FROM workflow_runs WHERE status = 'queued' OR status = 'running' GROUP BY user_id;

CREATE TRIGGER user_queue_insert AFTER INSERT ON workflow_runs
WHEN new.status = 'queued' OR new.status = 'running'
BEGIN
  INSERT INTO user_queue (user_id, running, head_at)
  VALUES (new.user_id, new.status = 'running',
          CASE WHEN new.status = 'queued' THEN new.available_at END)
  ON CONFLICT (user_id) DO UPDATE SET
    running = running + excluded.running,
    head_at = min(coalesce(head_at, excluded.head_at), coalesce(excluded.head_at, head_at))
  -- a queued run behind the user's earliest one changes nothing: no write (the common case of
  -- an admission for a user who already has runs waiting)
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
