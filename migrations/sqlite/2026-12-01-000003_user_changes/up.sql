-- Whether the operator vouches for the user's email address (the `email_verified` claim).
ALTER TABLE users ADD COLUMN email_verified BOOLEAN NOT NULL DEFAULT 0;
