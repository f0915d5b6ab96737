-- What the detection rules count, one row per fact, found through one index by rule and
-- subject: failed sign-ins per account and per address, sign-ins per user, token errors per
-- client. The rules read a handful of index entries instead of scanning the audit trail.
CREATE TABLE detection_facts (
    id INTEGER PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    other TEXT NOT NULL,
    at TIMESTAMP NOT NULL
);
CREATE INDEX detection_facts_subject ON detection_facts(kind, subject, at);
CREATE INDEX detection_facts_at ON detection_facts(at);

-- The instances serving this database, each seen within the last seconds: the configured
-- request rate limits are the cluster's, and every instance enforces its share of them.
CREATE TABLE instances (
    id TEXT PRIMARY KEY NOT NULL,
    seen_at TIMESTAMP NOT NULL
);

-- The audit trail numbered by SQLite's own row id (INTEGER PRIMARY KEY): an append writes
-- one b-tree less than with a separate key.
CREATE TABLE audit_log_by_rowid (
    seq INTEGER PRIMARY KEY NOT NULL,
    at TIMESTAMP NOT NULL,
    event TEXT NOT NULL,
    actor TEXT,
    user_id TEXT,
    client_id TEXT,
    ip TEXT,
    user_agent TEXT,
    request_id TEXT,
    outcome TEXT NOT NULL,
    details TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_log_by_rowid
    SELECT seq, at, event, actor, user_id, client_id, ip, user_agent, request_id, outcome,
           details, prev_hash, hash
    FROM audit_log;
DROP TABLE audit_log;
ALTER TABLE audit_log_by_rowid RENAME TO audit_log;
CREATE INDEX audit_log_at ON audit_log(at);
