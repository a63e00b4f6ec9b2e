-- Sign-up forms and their double opt-in (postgres; keep in step with the other store's
-- 0019_signups.sql, which says what each table is for). server/src/store/signups.rs reads and
-- writes them.
CREATE TABLE signup_forms (
    id UUID PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    wording_id UUID NOT NULL REFERENCES consent_wordings (id),
    topics TEXT NOT NULL,
    sites TEXT NOT NULL,
    campaign_id UUID NOT NULL REFERENCES campaigns (id),
    receipt_campaign_id UUID REFERENCES campaigns (id),
    created_by UUID NOT NULL REFERENCES users (id),
    created_at TIMESTAMPTZ NOT NULL,
    retired_at TIMESTAMPTZ
);

CREATE TABLE signups (
    id UUID PRIMARY KEY NOT NULL,
    form_id UUID NOT NULL REFERENCES signup_forms (id),
    contact_id UUID NOT NULL REFERENCES contacts (id),
    address TEXT NOT NULL,
    address_key TEXT NOT NULL,
    topics TEXT NOT NULL,
    source TEXT NOT NULL,
    created_contact BOOLEAN NOT NULL,
    others TEXT NOT NULL,
    outbox_id UUID NOT NULL UNIQUE REFERENCES outbox (id),
    created_at TIMESTAMPTZ NOT NULL,
    mailed_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    confirmed_at TIMESTAMPTZ,
    receipt_outbox_id UUID UNIQUE REFERENCES outbox (id)
);
CREATE INDEX signups_by_address ON signups (address_key, mailed_at);

ALTER TABLE campaigns ADD COLUMN standing BOOLEAN NOT NULL DEFAULT FALSE;

-- One message per (campaign, contact, channel, occasion): see the SQLite migration.
ALTER TABLE outbox ADD COLUMN occasion TEXT NOT NULL DEFAULT '';
ALTER TABLE outbox DROP CONSTRAINT outbox_campaign_id_contact_id_channel_key;
ALTER TABLE outbox ADD CONSTRAINT outbox_campaign_contact_channel_occasion_key
    UNIQUE (campaign_id, contact_id, channel, occasion);
