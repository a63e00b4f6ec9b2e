-- The topic catalogue (SQLite; keep in step with ../postgres/0011_topic_catalogue.sql): every
-- version kept, the one in force the latest. `topics` and `similar_groups` are JSON
-- (server/src/store/topics.rs). A version's similar groups are also saved as a policy version in
-- the same transaction, so that decisions keep reading them from the policy.
CREATE TABLE topic_catalogues (
    version BIGINT PRIMARY KEY NOT NULL,
    topics TEXT NOT NULL,
    similar_groups TEXT NOT NULL,
    changed_by BLOB REFERENCES users (id),
    changed_at TEXT NOT NULL,
    note TEXT
);

CREATE TRIGGER topic_catalogues_no_update BEFORE UPDATE ON topic_catalogues
BEGIN
    SELECT RAISE(ABORT, 'topic_catalogues is append-only: records may not be updated');
END;

CREATE TRIGGER topic_catalogues_no_delete BEFORE DELETE ON topic_catalogues
BEGIN
    SELECT RAISE(ABORT, 'topic_catalogues is append-only: records may not be deleted');
END;
