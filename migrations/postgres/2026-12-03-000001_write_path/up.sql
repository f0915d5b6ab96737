-- What the detection rules count, one row per fact, found through one index by rule and
-- subject: failed sign-ins per account and per address, sign-ins per user, token errors per
-- client. The rules read a handful of index entries instead of scanning the audit trail.
CREATE TABLE detection_facts (
    id BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    other TEXT NOT NULL,
    at TIMESTAMP NOT NULL
);
CREATE INDEX detection_facts_subject ON detection_facts(kind, subject, at);
CREATE INDEX detection_facts_at ON detection_facts(at);

-- Audit entries are written unlinked, numbered below zero from a sequence (no lock between
-- writers), and linked into the hash chain after they commit: the linker gives them the next
-- positive numbers and their hashes (`audit::link`).
CREATE SEQUENCE audit_pending_seq;
ALTER TABLE audit_log ALTER COLUMN seq SET DEFAULT (-nextval('audit_pending_seq'));
ALTER TABLE audit_log ALTER COLUMN prev_hash SET DEFAULT '';
ALTER TABLE audit_log ALTER COLUMN hash SET DEFAULT '';

-- The instances serving this database, each seen within the last seconds: the configured
-- request rate limits are the cluster's, and every instance enforces its share of them.
CREATE TABLE instances (
    id TEXT PRIMARY KEY NOT NULL,
    seen_at TIMESTAMP NOT NULL
);
