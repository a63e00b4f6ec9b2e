-- A compact copy of each contact's ledger for deciding over audiences (PostgreSQL); derived from
-- ledger_events, written with every append and checked by `audit verify`.
ALTER TABLE ledger_heads ADD COLUMN decision_copy BYTEA;
