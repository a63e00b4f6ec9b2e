-- Records name any actor, not only a user (SQLite). Keep in step with
-- ../postgres/0006_actors_and_user_versions.sql.
--
-- A record's creator or editor is a kind and an id: a member of staff ('staff', the user), a data
-- subject acting through the public pages ('data_subject', the contact) or one of Assent's jobs
-- ('system', the job's fixed id). An owner is a user or nobody. A ledger event's recorder can be
-- the person or a job too. Users get a version and who last changed them.
--
-- SQLite cannot drop a constraint, so the tables whose constraints change are rebuilt; the server
-- runs its SQLite migrations on a connection with foreign keys off, so that a table other tables
-- point at can be replaced, and checks the foreign keys afterwards.

ALTER TABLE users ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
ALTER TABLE users ADD COLUMN updated_by_kind TEXT NOT NULL DEFAULT 'system'
    CHECK (updated_by_kind IN ('staff', 'data_subject', 'system'));
-- The command line's fixed id: users created there name nobody in the audit trail.
ALTER TABLE users ADD COLUMN updated_by BLOB NOT NULL DEFAULT x'00000000000000000000000000000001';
-- Who last changed each user is in the audit trail: the last record of its creation or change.
UPDATE users SET updated_by_kind = 'staff', updated_by = (
    SELECT a.actor_id FROM audit_events a
    WHERE a.object_id = users.id AND a.action IN ('user_created', 'user_updated', 'password_changed')
    ORDER BY a.seq DESC LIMIT 1)
WHERE (SELECT a.actor_id FROM audit_events a
       WHERE a.object_id = users.id AND a.action IN ('user_created', 'user_updated', 'password_changed')
       ORDER BY a.seq DESC LIMIT 1) IS NOT NULL;

CREATE TABLE companies_rebuilt (
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
    owner_id BLOB REFERENCES users (id),
    active BOOLEAN NOT NULL,
    created_at TEXT NOT NULL,
    created_by_kind TEXT NOT NULL CHECK (created_by_kind IN ('staff', 'data_subject', 'system')),
    created_by BLOB NOT NULL,
    updated_at TEXT NOT NULL,
    updated_by_kind TEXT NOT NULL CHECK (updated_by_kind IN ('staff', 'data_subject', 'system')),
    updated_by BLOB NOT NULL
);
INSERT INTO companies_rebuilt (id, version, name, name_key, registration_number, address_lines, town,
    postcode, country, generic_email, generic_phone, owner_id, active, created_at, created_by_kind,
    created_by, updated_at, updated_by_kind, updated_by)
SELECT id, version, name, name_key, registration_number, address_lines, town, postcode, country,
    generic_email, generic_phone, owner_id, active, created_at, 'staff', created_by, updated_at,
    'staff', updated_by
FROM companies;
DROP TABLE companies;
ALTER TABLE companies_rebuilt RENAME TO companies;
CREATE INDEX companies_by_name ON companies (name_key, id);

CREATE TABLE contacts_rebuilt (
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
    owner_id BLOB REFERENCES users (id),
    active BOOLEAN NOT NULL,
    created_at TEXT NOT NULL,
    created_by_kind TEXT NOT NULL CHECK (created_by_kind IN ('staff', 'data_subject', 'system')),
    created_by BLOB NOT NULL,
    updated_at TEXT NOT NULL,
    updated_by_kind TEXT NOT NULL CHECK (updated_by_kind IN ('staff', 'data_subject', 'system')),
    updated_by BLOB NOT NULL
);
INSERT INTO contacts_rebuilt (id, version, first_name, last_name, sort_key, address_lines, town,
    postcode, country, company_id, subscriber_kind, job_title, notes, owner_id, active, created_at,
    created_by_kind, created_by, updated_at, updated_by_kind, updated_by)
SELECT id, version, first_name, last_name, sort_key, address_lines, town, postcode, country,
    company_id, subscriber_kind, job_title, notes, owner_id, active, created_at, 'staff', created_by,
    updated_at, 'staff', updated_by
FROM contacts;
DROP TABLE contacts;
ALTER TABLE contacts_rebuilt RENAME TO contacts;
CREATE INDEX contacts_by_name ON contacts (sort_key, id);
CREATE INDEX contacts_by_company ON contacts (company_id);

CREATE TABLE record_changes_rebuilt (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    record_kind TEXT NOT NULL CHECK (record_kind IN ('contact', 'company')),
    record_id BLOB NOT NULL,
    version BIGINT NOT NULL,
    field TEXT NOT NULL,
    old_value TEXT,
    new_value TEXT,
    changed_by_kind TEXT NOT NULL CHECK (changed_by_kind IN ('staff', 'data_subject', 'system')),
    changed_by BLOB NOT NULL,
    changed_at TEXT NOT NULL
);
INSERT INTO record_changes_rebuilt (id, record_kind, record_id, version, field, old_value, new_value,
    changed_by_kind, changed_by, changed_at)
SELECT id, record_kind, record_id, version, field, old_value, new_value, 'staff', changed_by, changed_at
FROM record_changes;
DROP TABLE record_changes;
ALTER TABLE record_changes_rebuilt RENAME TO record_changes;
CREATE INDEX record_changes_by_record ON record_changes (record_kind, record_id, id);

-- The events are copied exactly: every column is part of an event's hash.
CREATE TABLE ledger_events_rebuilt (
    id BLOB PRIMARY KEY NOT NULL,
    contact_id BLOB NOT NULL REFERENCES contacts (id),
    seq BIGINT NOT NULL,
    at TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    recorded_by BLOB,
    recorded_via TEXT NOT NULL CHECK (recorded_via IN ('user', 'data_subject', 'import', 'system')),
    external_id TEXT,
    event_type TEXT NOT NULL,
    event TEXT NOT NULL,
    wording_id BLOB REFERENCES consent_wordings (id),
    source TEXT,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    UNIQUE (contact_id, seq)
);
INSERT INTO ledger_events_rebuilt (id, contact_id, seq, at, recorded_at, recorded_by, recorded_via,
    external_id, event_type, event, wording_id, source, prev_hash, hash)
SELECT id, contact_id, seq, at, recorded_at, recorded_by, recorded_via, external_id, event_type, event,
    wording_id, source, prev_hash, hash
FROM ledger_events;
DROP TABLE ledger_events;
ALTER TABLE ledger_events_rebuilt RENAME TO ledger_events;

CREATE TRIGGER ledger_events_no_update BEFORE UPDATE ON ledger_events
BEGIN
    SELECT RAISE(ABORT, 'ledger_events is append-only: records may not be updated');
END;

CREATE TRIGGER ledger_events_no_delete BEFORE DELETE ON ledger_events
BEGIN
    SELECT RAISE(ABORT, 'ledger_events is append-only: records may not be deleted');
END;
