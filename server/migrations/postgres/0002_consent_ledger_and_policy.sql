-- The consent ledger (PostgreSQL). Keep in step with ../sqlite/0002_consent_ledger.sql.

CREATE TABLE consent_wordings (
    id UUID PRIMARY KEY,
    version BIGINT NOT NULL UNIQUE,
    text TEXT NOT NULL,
    text_hash TEXT NOT NULL UNIQUE,
    first_used_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE ledger_events (
    id UUID PRIMARY KEY,
    contact_id UUID NOT NULL REFERENCES contacts (id),
    seq BIGINT NOT NULL,
    at TIMESTAMPTZ NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL,
    recorded_by UUID REFERENCES users (id),
    recorded_via TEXT NOT NULL CHECK (recorded_via IN ('user', 'data_subject', 'import')),
    external_id TEXT,
    event_type TEXT NOT NULL,
    event TEXT NOT NULL,
    wording_id UUID REFERENCES consent_wordings (id),
    source TEXT,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    UNIQUE (contact_id, seq)
);

CREATE TRIGGER ledger_events_no_update BEFORE UPDATE OR DELETE ON ledger_events
    FOR EACH ROW EXECUTE FUNCTION refuse_change_of_append_only();
CREATE TRIGGER ledger_events_no_truncate BEFORE TRUNCATE ON ledger_events
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change_of_append_only();
CREATE TRIGGER consent_wordings_no_update BEFORE UPDATE OR DELETE ON consent_wordings
    FOR EACH ROW EXECUTE FUNCTION refuse_change_of_append_only();
CREATE TRIGGER consent_wordings_no_truncate BEFORE TRUNCATE ON consent_wordings
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change_of_append_only();

CREATE TABLE ledger_heads (
    contact_id UUID PRIMARY KEY REFERENCES contacts (id),
    last_seq BIGINT NOT NULL,
    last_hash TEXT NOT NULL
);

CREATE TABLE policy_versions (
    version BIGINT PRIMARY KEY,
    policy TEXT NOT NULL,
    changed_by UUID REFERENCES users (id),
    changed_at TIMESTAMPTZ NOT NULL,
    note TEXT
);

CREATE TRIGGER policy_versions_no_update BEFORE UPDATE OR DELETE ON policy_versions
    FOR EACH ROW EXECUTE FUNCTION refuse_change_of_append_only();
CREATE TRIGGER policy_versions_no_truncate BEFORE TRUNCATE ON policy_versions
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change_of_append_only();
