//! Checking that nothing recorded was altered: the audit trail's chains, every consent
//! ledger's and each campaign's chain of warrants in the communication log (`assent-server audit verify`), and checkpoints of where they stood, signed with a
//! key outside the database, that a rewrite of the whole database cannot match
//! (`audit checkpoint`, `audit verify --checkpoint`, and the server's periodic checkpoints).

use chrono::{DateTime, Utc};

use super::ServiceResult;
use crate::checkpoint::{compare_ledgers, CheckpointKey, Departure, Statement};
use crate::store::{self, audit::Verification, ledger::BrokenLedger, Db};

/// What a walk of every chain found.
#[derive(Debug)]
pub struct Integrity {
    pub audit: Verification,
    /// The events checked, or the first broken ledger.
    pub ledgers: Result<u64, BrokenLedger>,
    /// The warrants of the communication log checked, or the first broken campaign chain.
    pub warrants: Result<u64, store::outbox::BrokenWarrants>,
}

impl Integrity {
    pub fn intact(&self) -> bool {
        matches!(self.audit, Verification::Intact { .. })
            && self.ledgers.is_ok()
            && self.warrants.is_ok()
    }
}

/// Walks the audit trail and every ledger, and names the first broken link of each.
pub async fn verify(db: &Db) -> ServiceResult<Integrity> {
    Ok(Integrity {
        audit: store::audit::verify(db).await?,
        ledgers: store::ledger::verify(db).await?,
        warrants: store::outbox::verify(db).await?,
    })
}

/// Where every chain stands, read in one snapshot so that the heads and the ledgers agree.
pub async fn statement(db: &Db, at: DateTime<Utc>) -> ServiceResult<Statement> {
    let mut tx = db.begin_snapshot().await?;
    let heads = store::audit::heads(&mut tx).await?;
    let ledgers = store::ledger::summary_as_of(&mut tx, &heads).await?;
    tx.commit().await?;
    Ok(Statement::new(at, heads, ledgers))
}

/// A signed checkpoint line of where every chain stands.
pub async fn checkpoint(db: &Db, key: &CheckpointKey, at: DateTime<Utc>) -> ServiceResult<String> {
    Ok(key.sign(&statement(db, at).await?))
}

/// Everything by which the database no longer extends `checkpoint`: records gone from a
/// chain's end, a chain recomputed from an altered record, ledgers that lost or changed events
/// the checkpoint covers. Empty when the database extends it. (Breaks inside a chain are
/// [`verify`]'s to find.)
pub async fn departures(db: &Db, checkpoint: &Statement) -> ServiceResult<Vec<Departure>> {
    let mut found = Vec::new();
    let mut now = db.begin_snapshot().await?;
    let heads = store::audit::heads(&mut now).await?;
    let ledgers = store::ledger::summary_as_of(&mut now, &checkpoint.audit).await?;
    // Each chain's head and the hash at the checkpoint's sequence, from the same snapshot, so
    // that records appended meanwhile cannot make the two disagree.
    let mut held_now = Vec::with_capacity(checkpoint.audit.chains.len());
    for held in &checkpoint.audit.chains {
        held_now.push(store::audit::head_and_hash_at(&mut now, held.chain, held.seq).await?);
    }
    now.commit().await?;
    if heads.closed != checkpoint.audit.closed {
        found.push(Departure::ClosedChainRewritten {
            checkpoint: checkpoint.audit.closed.clone(),
            now: heads.closed.clone(),
        });
    }
    for (held, (head, hash)) in checkpoint.audit.chains.iter().zip(held_now) {
        match hash {
            _ if head < held.seq => found.push(Departure::RecordsMissing {
                chain: held.chain,
                from: head + 1,
                to: held.seq,
            }),
            None => found.push(Departure::RecordsMissing {
                chain: held.chain,
                from: held.seq,
                to: held.seq,
            }),
            Some(hash) if hash != held.hash => found.push(Departure::ChainRewritten {
                chain: held.chain,
                seq: held.seq,
            }),
            Some(_) => {}
        }
    }
    found.extend(compare_ledgers(&checkpoint.ledgers, &ledgers));
    Ok(found)
}
