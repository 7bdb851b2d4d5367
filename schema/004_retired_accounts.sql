-- toolgate schema, version 4: Composio accounts retired by a reconnect, until Composio has
-- deleted them.
-- A reconnect (a new OAuth flow for a provider whose row holds an account) stores the new
-- account id in the row; the previous account would stay live at Composio, a grant nobody
-- uses. The callback records it here in the same transaction that stores the new one, then
-- deletes it at Composio (DELETE /api/v3/connected_accounts/{id}; 2xx or 404 count as done) and
-- forgets it; a delete that fails stays recorded and the gateway's periodic cleanup retries it
-- (common/tg_store_accounts.c owns the table, gateway/gw_sync.c retries).

CREATE TABLE retired_accounts (
  composio_account_id TEXT PRIMARY KEY,         -- 'ca_...'
  user_id             TEXT NOT NULL,
  provider            TEXT NOT NULL,
  retired_at          INTEGER NOT NULL,         -- ms since the epoch
  attempts            INTEGER NOT NULL DEFAULT 0, -- failed deletes so far
  last_attempt_at     INTEGER,
  last_error          TEXT
);
CREATE INDEX retired_accounts_attempt ON retired_accounts(last_attempt_at);
