-- Requests people make about their data through the public pages (postgres; keep in step with
-- the other store's 0020_data_requests.sql, which says what each table is for).
CREATE TABLE public_pages (
    name TEXT PRIMARY KEY NOT NULL,
    campaign_id UUID NOT NULL REFERENCES campaigns (id),
    published_by UUID NOT NULL REFERENCES users (id),
    published_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE data_requests (
    id UUID PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('access', 'correction', 'erasure')),
    details TEXT,
    address TEXT NOT NULL,
    address_key TEXT NOT NULL,
    contact_id UUID REFERENCES contacts (id),
    outbox_id UUID UNIQUE REFERENCES outbox (id),
    received_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    verified_at TIMESTAMPTZ
);
CREATE INDEX data_requests_by_received ON data_requests (received_at, id);
CREATE INDEX data_requests_by_address ON data_requests (address_key, received_at);
