DROP TABLE signing_keys;
DROP TABLE consents;
DROP TABLE tokens;
DROP TABLE auth_codes;
DROP TABLE auth_requests;
DROP TABLE sessions;
DROP TABLE clients;
DROP TABLE users;
