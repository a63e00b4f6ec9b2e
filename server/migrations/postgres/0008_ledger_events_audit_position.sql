-- Where the audit trail stood when each consent ledger event was appended: the chain the
-- writing transaction held and that chain's last record number when the transaction took it.
-- A transaction that commits before a checkpoint is read appends its records beyond that
-- number; one that commits after took its chain at or beyond the checkpoint's head. So an event
-- is covered by a checkpoint exactly when its number is below the checkpoint's head of its
-- chain: that is how `audit verify --checkpoint` finds the ledgers as they stood at the
-- checkpoint. Events appended before this migration have neither (they are older than any
-- checkpoint).

ALTER TABLE ledger_events ADD COLUMN audit_chain INTEGER;
ALTER TABLE ledger_events ADD COLUMN audit_seq BIGINT;
