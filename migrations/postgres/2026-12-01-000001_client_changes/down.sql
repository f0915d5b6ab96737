ALTER TABLE clients DROP COLUMN updated_at;
ALTER TABLE clients DROP COLUMN requests_per_minute;
ALTER TABLE clients DROP COLUMN previous_secret_expires_at;
ALTER TABLE clients DROP COLUMN previous_secret_hash;
ALTER TABLE clients DROP COLUMN web_origins;
