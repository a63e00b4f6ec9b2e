-- A warrant's references are no longer checked by foreign keys (postgres only: SQLite checks a
-- foreign key through the primary key it names, at little cost).
--
-- PostgreSQL checks each foreign key of each row inserted with a query of its own that locks the
-- row it names (FOR KEY SHARE): five per warrant, 2,500 for a batch of 500 recipients, which was
-- the larger part of what writing a batch's warrants cost the sender. Nothing is lost by
-- dropping them:
--   - warrants are written only by store::outbox::append_warrants (for the sender's batches and
--     for a logged call or letter), in the transaction that claims or creates the outbox rows
--     they name, with the campaign and contact of that row and the campaign's author and
--     approver;
--   - contacts, users, campaigns and outbox rows are never deleted (a contact is deactivated);
--   - every column of a warrant is part of its hash and its campaign's chain, so `audit verify`
--     finds a warrant altered, removed or added.
ALTER TABLE warrants DROP CONSTRAINT IF EXISTS warrants_outbox_id_fkey;
ALTER TABLE warrants DROP CONSTRAINT IF EXISTS warrants_campaign_id_fkey;
ALTER TABLE warrants DROP CONSTRAINT IF EXISTS warrants_contact_id_fkey;
ALTER TABLE warrants DROP CONSTRAINT IF EXISTS warrants_author_id_fkey;
ALTER TABLE warrants DROP CONSTRAINT IF EXISTS warrants_approver_id_fkey;
