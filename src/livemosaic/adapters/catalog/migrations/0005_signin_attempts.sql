-- livemosaic catalog schema, version 5: failed sign-in attempts, shared by server processes.
-- One row per attempt of one user from one address still counted against it; the row is
-- written before the password is checked (so concurrent attempts count too) and removed by
-- a good sign-in. Rows older than the throttle window are purged as new attempts arrive.

CREATE TABLE signin_attempts (
    username TEXT NOT NULL,
    address TEXT NOT NULL,
    at INTEGER NOT NULL
);
-- "How many attempts of this user from this address since t?"
CREATE INDEX signin_attempts_key ON signin_attempts (username, address, at);
-- Purging attempts that left the window.
CREATE INDEX signin_attempts_at ON signin_attempts (at);
