-- Addresses that bounce (sqlite; keep in step with the other store's 0014_address_flags.sql).
-- server/src/store/contacts.rs reads and writes it.
--
-- A hard bounce (the relay refused the mailbox for good at RCPT or DATA, or a delivery status
-- notification said so later) flags that address of that contact: the sender then uses the
-- contact's next address on the channel, or leaves them out with the reason address_bouncing.
-- Keyed by the address's lookup key, so that the flag outlives an edit that keeps the address.
CREATE TABLE address_flags (
    contact_id BLOB NOT NULL REFERENCES contacts (id),
    channel TEXT NOT NULL,
    address_key TEXT NOT NULL,
    -- How it was learnt, with its codes: hard_bounce:550:5.1.1 (at send), bounce_report:5.1.1.
    reason TEXT NOT NULL,
    -- The message that bounced.
    outbox_id BLOB REFERENCES outbox (id),
    flagged_at TEXT NOT NULL,
    PRIMARY KEY (contact_id, channel, address_key)
);
