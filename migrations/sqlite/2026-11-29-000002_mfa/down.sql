DROP TABLE webauthn_ceremonies;
DROP TABLE recovery_codes;
DROP TABLE passkeys;
DROP TABLE totp_credentials;
ALTER TABLE sessions DROP COLUMN pending_user_id;
