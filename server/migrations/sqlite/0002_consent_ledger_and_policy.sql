-- The consent ledger (SQLite). Keep in step with ../postgres/0002_consent_ledger.sql.

-- The exact wordings people were shown when they consented, numbered in order of first use.
CREATE TABLE consent_wordings (
    id BLOB PRIMARY KEY NOT NULL,
    version BIGINT NOT NULL UNIQUE,
    text TEXT NOT NULL,
    text_hash TEXT NOT NULL UNIQUE,
    first_used_at TEXT NOT NULL
);

-- Each contact's ledger: append-only, hash-chained per contact.
CREATE TABLE ledger_events (
    id BLOB PRIMARY KEY NOT NULL,
    contact_id BLOB NOT NULL REFERENCES contacts (id),
    seq BIGINT NOT NULL,
    at TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    recorded_by BLOB REFERENCES users (id),
    recorded_via TEXT NOT NULL CHECK (recorded_via IN ('user', 'data_subject', 'import')),
    external_id TEXT,
    event_type TEXT NOT NULL,
    event TEXT NOT NULL,
    wording_id BLOB REFERENCES consent_wordings (id),
    source TEXT,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    UNIQUE (contact_id, seq)
);

CREATE TRIGGER ledger_events_no_update BEFORE UPDATE ON ledger_events
BEGIN
    SELECT RAISE(ABORT, 'ledger_events is append-only: records may not be updated');
END;

CREATE TRIGGER ledger_events_no_delete BEFORE DELETE ON ledger_events
BEGIN
    SELECT RAISE(ABORT, 'ledger_events is append-only: records may not be deleted');
END;

CREATE TRIGGER consent_wordings_no_update BEFORE UPDATE ON consent_wordings
BEGIN
    SELECT RAISE(ABORT, 'consent_wordings is append-only: records may not be updated');
END;

CREATE TRIGGER consent_wordings_no_delete BEFORE DELETE ON consent_wordings
BEGIN
    SELECT RAISE(ABORT, 'consent_wordings is append-only: records may not be deleted');
END;

-- The head of each contact's chain: appends take its row first, which serialises them.
CREATE TABLE ledger_heads (
    contact_id BLOB PRIMARY KEY NOT NULL REFERENCES contacts (id),
    last_seq BIGINT NOT NULL,
    last_hash TEXT NOT NULL
);

-- Every version of the compliance policy; the one in force is the latest. Decisions record the
-- version they used, and a decision "as of" a past moment uses the version in force then.
CREATE TABLE policy_versions (
    version BIGINT PRIMARY KEY NOT NULL,
    policy TEXT NOT NULL,
    changed_by BLOB REFERENCES users (id),
    changed_at TEXT NOT NULL,
    note TEXT
);

CREATE TRIGGER policy_versions_no_update BEFORE UPDATE ON policy_versions
BEGIN
    SELECT RAISE(ABORT, 'policy_versions is append-only: records may not be updated');
END;

CREATE TRIGGER policy_versions_no_delete BEFORE DELETE ON policy_versions
BEGIN
    SELECT RAISE(ABORT, 'policy_versions is append-only: records may not be deleted');
END;
