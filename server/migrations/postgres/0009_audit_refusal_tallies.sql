-- Refusals from callers nobody knows (a bad bearer token, a login to no account) are recorded
-- one by one up to a limit in each window, and the rest as one record whose `tally` says how
-- many more the window saw (server/src/store/audit.rs, RefusalTally). A record with a tally
-- hashes it; every record without one (NULL) hashes exactly as before.

ALTER TABLE audit_records ADD COLUMN tally BIGINT;
