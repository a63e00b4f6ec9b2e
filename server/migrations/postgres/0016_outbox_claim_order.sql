-- The order a worker claims a campaign's queued rows in (postgres; keep in step with the other
-- store's 0016_outbox_claim_order.sql). server/src/store/outbox.rs (claim) reads it.
--
-- The claim takes the first rows by (next_attempt_at, id): with the id in the index, the rows come
-- in that order and the claim stops after a batch, instead of sorting every queued row of the
-- campaign for each batch (100,000 rows, spilled to disk on PostgreSQL).
DROP INDEX outbox_due;
CREATE INDEX outbox_due ON outbox (campaign_id, state, next_attempt_at, id);
