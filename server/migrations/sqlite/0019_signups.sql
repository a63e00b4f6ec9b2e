-- Sign-up forms and their double opt-in (sqlite; keep in step with the other store's
-- 0019_signups.sql). server/src/store/signups.rs reads and writes them.
--
-- A sign-up form is what the organisation pastes into its website: one wording version (the text
-- the person is shown, recorded with their consent), the topics it offers and the sites it may be
-- posted from. It sends its confirmations through a standing campaign of its own (a service
-- message that is always sending: `campaigns.standing`), so that each confirmation has an outbox
-- row, a warrant and its place in the communication log like any other message.
CREATE TABLE signup_forms (
    id BLOB PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    wording_id BLOB NOT NULL REFERENCES consent_wordings (id),
    -- JSON arrays: the catalogue keys offered, and the origins (scheme://host[:port]) it is on.
    topics TEXT NOT NULL,
    sites TEXT NOT NULL,
    campaign_id BLOB NOT NULL REFERENCES campaigns (id),
    -- The standing campaign of its consent receipts, sent once a sign-up is confirmed.
    receipt_campaign_id BLOB REFERENCES campaigns (id),
    created_by BLOB NOT NULL REFERENCES users (id),
    created_at TEXT NOT NULL,
    retired_at TEXT
);

-- One sign-up waiting for its confirmation: the topics ticked and where the form was posted from
-- (`source`, the ledger's JSON of an event's source), kept here until the person confirms; only
-- then are its consents written to the ledger (`consent_given` as of `created_at`, then
-- `consent_confirmed`), so an unconfirmed post records no consent. A fresh link for an expired
-- one is a new row (`created_at` stays when the form was posted; `mailed_at` is when its
-- confirmation was queued). `outbox_id` is the confirmation message, whose token is the link's;
-- `receipt_outbox_id` the consent receipt sent once it was confirmed.
CREATE TABLE signups (
    id BLOB PRIMARY KEY NOT NULL,
    form_id BLOB NOT NULL REFERENCES signup_forms (id),
    contact_id BLOB NOT NULL REFERENCES contacts (id),
    -- The address as given (trimmed), and its key (lower case): the consent covers it.
    address TEXT NOT NULL,
    address_key TEXT NOT NULL,
    topics TEXT NOT NULL,
    source TEXT NOT NULL,
    -- Whether the sign-up made its contact: made inactive (out of lists and audiences), it is
    -- activated when the sign-up is confirmed.
    created_contact BOOLEAN NOT NULL,
    -- JSON array: the other active contacts holding the address, for staff to review.
    others TEXT NOT NULL,
    outbox_id BLOB NOT NULL UNIQUE REFERENCES outbox (id),
    created_at TEXT NOT NULL,
    mailed_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    confirmed_at TEXT,
    receipt_outbox_id BLOB UNIQUE REFERENCES outbox (id)
);
CREATE INDEX signups_by_address ON signups (address_key, mailed_at);

ALTER TABLE campaigns ADD COLUMN standing BOOLEAN NOT NULL DEFAULT FALSE;

-- The outbox holds one message per (campaign, contact, channel, occasion): a campaign's one
-- message per recipient has no occasion (''); a standing campaign's message names the sign-up
-- it confirms, so a person who signs up twice is sent two. SQLite changes a constraint only by
-- rebuilding the table (the migrations run with foreign keys off; they are checked after).
CREATE TABLE outbox_new (
    id BLOB PRIMARY KEY NOT NULL,
    campaign_id BLOB NOT NULL REFERENCES campaigns (id),
    contact_id BLOB NOT NULL REFERENCES contacts (id),
    channel TEXT NOT NULL,
    message_id TEXT NOT NULL UNIQUE,
    token TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL CHECK (state IN ('queued', 'claimed', 'sent', 'failed', 'indeterminate', 'not_sent')),
    lease_owner TEXT,
    lease_until TEXT,
    attempts BIGINT NOT NULL,
    next_attempt_at TEXT NOT NULL,
    outcome TEXT,
    contact_point TEXT,
    updated_at TEXT NOT NULL,
    occasion TEXT NOT NULL DEFAULT '',
    UNIQUE (campaign_id, contact_id, channel, occasion)
);
INSERT INTO outbox_new (id, campaign_id, contact_id, channel, message_id, token, state, lease_owner,
    lease_until, attempts, next_attempt_at, outcome, contact_point, updated_at)
SELECT id, campaign_id, contact_id, channel, message_id, token, state, lease_owner, lease_until,
    attempts, next_attempt_at, outcome, contact_point, updated_at FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_new RENAME TO outbox;
CREATE INDEX outbox_due ON outbox (campaign_id, state, next_attempt_at, id);
