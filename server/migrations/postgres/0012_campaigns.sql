-- Campaigns and one-off messages (postgres; keep in step with the other store's 0012_campaigns.sql).
-- `content` is the JSON of what the author wrote (server/src/store/campaigns.rs) and
-- `content_hash` its SHA-256: an approval names it, and an edit after approval returns the
-- campaign to draft. Who changed a campaign's state, and when, is in the audit trail.
CREATE TABLE campaigns (
    id UUID PRIMARY KEY NOT NULL,
    version BIGINT NOT NULL,
    content TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('marketing', 'service')),
    state TEXT NOT NULL CHECK (state IN ('draft', 'submitted', 'approved', 'rejected', 'scheduled', 'sending', 'paused', 'sent', 'cancelled')),
    flags TEXT NOT NULL,
    author_id UUID NOT NULL REFERENCES users (id),
    created_at TIMESTAMPTZ NOT NULL,
    updated_by UUID NOT NULL REFERENCES users (id),
    updated_at TIMESTAMPTZ NOT NULL,
    submitted_at TIMESTAMPTZ,
    decided_by UUID REFERENCES users (id),
    decided_at TIMESTAMPTZ,
    rejection_reason TEXT,
    frozen_members BIGINT,
    audience_hash TEXT
);

CREATE INDEX campaigns_by_state ON campaigns (state, created_at);

-- The audience as the approver saw it, frozen at approval: each member is decided again at send,
-- and people who join the saved filter later need a new approval.
CREATE TABLE campaign_members (
    campaign_id UUID NOT NULL REFERENCES campaigns (id),
    contact_id UUID NOT NULL REFERENCES contacts (id),
    PRIMARY KEY (campaign_id, contact_id)
);
