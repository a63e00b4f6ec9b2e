-- Assent foundation schema (SQLite). Keep in step with ../postgres/0001_foundation.sql: the
-- store test `both_migration_sets_describe_the_same_tables_and_columns` compares them.
-- Ids are UUIDs (16-byte BLOBs here, native uuid in PostgreSQL); times are UTC.

CREATE TABLE users (
    id BLOB PRIMARY KEY NOT NULL,
    email TEXT NOT NULL,
    email_key TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    roles TEXT NOT NULL,
    active BOOLEAN NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE sessions (
    id BLOB PRIMARY KEY NOT NULL,
    user_id BLOB NOT NULL REFERENCES users (id),
    token_hash TEXT NOT NULL UNIQUE,
    device_name TEXT NOT NULL,
    created_at TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    absolute_expires_at TEXT NOT NULL,
    revoked_at TEXT,
    revoked_by BLOB REFERENCES users (id)
);
CREATE INDEX sessions_by_user ON sessions (user_id, device_name);

CREATE TABLE companies (
    id BLOB PRIMARY KEY NOT NULL,
    version BIGINT NOT NULL,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL,
    registration_number TEXT,
    address_lines TEXT,
    town TEXT,
    postcode TEXT,
    country TEXT,
    generic_email TEXT,
    generic_phone TEXT,
    owner_id BLOB NOT NULL REFERENCES users (id),
    active BOOLEAN NOT NULL,
    created_at TEXT NOT NULL,
    created_by BLOB NOT NULL REFERENCES users (id),
    updated_at TEXT NOT NULL,
    updated_by BLOB NOT NULL REFERENCES users (id)
);
CREATE INDEX companies_by_name ON companies (name_key, id);

CREATE TABLE contacts (
    id BLOB PRIMARY KEY NOT NULL,
    version BIGINT NOT NULL,
    first_name TEXT,
    last_name TEXT,
    sort_key TEXT NOT NULL,
    address_lines TEXT,
    town TEXT,
    postcode TEXT,
    country TEXT,
    company_id BLOB REFERENCES companies (id),
    subscriber_kind TEXT NOT NULL CHECK (subscriber_kind IN ('individual', 'corporate')),
    job_title TEXT,
    notes TEXT,
    owner_id BLOB NOT NULL REFERENCES users (id),
    active BOOLEAN NOT NULL,
    created_at TEXT NOT NULL,
    created_by BLOB NOT NULL REFERENCES users (id),
    updated_at TEXT NOT NULL,
    updated_by BLOB NOT NULL REFERENCES users (id)
);
CREATE INDEX contacts_by_name ON contacts (sort_key, id);
CREATE INDEX contacts_by_company ON contacts (company_id);

CREATE TABLE contact_emails (
    contact_id BLOB NOT NULL REFERENCES contacts (id),
    position INTEGER NOT NULL,
    email TEXT NOT NULL,
    email_key TEXT NOT NULL,
    PRIMARY KEY (contact_id, position)
);
CREATE INDEX contact_emails_by_key ON contact_emails (email_key);

CREATE TABLE contact_phones (
    contact_id BLOB NOT NULL REFERENCES contacts (id),
    position INTEGER NOT NULL,
    phone TEXT NOT NULL,
    PRIMARY KEY (contact_id, position)
);
CREATE INDEX contact_phones_by_phone ON contact_phones (phone);

-- The history of every change of personal data: one row per changed field.
CREATE TABLE record_changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    record_kind TEXT NOT NULL CHECK (record_kind IN ('contact', 'company')),
    record_id BLOB NOT NULL,
    version BIGINT NOT NULL,
    field TEXT NOT NULL,
    old_value TEXT,
    new_value TEXT,
    changed_by BLOB NOT NULL REFERENCES users (id),
    changed_at TEXT NOT NULL
);
CREATE INDEX record_changes_by_record ON record_changes (record_kind, record_id, id);

-- The audit trail: hash-chained, append-only. Ids only, never personal data.
CREATE TABLE audit_events (
    seq BIGINT PRIMARY KEY NOT NULL,
    at TEXT NOT NULL,
    actor_id BLOB,
    session_id BLOB,
    action TEXT NOT NULL,
    object_kind TEXT,
    object_id BLOB,
    outcome TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_events_by_object ON audit_events (object_id, seq);

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only: records may not be updated');
END;

CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only: records may not be deleted');
END;

-- The head of the audit chain. Appends take its row first, which serialises them.
CREATE TABLE audit_chain_head (
    id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    last_seq BIGINT NOT NULL,
    last_hash TEXT NOT NULL
);
INSERT INTO audit_chain_head (id, last_seq, last_hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
