-- Records name any actor, not only a user (PostgreSQL). Keep in step with
-- ../sqlite/0006_actors_and_user_versions.sql.
--
-- A record's creator or editor is a kind and an id: a member of staff ('staff', the user), a data
-- subject acting through the public pages ('data_subject', the contact) or one of Assent's jobs
-- ('system', the job's fixed id). An owner is a user or nobody. A ledger event's recorder can be
-- the person or a job too. Users get a version and who last changed them.

ALTER TABLE users
    ADD COLUMN version BIGINT NOT NULL DEFAULT 1,
    ADD COLUMN updated_by_kind TEXT NOT NULL DEFAULT 'system'
        CHECK (updated_by_kind IN ('staff', 'data_subject', 'system')),
    -- The command line's fixed id: users created there name nobody in the audit trail.
    ADD COLUMN updated_by UUID NOT NULL DEFAULT '00000000-0000-0000-0000-000000000001';
-- Who last changed each user is in the audit trail: the last record of its creation or change.
UPDATE users SET updated_by_kind = 'staff', updated_by = last.actor_id
FROM (
    SELECT DISTINCT ON (a.object_id) a.object_id, a.actor_id FROM audit_events a
    WHERE a.action IN ('user_created', 'user_updated', 'password_changed')
    ORDER BY a.object_id, a.seq DESC
) last
WHERE last.object_id = users.id AND last.actor_id IS NOT NULL;
ALTER TABLE users
    ALTER COLUMN version DROP DEFAULT,
    ALTER COLUMN updated_by_kind DROP DEFAULT,
    ALTER COLUMN updated_by DROP DEFAULT;

ALTER TABLE companies
    DROP CONSTRAINT companies_created_by_fkey,
    DROP CONSTRAINT companies_updated_by_fkey,
    ALTER COLUMN owner_id DROP NOT NULL,
    ADD COLUMN created_by_kind TEXT NOT NULL DEFAULT 'staff'
        CHECK (created_by_kind IN ('staff', 'data_subject', 'system')),
    ADD COLUMN updated_by_kind TEXT NOT NULL DEFAULT 'staff'
        CHECK (updated_by_kind IN ('staff', 'data_subject', 'system'));
ALTER TABLE companies
    ALTER COLUMN created_by_kind DROP DEFAULT,
    ALTER COLUMN updated_by_kind DROP DEFAULT;

ALTER TABLE contacts
    DROP CONSTRAINT contacts_created_by_fkey,
    DROP CONSTRAINT contacts_updated_by_fkey,
    ALTER COLUMN owner_id DROP NOT NULL,
    ADD COLUMN created_by_kind TEXT NOT NULL DEFAULT 'staff'
        CHECK (created_by_kind IN ('staff', 'data_subject', 'system')),
    ADD COLUMN updated_by_kind TEXT NOT NULL DEFAULT 'staff'
        CHECK (updated_by_kind IN ('staff', 'data_subject', 'system'));
ALTER TABLE contacts
    ALTER COLUMN created_by_kind DROP DEFAULT,
    ALTER COLUMN updated_by_kind DROP DEFAULT;

ALTER TABLE record_changes
    DROP CONSTRAINT record_changes_changed_by_fkey,
    ADD COLUMN changed_by_kind TEXT NOT NULL DEFAULT 'staff'
        CHECK (changed_by_kind IN ('staff', 'data_subject', 'system'));
ALTER TABLE record_changes ALTER COLUMN changed_by_kind DROP DEFAULT;

ALTER TABLE ledger_events
    DROP CONSTRAINT ledger_events_recorded_by_fkey,
    DROP CONSTRAINT ledger_events_recorded_via_check,
    ADD CONSTRAINT ledger_events_recorded_via_check
        CHECK (recorded_via IN ('user', 'data_subject', 'import', 'system'));
