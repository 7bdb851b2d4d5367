-- toolgate schema, version 7: connectors, MCP authorization for connectors, the tool catalog
-- (issue 14).
-- (1) connectors: a user's own API or MCP connector. config holds everything that is not a
--     secret (base_url or url, the auth type and its non-secret fields, default headers that are
--     not secret, operations, example_payload); secret_enc the sealed JSON of the secret fields
--     (tg_sealed, AD "connectors|<id>|<user id>|<kid>"). Deleting is soft (deleted_at): a run
--     that names a deleted connector fails "not found", and its tools are soft-deleted.
--     auth_status is NULL for static auth, else the MCP authorization state of the connection:
--     'not_connected' (no token yet), 'ACTIVE', 'auth_refresh_required' (a refresh failed).
--     version grows with every change (the catalog re-syncs, the worker re-opens).
-- (2) connector_tokens: the OAuth tokens and client registration of an MCP connector that
--     requires authorization (MCP authorization 2025-11-25), sealed per user and connector.
-- (3) connector_oauth_states: the browser leg of a connector's authorization code flow, as
--     oauth_states is for Composio: random, single-use, expiring, bound to the user.
-- (4) tools: the catalog. tool_id is a UUIDv5 (RFC 9562) of the tool's string id; user_id is
--     '__system__' for built-ins. Soft delete. Synced rows carry the tag "synced".

CREATE TABLE connectors (
  id           TEXT PRIMARY KEY,                -- 'con_' + random
  user_id      TEXT NOT NULL REFERENCES users(id),
  kind         TEXT NOT NULL CHECK (kind = 'api' OR kind = 'mcp'),
  name         TEXT NOT NULL,
  description  TEXT NOT NULL DEFAULT '',
  config       TEXT NOT NULL DEFAULT '{}',      -- JSON, no secret
  secret_enc   BLOB,                            -- sealed JSON of the secret fields, or NULL
  auth_status  TEXT CHECK (auth_status IS NULL OR auth_status = 'not_connected' OR
                           auth_status = 'ACTIVE' OR auth_status = 'auth_refresh_required'),
  version      INTEGER NOT NULL DEFAULT 1,
  created_at   INTEGER NOT NULL,
  updated_at   INTEGER NOT NULL,
  deleted_at   INTEGER
);
CREATE INDEX connectors_user ON connectors(user_id, created_at) WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX connectors_name ON connectors(user_id, name) WHERE deleted_at IS NULL;

CREATE TABLE connector_tokens (
  connector_id TEXT PRIMARY KEY REFERENCES connectors(id),
  user_id      TEXT NOT NULL REFERENCES users(id),
  token_enc    BLOB,                            -- sealed {access_token, refresh_token?, ...}
  client_enc   BLOB,                            -- sealed client registration {client_id, ...}
  meta         TEXT NOT NULL DEFAULT '{}',      -- JSON, no secret: resource, issuer,
                                                -- token_endpoint, scope, registration kind
  expires_at   INTEGER,                         -- access token expiry, ms since the epoch
  updated_at   INTEGER NOT NULL
);

CREATE TABLE connector_oauth_states (
  state         TEXT PRIMARY KEY,               -- random, single-use
  user_id       TEXT NOT NULL REFERENCES users(id),
  connector_id  TEXT NOT NULL REFERENCES connectors(id),
  verifier_enc  BLOB NOT NULL,                  -- sealed PKCE code_verifier
  redirect_uri  TEXT NOT NULL,
  created_at    INTEGER NOT NULL,
  expires_at    INTEGER NOT NULL,
  used_at       INTEGER
);

CREATE TABLE tools (
  tool_id      TEXT PRIMARY KEY,                -- UUIDv5 of string_id
  string_id    TEXT NOT NULL,                   -- e.g. 'tool_api_jira'
  user_id      TEXT NOT NULL,                   -- '__system__' for built-ins
  name         TEXT NOT NULL,
  description  TEXT NOT NULL DEFAULT '',
  tool_type    TEXT NOT NULL CHECK (tool_type = 'local' OR tool_type = 'mcp' OR
                                    tool_type = 'api' OR tool_type = 'crewai' OR
                                    tool_type = 'custom'),
  source       TEXT NOT NULL CHECK (source = 'builtin' OR source = 'connector' OR
                                    source = 'composio' OR source = 'user'),
  connector_id TEXT,                            -- the connector it came from, if any
  definition   TEXT NOT NULL,                   -- JSON: input_schema, source, connector id,
                                                -- tool name, ...
  status       TEXT NOT NULL DEFAULT 'active',
  version      INTEGER NOT NULL DEFAULT 1,
  tags         TEXT NOT NULL DEFAULT '[]',      -- JSON array of strings
  created_at   INTEGER NOT NULL,
  updated_at   INTEGER NOT NULL,
  deleted_at   INTEGER
);
CREATE INDEX tools_user ON tools(user_id, name) WHERE deleted_at IS NULL;
CREATE INDEX tools_connector ON tools(connector_id) WHERE connector_id IS NOT NULL;
