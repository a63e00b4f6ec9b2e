-- The outbox and the communication log (postgres; keep in step with the other store's
-- 0013_outbox_and_warrants.sql). server/src/store/outbox.rs reads and writes them.
--
-- One outbox row per (campaign, contact, channel), made when sending starts. A worker claims
-- due rows under a lease that names it, decides each recipient again and writes their warrant in
-- the same transaction, hands the allowed ones over, and writes each row's end after the relay's
-- reply: that row's state is the checkpoint. A claimed row whose lease ran out is indeterminate:
-- it may have been sent, and it is never sent again on its own.
CREATE TABLE outbox (
    id UUID PRIMARY KEY NOT NULL,
    campaign_id UUID NOT NULL REFERENCES campaigns (id),
    contact_id UUID NOT NULL REFERENCES contacts (id),
    channel TEXT NOT NULL,
    -- Derived from (campaign, contact): a duplicate is visible downstream.
    message_id TEXT NOT NULL UNIQUE,
    -- The recipient's unguessable unsubscribe token for this message.
    token TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL CHECK (state IN ('queued', 'claimed', 'sent', 'failed', 'indeterminate', 'not_sent')),
    lease_owner TEXT,
    lease_until TIMESTAMPTZ,
    attempts BIGINT NOT NULL,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    -- Why the row ended as it did: accepted, a reason of the engine, a refusal's code.
    outcome TEXT,
    contact_point TEXT,
    updated_at TIMESTAMPTZ NOT NULL,
    UNIQUE (campaign_id, contact_id, channel)
);
CREATE INDEX outbox_due ON outbox (campaign_id, state, next_attempt_at);

-- The communication log: one warrant per decision the sender made, append-only and hash-chained
-- per campaign (warrant_heads), so that no global lock is taken on the hot path.
CREATE TABLE warrants (
    id UUID PRIMARY KEY NOT NULL,
    outbox_id UUID NOT NULL REFERENCES outbox (id),
    campaign_id UUID NOT NULL REFERENCES campaigns (id),
    contact_id UUID NOT NULL REFERENCES contacts (id),
    seq BIGINT NOT NULL,
    channel TEXT NOT NULL,
    kind TEXT NOT NULL,
    topic TEXT NOT NULL,
    third_party TEXT,
    contact_point TEXT,
    message_id TEXT NOT NULL,
    allowed BOOLEAN NOT NULL,
    basis TEXT,
    reasons TEXT NOT NULL,
    evidence_seqs TEXT NOT NULL,
    policy_version BIGINT NOT NULL,
    author_id UUID NOT NULL REFERENCES users (id),
    approver_id UUID REFERENCES users (id),
    decided_at TIMESTAMPTZ NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    UNIQUE (campaign_id, seq)
);
CREATE INDEX warrants_by_contact ON warrants (contact_id, decided_at);

CREATE TABLE warrant_heads (
    campaign_id UUID PRIMARY KEY NOT NULL REFERENCES campaigns (id),
    last_seq BIGINT NOT NULL,
    last_hash TEXT NOT NULL
);

CREATE TRIGGER warrants_no_update BEFORE UPDATE OR DELETE ON warrants
    FOR EACH ROW EXECUTE FUNCTION refuse_change_of_append_only();
CREATE TRIGGER warrants_no_truncate BEFORE TRUNCATE ON warrants
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change_of_append_only();
