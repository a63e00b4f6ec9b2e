-- Assent foundation schema (PostgreSQL). Keep in step with ../sqlite/0001_foundation.sql: the
-- store test `both_migration_sets_describe_the_same_tables_and_columns` compares them.

CREATE TABLE users (
    id UUID PRIMARY KEY,
    email TEXT NOT NULL,
    email_key TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    roles TEXT NOT NULL,
    active BOOLEAN NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE sessions (
    id UUID PRIMARY KEY,
    user_id UUID NOT NULL REFERENCES users (id),
    token_hash TEXT NOT NULL UNIQUE,
    device_name TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    last_seen_at TIMESTAMPTZ NOT NULL,
    absolute_expires_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ,
    revoked_by UUID REFERENCES users (id)
);
CREATE INDEX sessions_by_user ON sessions (user_id, device_name);

CREATE TABLE companies (
    id UUID PRIMARY KEY,
    version BIGINT NOT NULL,
    name TEXT NOT NULL,
    name_key TEXT COLLATE "C" NOT NULL,
    registration_number TEXT,
    address_lines TEXT,
    town TEXT,
    postcode TEXT,
    country TEXT,
    generic_email TEXT,
    generic_phone TEXT,
    owner_id UUID NOT NULL REFERENCES users (id),
    active BOOLEAN NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    created_by UUID NOT NULL REFERENCES users (id),
    updated_at TIMESTAMPTZ NOT NULL,
    updated_by UUID NOT NULL REFERENCES users (id)
);
CREATE INDEX companies_by_name ON companies (name_key, id);

CREATE TABLE contacts (
    id UUID PRIMARY KEY,
    version BIGINT NOT NULL,
    first_name TEXT,
    last_name TEXT,
    sort_key TEXT COLLATE "C" NOT NULL,
    address_lines TEXT,
    town TEXT,
    postcode TEXT,
    country TEXT,
    company_id UUID REFERENCES companies (id),
    subscriber_kind TEXT NOT NULL CHECK (subscriber_kind IN ('individual', 'corporate')),
    job_title TEXT,
    notes TEXT,
    owner_id UUID NOT NULL REFERENCES users (id),
    active BOOLEAN NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    created_by UUID NOT NULL REFERENCES users (id),
    updated_at TIMESTAMPTZ NOT NULL,
    updated_by UUID NOT NULL REFERENCES users (id)
);
CREATE INDEX contacts_by_name ON contacts (sort_key, id);
CREATE INDEX contacts_by_company ON contacts (company_id);

CREATE TABLE contact_emails (
    contact_id UUID NOT NULL REFERENCES contacts (id),
    position INTEGER NOT NULL,
    email TEXT NOT NULL,
    email_key TEXT NOT NULL,
    PRIMARY KEY (contact_id, position)
);
CREATE INDEX contact_emails_by_key ON contact_emails (email_key);

CREATE TABLE contact_phones (
    contact_id UUID NOT NULL REFERENCES contacts (id),
    position INTEGER NOT NULL,
    phone TEXT NOT NULL,
    PRIMARY KEY (contact_id, position)
);
CREATE INDEX contact_phones_by_phone ON contact_phones (phone);

CREATE TABLE record_changes (
    id BIGSERIAL PRIMARY KEY,
    record_kind TEXT NOT NULL CHECK (record_kind IN ('contact', 'company')),
    record_id UUID NOT NULL,
    version BIGINT NOT NULL,
    field TEXT NOT NULL,
    old_value TEXT,
    new_value TEXT,
    changed_by UUID NOT NULL REFERENCES users (id),
    changed_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX record_changes_by_record ON record_changes (record_kind, record_id, id);

CREATE TABLE audit_events (
    seq BIGINT PRIMARY KEY,
    at TIMESTAMPTZ NOT NULL,
    actor_id UUID,
    session_id UUID,
    action TEXT NOT NULL,
    object_kind TEXT,
    object_id UUID,
    outcome TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_events_by_object ON audit_events (object_id, seq);

CREATE FUNCTION refuse_change_of_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: records may not be %d', TG_TABLE_NAME, lower(TG_OP);
END;
$$;

CREATE TRIGGER audit_events_no_update BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION refuse_change_of_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change_of_append_only();

CREATE TABLE audit_chain_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    last_seq BIGINT NOT NULL,
    last_hash TEXT NOT NULL
);
INSERT INTO audit_chain_head (id, last_seq, last_hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
