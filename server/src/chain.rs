//! The hash-chain primitives the audit trail and every consent ledger share: the genesis, how a
//! link is hashed, and the verifier that walks a chain. Pure: no store, no clock.
//!
//! A chain is a sequence of records numbered from 1; each record's hash covers its own fields
//! and the previous record's hash, so altering, removing or reordering any record breaks every
//! link after it, and a head (last number, last hash) kept beside the chain shows a cut-off end.

use sha2::{Digest, Sha256};

/// The hash that comes "before" the first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Where a chain walk found the first broken link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenLink {
    pub seq: i64,
    pub problem: String,
}

/// Walks a hash chain in `seq` order and checks each link: the audit trail, or one contact's
/// consent ledger. Feed it every link, then call [`ChainVerifier::finish`] with the chain head.
#[derive(Debug)]
pub struct ChainVerifier {
    expected_seq: i64,
    prev_hash: String,
    pub checked: u64,
    pub broken: Option<BrokenLink>,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        ChainVerifier::from_genesis(GENESIS_HASH)
    }
}

impl ChainVerifier {
    /// A verifier of a chain whose first record links to `genesis`.
    pub fn from_genesis(genesis: &str) -> Self {
        ChainVerifier {
            expected_seq: 1,
            prev_hash: genesis.to_owned(),
            checked: 0,
            broken: None,
        }
    }

    /// Checks one link: its place, its link to the previous one, and its stored hash against the
    /// hash recomputed from its contents.
    pub fn check_link(&mut self, seq: i64, prev_hash: &str, hash: &str, recomputed: &str) {
        if self.broken.is_some() {
            return;
        }
        self.checked += 1;
        if seq != self.expected_seq {
            self.broken = Some(BrokenLink {
                seq: self.expected_seq,
                problem: format!("the record is missing (the next one found is record {seq})"),
            });
            return;
        }
        let problem = if prev_hash != self.prev_hash {
            Some("its link to the previous record does not match that record's hash".to_owned())
        } else if recomputed != hash {
            Some("its contents do not match its hash (the record was altered)".to_owned())
        } else {
            None
        };
        match problem {
            Some(problem) => self.broken = Some(BrokenLink { seq, problem }),
            None => {
                self.expected_seq += 1;
                self.prev_hash = hash.to_owned();
            }
        }
    }

    /// Records link `seq` as broken for `problem` found outside the link's hashes (unless an
    /// earlier link already broke the chain).
    pub fn fail(&mut self, seq: i64, problem: String) {
        if self.broken.is_some() {
            return;
        }
        if seq != self.expected_seq {
            // A record before this one is missing: that is the first break.
            self.check_link(seq, "", "", "");
            return;
        }
        self.checked += 1;
        self.broken = Some(BrokenLink { seq, problem });
    }

    /// Checks that the chain ends where its head says it does (no records cut off the end).
    pub fn finish(mut self, head_seq: i64, head_hash: &str) -> Result<u64, BrokenLink> {
        if let Some(broken) = self.broken.take() {
            return Err(broken);
        }
        let last_seq = self.expected_seq - 1;
        if last_seq != head_seq || self.prev_hash != head_hash {
            return Err(BrokenLink {
                seq: last_seq + 1,
                problem: format!(
                    "the chain ends at record {last_seq} but its head records {head_seq} records (records were removed from the end)"
                ),
            });
        }
        Ok(self.checked)
    }
}

/// The SHA-256 of fields joined by unit separators, as lower-case hex. No field may contain a
/// unit separator (ids, fixed names, times, JSON without control characters).
pub fn hash_fields(fields: &[&str]) -> String {
    hex::encode(Sha256::digest(fields.join("\u{1f}").as_bytes()))
}
