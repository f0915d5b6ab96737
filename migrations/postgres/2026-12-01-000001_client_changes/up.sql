-- Browser apps: the origins whose pages may call the token-side endpoints (CORS), a JSON array.
ALTER TABLE clients ADD COLUMN web_origins TEXT NOT NULL DEFAULT '[]';
-- Secret rotation with an overlap: the replaced secret's hash keeps working until it expires.
ALTER TABLE clients ADD COLUMN previous_secret_hash TEXT;
ALTER TABLE clients ADD COLUMN previous_secret_expires_at TIMESTAMP;
-- The client's own budget of token-side requests per minute; NULL uses the configured default.
ALTER TABLE clients ADD COLUMN requests_per_minute INTEGER;
-- When the client was last changed.
ALTER TABLE clients ADD COLUMN updated_at TIMESTAMP;
