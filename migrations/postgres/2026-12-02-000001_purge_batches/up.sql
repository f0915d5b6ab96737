-- The purge deletes expired rows in small batches found through these indexes, and one
-- instance per period runs it (`job_runs`: a conditional UPDATE elects it).
CREATE INDEX sessions_expires_at ON sessions(expires_at);
CREATE INDEX sessions_last_seen_at ON sessions(last_seen_at);
CREATE INDEX auth_requests_expires_at ON auth_requests(expires_at);
CREATE INDEX auth_codes_expires_at ON auth_codes(expires_at);
CREATE INDEX tokens_expires_at ON tokens(expires_at);
CREATE INDEX tokens_rotated_at ON tokens(rotated_at);
CREATE INDEX throttles_last_failure_at ON throttles(last_failure_at);
CREATE INDEX logout_deliveries_created_at ON logout_deliveries(created_at);
CREATE TABLE job_runs (
    name TEXT PRIMARY KEY NOT NULL,
    next_run_at TIMESTAMP NOT NULL
);
