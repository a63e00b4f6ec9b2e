-- The topic catalogue (PostgreSQL; keep in step with ../sqlite/0011_topic_catalogue.sql): every
-- version kept, the one in force the latest. `topics` and `similar_groups` are JSON
-- (server/src/store/topics.rs). A version's similar groups are also saved as a policy version in
-- the same transaction, so that decisions keep reading them from the policy.
CREATE TABLE topic_catalogues (
    version BIGINT PRIMARY KEY,
    topics TEXT NOT NULL,
    similar_groups TEXT NOT NULL,
    changed_by UUID REFERENCES users (id),
    changed_at TIMESTAMPTZ NOT NULL,
    note TEXT
);

CREATE TRIGGER topic_catalogues_no_update BEFORE UPDATE OR DELETE ON topic_catalogues
    FOR EACH ROW EXECUTE FUNCTION refuse_change_of_append_only();
CREATE TRIGGER topic_catalogues_no_truncate BEFORE TRUNCATE ON topic_catalogues
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change_of_append_only();
