-- Keys the public pages use (postgres; keep in step with the other store's 0018_public_keys.sql).
-- server/src/store/keys.rs reads and writes it.
--
-- `forms`: the HMAC key of the CSRF tokens of the forms the public pages serve. Made once, at
-- random, by the first server to need it, and shared by every server on the database, so a form
-- one replica served is taken by another. It is a secret of the database's, like the tokens in
-- `outbox`: a form's CSRF token is worth nothing without the link's own token.
CREATE TABLE public_keys (
    name TEXT PRIMARY KEY NOT NULL,
    key BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
