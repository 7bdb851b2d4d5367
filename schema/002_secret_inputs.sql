-- toolgate schema, version 2: secret run inputs (DESIGN.md sections 6 and 8, README "Security").
-- A Start input variable declared {"secret": true} is stored here, sealed with
-- XChaCha20-Poly1305 (common/tg_crypto.c; AD "workflow_runs|<run id>|<user id>|<kid>"), as the
-- JSON object name -> value of the run's secret inputs; workflow_runs.inputs keeps "[REDACTED]"
-- in their place. NULL when the run has no secret inputs.

ALTER TABLE workflow_runs ADD COLUMN inputs_secret_enc BLOB;
