//! Checking that nothing recorded was altered: the audit trail's chain and every consent
//! ledger's (`assent-server audit verify`).

use super::ServiceResult;
use crate::store::{self, audit::Verification, ledger::BrokenLedger, Db};

/// What a walk of every chain found.
#[derive(Debug)]
pub struct Integrity {
    pub audit: Verification,
    /// The events checked, or the first broken ledger.
    pub ledgers: Result<u64, BrokenLedger>,
}

impl Integrity {
    pub fn intact(&self) -> bool {
        matches!(self.audit, Verification::Intact { .. }) && self.ledgers.is_ok()
    }
}

/// Walks the audit trail and every ledger, and names the first broken link of each.
pub async fn verify(db: &Db) -> ServiceResult<Integrity> {
    Ok(Integrity {
        audit: store::audit::verify(db).await?,
        ledgers: store::ledger::verify(db).await?,
    })
}
