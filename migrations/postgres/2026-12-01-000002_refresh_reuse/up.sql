-- The refresh reuse window: when a refresh token was rotated, and the answer its rotation gave
-- (sealed under the master key, bound to this row), so that the same request repeated within
-- the window gets the same successor. Erased when the window ends or the family is revoked.
ALTER TABLE tokens ADD COLUMN rotated_at TIMESTAMP;
ALTER TABLE tokens ADD COLUMN successor_sealed TEXT;
