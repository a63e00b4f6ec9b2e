-- The audit trail, format 2: many chains, so that writers do not queue behind one head; the
-- kind of actor (staff, data subject, system) beside its id; one record per request, naming
-- every object it showed or changed in `audit_objects`.
--
-- The chain written before (audit_events, audit_chain_head) is closed: nothing is appended to
-- it, and `audit verify` checks it by the hash it was written with. Each new chain starts from
-- a hash of its number and that chain's head, so the new trail extends the old one.

CREATE TABLE audit_chains (
    id INTEGER PRIMARY KEY,
    -- 0 and no hash until the chain's first record.
    last_seq BIGINT NOT NULL,
    last_hash TEXT
);
INSERT INTO audit_chains (id, last_seq, last_hash) SELECT id, 0, NULL FROM generate_series(1, 32) AS id;

CREATE TABLE audit_records (
    chain_id INTEGER NOT NULL REFERENCES audit_chains (id),
    seq BIGINT NOT NULL,
    at TIMESTAMPTZ NOT NULL,
    -- 'staff', 'data_subject' or 'system' with the user's, contact's or job's id; NULL for a
    -- caller nobody knows (a request without a valid session).
    actor_kind TEXT,
    actor_id UUID,
    -- The session (staff) or token (data subject) that proved who acted.
    via_id UUID,
    action TEXT NOT NULL,
    outcome TEXT NOT NULL,
    object_count BIGINT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (chain_id, seq)
);

CREATE TABLE audit_objects (
    chain_id INTEGER NOT NULL,
    seq BIGINT NOT NULL,
    position INTEGER NOT NULL,
    object_kind TEXT NOT NULL,
    object_id UUID NOT NULL,
    PRIMARY KEY (chain_id, seq, position),
    FOREIGN KEY (chain_id, seq) REFERENCES audit_records (chain_id, seq)
);
-- Every access to one object, in one indexed query.
CREATE INDEX audit_objects_by_object ON audit_objects (object_id);

CREATE TRIGGER audit_records_no_update BEFORE UPDATE OR DELETE ON audit_records
    FOR EACH ROW EXECUTE FUNCTION refuse_change_of_append_only();
CREATE TRIGGER audit_records_no_truncate BEFORE TRUNCATE ON audit_records
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change_of_append_only();
CREATE TRIGGER audit_objects_no_update BEFORE UPDATE OR DELETE ON audit_objects
    FOR EACH ROW EXECUTE FUNCTION refuse_change_of_append_only();
CREATE TRIGGER audit_objects_no_truncate BEFORE TRUNCATE ON audit_objects
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change_of_append_only();

-- The closed chain stays as it is.
CREATE FUNCTION refuse_append_to_closed_chain() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is closed: the audit trail is appended to audit_records', TG_TABLE_NAME;
END;
$$;
CREATE TRIGGER audit_events_closed BEFORE INSERT ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_append_to_closed_chain();
CREATE TRIGGER audit_chain_head_closed BEFORE UPDATE OR DELETE ON audit_chain_head
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_append_to_closed_chain();
