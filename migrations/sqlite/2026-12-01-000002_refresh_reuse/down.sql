ALTER TABLE tokens DROP COLUMN successor_sealed;
ALTER TABLE tokens DROP COLUMN rotated_at;
