-- Start-up looks for ledgers without a decision copy (recorded before copies existed); this
-- partial index finds them without reading every head.
CREATE INDEX ledger_heads_without_copy ON ledger_heads (contact_id) WHERE decision_copy IS NULL;
