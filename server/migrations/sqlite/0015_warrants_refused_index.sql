-- The refusals a data protection lead looks into (sqlite; keep in step with the other store's
-- 0015_warrants_refused_index.sql). server/src/store/outbox.rs (logged_refusals) reads it.
--
-- Only the warrants the engine refused, by channel and newest decision: the calls, letters and
-- faxes staff logged against the engine's answer are found without reading every warrant of
-- every campaign.
CREATE INDEX warrants_refused ON warrants (channel, decided_at) WHERE NOT allowed;
