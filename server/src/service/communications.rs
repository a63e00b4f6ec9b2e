//! The communication log: every message Assent decided for a contact, with its warrant (the
//! decision at send time and what it rested on) and where the message stands. Staff read it on
//! the contact; the evidence pack lists the same warrants.

use assent_shared::api::Communication;
use uuid::Uuid;

use super::access::{self, CONTACT_ROLES};
use super::contacts::load;
use super::{Actor, ServiceResult};
use crate::audit::{Action, ObjectKind};
use crate::store::{self, Db};

/// The communication log of contact `id`, oldest decision first; returned once the read's audit
/// record is committed.
pub async fn log(db: &Db, actor: &Actor, id: Uuid) -> ServiceResult<Vec<Communication>> {
    access::require_any(db, actor, CONTACT_ROLES, Some((ObjectKind::Contact, id))).await?;
    let mut tx = db.begin_read().await?;
    load(&mut tx, id).await?;
    let record = actor
        .audit(Action::CommunicationsRead)
        .on(ObjectKind::Contact, id);
    let log = store::outbox::log_of(&mut tx, id).await?;
    tx.commit().await?;
    store::audit::record_read(db, record).await?;
    Ok(log)
}
