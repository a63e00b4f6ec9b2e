-- The audit trail, format 2: many chains, so that writers do not queue behind one head; the
-- kind of actor (staff, data subject, system) beside its id; one record per request, naming
-- every object it showed or changed in `audit_objects`.
--
-- The chain written before (audit_events, audit_chain_head) is closed: nothing is appended to
-- it, and `audit verify` checks it by the hash it was written with. Each new chain starts from
-- a hash of its number and that chain's head, so the new trail extends the old one.

CREATE TABLE audit_chains (
    id INTEGER PRIMARY KEY NOT NULL,
    -- 0 and no hash until the chain's first record.
    last_seq BIGINT NOT NULL,
    last_hash TEXT
);
WITH RECURSIVE n(id) AS (SELECT 1 UNION ALL SELECT id + 1 FROM n WHERE id < 32)
INSERT INTO audit_chains (id, last_seq, last_hash) SELECT id, 0, NULL FROM n;

CREATE TABLE audit_records (
    chain_id INTEGER NOT NULL REFERENCES audit_chains (id),
    seq BIGINT NOT NULL,
    at TEXT NOT NULL,
    -- 'staff', 'data_subject' or 'system' with the user's, contact's or job's id; NULL for a
    -- caller nobody knows (a request without a valid session).
    actor_kind TEXT,
    actor_id BLOB,
    -- The session (staff) or token (data subject) that proved who acted.
    via_id BLOB,
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
    object_id BLOB NOT NULL,
    PRIMARY KEY (chain_id, seq, position),
    FOREIGN KEY (chain_id, seq) REFERENCES audit_records (chain_id, seq)
);
-- Every access to one object, in one indexed query.
CREATE INDEX audit_objects_by_object ON audit_objects (object_id);

CREATE TRIGGER audit_records_no_update BEFORE UPDATE ON audit_records
BEGIN
    SELECT RAISE(ABORT, 'audit_records is append-only: records may not be updated');
END;
CREATE TRIGGER audit_records_no_delete BEFORE DELETE ON audit_records
BEGIN
    SELECT RAISE(ABORT, 'audit_records is append-only: records may not be deleted');
END;
CREATE TRIGGER audit_objects_no_update BEFORE UPDATE ON audit_objects
BEGIN
    SELECT RAISE(ABORT, 'audit_objects is append-only: records may not be updated');
END;
CREATE TRIGGER audit_objects_no_delete BEFORE DELETE ON audit_objects
BEGIN
    SELECT RAISE(ABORT, 'audit_objects is append-only: records may not be deleted');
END;

-- The closed chain stays as it is.
CREATE TRIGGER audit_events_closed BEFORE INSERT ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is closed: records are appended to audit_records');
END;
CREATE TRIGGER audit_chain_head_closed BEFORE UPDATE ON audit_chain_head
BEGIN
    SELECT RAISE(ABORT, 'audit_chain_head is closed: the chains are in audit_chains');
END;
