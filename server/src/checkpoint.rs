//! Checkpoints: signed statements of where every chain stood, kept outside the database, so
//! that a rewrite of the database (rows removed from the end of a chain and its head set to
//! match, or a chain recomputed from an altered record on) is found by `audit verify
//! --checkpoint`, which the chains' own links cannot show. Pure: no store, no clock.
//!
//! A checkpoint is one line of JSON, `{"statement":{...},"signature":"...","key":"..."}`: the
//! signature is Ed25519 over the statement's bytes exactly as the line holds them, so nothing is
//! re-serialised to check it. The statement names each chain's head (the audit trail's chains
//! and the closed chain written before them; a digest of the consent ledgers' heads). A chain
//! added later (the communication log first) is a new member of the statement, and [`FORMAT`]
//! changes with it: a verifier refuses a statement with a member it does not know
//! (`deny_unknown_fields`) rather than pass what it cannot check.

use base64::{engine::general_purpose::STANDARD as BASE64, Engine};
use chrono::{DateTime, Utc};
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The statement format this build writes and reads.
pub const FORMAT: &str = "assent-checkpoint/1";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CheckpointError {
    #[error("the checkpoint key {path} cannot be read: {reason}")]
    KeyUnreadable { path: String, reason: String },
    #[error("{path} is not an Ed25519 {kind} key in PEM (PKCS#8 for a private key, SPKI for a public one)")]
    NotAKey { path: String, kind: &'static str },
    #[error("the checkpoint is not a checkpoint line: {0}")]
    Malformed(String),
    #[error(
        "the checkpoint is format {found:?}, which this version does not read (it reads {FORMAT})"
    )]
    UnknownFormat { found: String },
    #[error("the checkpoint's signature does not verify with the public key {key}: the checkpoint was altered, or was signed with another key (it names key {named})")]
    BadSignature { key: String, named: String },
}

/// Where one chain stood: its last record's number and hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub seq: i64,
    pub hash: String,
}

/// One of the audit trail's chains, where it stood.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    pub chain: i32,
    pub seq: i64,
    pub hash: String,
}

/// The audit trail's heads: the closed chain written before format 2, and every chain that had
/// a record (a chain that is not named had none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditHeads {
    pub closed: Head,
    pub chains: Vec<ChainHead>,
}

impl AuditHeads {
    /// The head `chain` had (0 records when the checkpoint does not name it).
    pub fn seq_of(&self, chain: i32) -> i64 {
        self.chains
            .iter()
            .find(|c| c.chain == chain)
            .map_or(0, |c| c.seq)
    }
}

/// The consent ledgers as they stood: how many, how many events, and a digest of every head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerSummary {
    pub ledgers: u64,
    pub events: u64,
    pub digest: String,
}

/// Builds a [`LedgerSummary`] from each ledger's last event, fed in contact id order.
pub struct LedgerDigest {
    sha: Sha256,
    ledgers: u64,
    events: u64,
}

impl Default for LedgerDigest {
    fn default() -> Self {
        LedgerDigest {
            sha: Sha256::new(),
            ledgers: 0,
            events: 0,
        }
    }
}

impl LedgerDigest {
    /// Adds one ledger whose last event is `seq` with `hash` (its events are `1..=seq`).
    pub fn add(&mut self, contact_id: Uuid, seq: i64, hash: &str) {
        self.sha
            .update(format!("{contact_id}\u{1f}{seq}\u{1f}{hash}\n").as_bytes());
        self.ledgers += 1;
        self.events += seq.max(0) as u64;
    }

    pub fn finish(self) -> LedgerSummary {
        LedgerSummary {
            ledgers: self.ledgers,
            events: self.events,
            digest: hex::encode(self.sha.finalize()),
        }
    }
}

/// What a checkpoint states.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    pub format: String,
    pub at: DateTime<Utc>,
    pub audit: AuditHeads,
    pub ledgers: LedgerSummary,
}

impl Statement {
    pub fn new(at: DateTime<Utc>, audit: AuditHeads, ledgers: LedgerSummary) -> Self {
        Statement {
            format: FORMAT.to_owned(),
            at,
            audit,
            ledgers,
        }
    }
}

/// The line as it is written.
#[derive(Serialize)]
struct Line<'a> {
    statement: &'a RawValue,
    signature: String,
    key: String,
}

/// The line as it is read: the statement's bytes are kept as they are, for the signature.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadLine {
    statement: Box<RawValue>,
    signature: String,
    key: String,
}

/// A short name of a public key: the first 16 hex digits of the SHA-256 of its bytes.
pub fn fingerprint(key: &VerifyingKey) -> String {
    hex::encode(&Sha256::digest(key.as_bytes())[..8])
}

/// The private key that signs checkpoints (kept outside the database; its path is configuration).
pub struct CheckpointKey(SigningKey);

impl std::fmt::Debug for CheckpointKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CheckpointKey({})", fingerprint(&self.0.verifying_key()))
    }
}

impl CheckpointKey {
    /// A new random key.
    pub fn generate() -> Self {
        CheckpointKey(SigningKey::generate(&mut rand::rngs::OsRng))
    }

    /// Reads a PKCS#8 PEM private key (as `openssl genpkey -algorithm ed25519` writes one).
    pub fn read(path: &std::path::Path) -> Result<Self, CheckpointError> {
        let text = read_key_file(path)?;
        SigningKey::from_pkcs8_pem(&text)
            .map(CheckpointKey)
            .map_err(|_| CheckpointError::NotAKey {
                path: path.display().to_string(),
                kind: "private",
            })
    }

    /// The private key as PKCS#8 PEM.
    pub fn private_pem(&self) -> String {
        self.0
            .to_pkcs8_pem(LineEnding::LF)
            // Encoding a 32-byte key into a fixed DER structure cannot fail.
            .expect("an Ed25519 key encodes as PKCS#8")
            .to_string()
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// Signs `statement` into a checkpoint line (without a line break).
    pub fn sign(&self, statement: &Statement) -> String {
        // A struct of strings, numbers and a time serialises without error.
        let json = serde_json::to_string(statement).expect("a statement serialises");
        let signature = self.0.sign(json.as_bytes());
        let raw = RawValue::from_string(json).expect("serde_json wrote valid JSON");
        let line = Line {
            statement: &raw,
            signature: BASE64.encode(signature.to_bytes()),
            key: fingerprint(&self.0.verifying_key()),
        };
        serde_json::to_string(&line).expect("a line serialises")
    }
}

/// The public key that checks checkpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// Reads an SPKI PEM public key (as `openssl pkey -pubout` writes one).
    pub fn read(path: &std::path::Path) -> Result<Self, CheckpointError> {
        let text = read_key_file(path)?;
        VerifyingKey::from_public_key_pem(&text)
            .map(PublicKey)
            .map_err(|_| CheckpointError::NotAKey {
                path: path.display().to_string(),
                kind: "public",
            })
    }

    pub fn pem(&self) -> String {
        self.0
            .to_public_key_pem(LineEnding::LF)
            // Encoding a 32-byte key into a fixed DER structure cannot fail.
            .expect("an Ed25519 key encodes as SPKI")
    }

    pub fn fingerprint(&self) -> String {
        fingerprint(&self.0)
    }

    /// Checks a checkpoint line's signature and reads its statement.
    pub fn open(&self, line: &str) -> Result<Statement, CheckpointError> {
        let read: ReadLine = serde_json::from_str(line.trim())
            .map_err(|e| CheckpointError::Malformed(e.to_string()))?;
        let bad_signature = || CheckpointError::BadSignature {
            key: self.fingerprint(),
            named: read.key.clone(),
        };
        let bytes: [u8; 64] = BASE64
            .decode(&read.signature)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(bad_signature)?;
        self.0
            .verify_strict(
                read.statement.get().as_bytes(),
                &Signature::from_bytes(&bytes),
            )
            .map_err(|_| bad_signature())?;
        #[derive(Deserialize)]
        struct Format {
            format: String,
        }
        let format: Format = serde_json::from_str(read.statement.get())
            .map_err(|e| CheckpointError::Malformed(e.to_string()))?;
        if format.format != FORMAT {
            return Err(CheckpointError::UnknownFormat {
                found: format.format,
            });
        }
        serde_json::from_str(read.statement.get())
            .map_err(|e| CheckpointError::Malformed(e.to_string()))
    }
}

fn read_key_file(path: &std::path::Path) -> Result<String, CheckpointError> {
    std::fs::read_to_string(path).map_err(|e| CheckpointError::KeyUnreadable {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

/// What a database shows that a checkpoint it should extend does not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Departure {
    /// The closed chain's head is not the one the checkpoint holds.
    ClosedChainRewritten { checkpoint: Head, now: Head },
    /// A chain ends before the checkpoint's head: records `from..=to` are gone.
    RecordsMissing { chain: i32, from: i64, to: i64 },
    /// The record at the checkpoint's head is not the one it held: the chain was altered at or
    /// before it and its hashes recomputed.
    ChainRewritten { chain: i32, seq: i64 },
    /// The ledgers as they stood at the checkpoint hold fewer events (or ledgers) now.
    LedgerEventsMissing {
        checkpoint: LedgerSummary,
        now: LedgerSummary,
    },
    /// The ledgers as they stood at the checkpoint differ now though no fewer events remain.
    LedgersRewritten {
        checkpoint: LedgerSummary,
        now: LedgerSummary,
    },
}

impl std::fmt::Display for Departure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Departure::ClosedChainRewritten { checkpoint, now } => write!(
                f,
                "the chain written before format 2 was rewritten: the checkpoint holds record {} with hash {}, the database record {} with hash {}",
                checkpoint.seq, checkpoint.hash, now.seq, now.hash
            ),
            Departure::RecordsMissing { chain, from, to } if from == to => write!(
                f,
                "chain {chain}: record {from} is missing (the checkpoint holds {to} records; the chain and its head end before it)"
            ),
            Departure::RecordsMissing { chain, from, to } => write!(
                f,
                "chain {chain}: records {from} to {to} are missing (the checkpoint holds {to} records; the chain and its head end at {})",
                from - 1
            ),
            Departure::ChainRewritten { chain, seq } => write!(
                f,
                "chain {chain} was rewritten: record {seq} is not the record the checkpoint holds (its hash differs), so the chain was altered at or before record {seq} and its hashes recomputed"
            ),
            Departure::LedgerEventsMissing { checkpoint, now } => write!(
                f,
                "the consent ledgers lost events: at the checkpoint {} ledgers held {} events, the same ledgers hold {} events in {} ledgers now",
                checkpoint.ledgers, checkpoint.events, now.events, now.ledgers
            ),
            Departure::LedgersRewritten { checkpoint, now } => write!(
                f,
                "the consent ledgers were rewritten: the {} ledgers and {} events the checkpoint covers have different heads now ({} ledgers, {} events; digest {} instead of {})",
                checkpoint.ledgers, checkpoint.events, now.ledgers, now.events, now.digest, checkpoint.digest
            ),
        }
    }
}

/// Compares a ledger summary recomputed as of a checkpoint with the checkpoint's.
pub fn compare_ledgers(checkpoint: &LedgerSummary, now: &LedgerSummary) -> Option<Departure> {
    if checkpoint == now {
        None
    } else if now.events < checkpoint.events || now.ledgers < checkpoint.ledgers {
        Some(Departure::LedgerEventsMissing {
            checkpoint: checkpoint.clone(),
            now: now.clone(),
        })
    } else {
        Some(Departure::LedgersRewritten {
            checkpoint: checkpoint.clone(),
            now: now.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement() -> Statement {
        Statement::new(
            "2026-12-02T10:00:00Z".parse().unwrap(),
            AuditHeads {
                closed: Head {
                    seq: 0,
                    hash: "0".repeat(64),
                },
                chains: vec![ChainHead {
                    chain: 1,
                    seq: 12,
                    hash: "ab".repeat(32),
                }],
            },
            LedgerDigest::default().finish(),
        )
    }

    #[test]
    fn a_signed_statement_opens_with_its_public_key_and_not_with_another() {
        let key = CheckpointKey::generate();
        let line = key.sign(&statement());
        assert_eq!(key.public().open(&line).unwrap(), statement());
        let other = CheckpointKey::generate().public();
        assert!(matches!(
            other.open(&line),
            Err(CheckpointError::BadSignature { .. })
        ));
    }

    #[test]
    fn an_altered_statement_fails_its_signature() {
        let key = CheckpointKey::generate();
        let line = key.sign(&statement());
        let altered = line.replace("\"seq\":12", "\"seq\":11");
        assert_ne!(altered, line);
        assert!(matches!(
            key.public().open(&altered),
            Err(CheckpointError::BadSignature { .. })
        ));
        assert!(matches!(
            key.public().open("not json"),
            Err(CheckpointError::Malformed(_))
        ));
    }

    #[test]
    fn keys_round_trip_through_pem() {
        let dir = tempfile::tempdir().unwrap();
        let key = CheckpointKey::generate();
        let private = dir.path().join("private.pem");
        let public = dir.path().join("public.pem");
        std::fs::write(&private, key.private_pem()).unwrap();
        std::fs::write(&public, key.public().pem()).unwrap();
        let read = CheckpointKey::read(&private).unwrap();
        assert_eq!(read.public(), key.public());
        assert_eq!(PublicKey::read(&public).unwrap(), key.public());
        assert!(matches!(
            CheckpointKey::read(&public),
            Err(CheckpointError::NotAKey {
                kind: "private",
                ..
            })
        ));
    }

    #[test]
    fn the_ledger_digest_depends_on_every_head() {
        let a = Uuid::from_u128(1);
        let b = Uuid::from_u128(2);
        let digest = |heads: &[(Uuid, i64, &str)]| {
            let mut d = LedgerDigest::default();
            for (id, seq, hash) in heads {
                d.add(*id, *seq, hash);
            }
            d.finish()
        };
        let base = digest(&[(a, 2, "x"), (b, 1, "y")]);
        assert_eq!(base.ledgers, 2);
        assert_eq!(base.events, 3);
        assert_eq!(compare_ledgers(&base, &base), None);
        let fewer = digest(&[(a, 1, "w"), (b, 1, "y")]);
        assert!(matches!(
            compare_ledgers(&base, &fewer),
            Some(Departure::LedgerEventsMissing { .. })
        ));
        let rewritten = digest(&[(a, 2, "z"), (b, 1, "y")]);
        assert!(matches!(
            compare_ledgers(&base, &rewritten),
            Some(Departure::LedgersRewritten { .. })
        ));
    }
}
