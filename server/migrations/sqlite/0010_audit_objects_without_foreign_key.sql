-- Nothing changes on SQLite: PostgreSQL's migration 10 drops the foreign key from audit_objects
-- to audit_records, whose check cost a query per object there. SQLite checks its foreign key
-- through the primary key at no measurable cost, and keeps it. This migration keeps the two
-- stores' migration numbers alike.
SELECT 1;
