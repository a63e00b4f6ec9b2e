-- Requests people make about their data through the public pages (sqlite; keep in step with
-- the other store's 0020_data_requests.sql). server/src/store/data_requests.rs reads and writes
-- them.
--
-- `public_pages`: a page the organisation chose to offer, and the standing campaign that sends
-- its emails (the data request page's: the links that verify an address), published by the data
-- protection lead, who approves that email with it.
CREATE TABLE public_pages (
    name TEXT PRIMARY KEY NOT NULL,
    campaign_id BLOB NOT NULL REFERENCES campaigns (id),
    published_by BLOB NOT NULL REFERENCES users (id),
    published_at TEXT NOT NULL
);

-- One request: what was asked, for which address, when it was received and when the address
-- was verified (by the button on the emailed link's page). `contact_id` is the newest active
-- contact holding the address when it was received (none: no email is sent, and staff answer by
-- other means); `outbox_id` is the email whose token is the link's.
CREATE TABLE data_requests (
    id BLOB PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('access', 'correction', 'erasure')),
    details TEXT,
    address TEXT NOT NULL,
    address_key TEXT NOT NULL,
    contact_id BLOB REFERENCES contacts (id),
    outbox_id BLOB UNIQUE REFERENCES outbox (id),
    received_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    verified_at TEXT
);
CREATE INDEX data_requests_by_received ON data_requests (received_at, id);
CREATE INDEX data_requests_by_address ON data_requests (address_key, received_at);
