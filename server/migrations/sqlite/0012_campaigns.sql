-- Campaigns and one-off messages (sqlite; keep in step with the other store's 0012_campaigns.sql).
-- `content` is the JSON of what the author wrote (server/src/store/campaigns.rs) and
-- `content_hash` its SHA-256: an approval names it, and an edit after approval returns the
-- campaign to draft. Who changed a campaign's state, and when, is in the audit trail.
CREATE TABLE campaigns (
    id BLOB PRIMARY KEY NOT NULL,
    version BIGINT NOT NULL,
    content TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('marketing', 'service')),
    state TEXT NOT NULL CHECK (state IN ('draft', 'submitted', 'approved', 'rejected', 'scheduled', 'sending', 'paused', 'sent', 'cancelled')),
    flags TEXT NOT NULL,
    author_id BLOB NOT NULL REFERENCES users (id),
    created_at TEXT NOT NULL,
    updated_by BLOB NOT NULL REFERENCES users (id),
    updated_at TEXT NOT NULL,
    submitted_at TEXT,
    decided_by BLOB REFERENCES users (id),
    decided_at TEXT,
    rejection_reason TEXT,
    frozen_members BIGINT,
    audience_hash TEXT
);

CREATE INDEX campaigns_by_state ON campaigns (state, created_at);

-- The audience as the approver saw it, frozen at approval: each member is decided again at send,
-- and people who join the saved filter later need a new approval.
CREATE TABLE campaign_members (
    campaign_id BLOB NOT NULL REFERENCES campaigns (id),
    contact_id BLOB NOT NULL REFERENCES contacts (id),
    PRIMARY KEY (campaign_id, contact_id)
);
