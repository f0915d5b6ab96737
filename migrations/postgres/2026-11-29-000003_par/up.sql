-- Pushed authorization requests (RFC 9126): the parameters a client posted, named by the
-- SHA-256 of the random part of their request_uri, used once and within a minute.
CREATE TABLE pushed_requests (
    id TEXT PRIMARY KEY NOT NULL,
    client_id TEXT NOT NULL REFERENCES clients(client_id) ON DELETE CASCADE,
    params TEXT NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX pushed_requests_expires_at ON pushed_requests(expires_at);
