//! The evidence pack of a contact, assembled: the contact, its ledger and the verification of
//! that ledger's chain, its communication log (the warrants), read once in one transaction (so the pack shows exactly what it
//! verified), the users it names (each audited as read), and the policy versions in force while
//! the ledger was kept. Rendering is `crate::evidence`'s.

use std::collections::HashMap;

use assent_shared::api::RecordedVia;
use uuid::Uuid;

use super::access::{self, CONTACT_ROLES};
use super::contacts::load;
use super::{names, Actor, ServiceError, ServiceResult};
use crate::audit::{Action, ObjectKind};
use crate::clock;
use crate::evidence::{ChainStatus, EvidencePack};
use crate::store::{self, Db};

/// How the pack is wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackFormat {
    Html,
    Pdf,
}

impl PackFormat {
    /// `html` (the default when absent) or `pdf`.
    pub fn parse(text: Option<&str>) -> ServiceResult<PackFormat> {
        match text {
            None | Some("html") => Ok(PackFormat::Html),
            Some("pdf") => Ok(PackFormat::Pdf),
            Some(_) => Err(ServiceError::BadRequest(
                "format must be html or pdf".into(),
            )),
        }
    }
}

/// A rendered pack.
pub enum RenderedPack {
    Html(String),
    Pdf(Vec<u8>),
}

/// The evidence pack of contact `id`, for when a consent is challenged.
/// `format` is `html` (the default when absent) or `pdf`.
pub async fn pack(
    db: &Db,
    actor: &Actor,
    id: Uuid,
    format: Option<&str>,
) -> ServiceResult<RenderedPack> {
    access::require_any(db, actor, CONTACT_ROLES, Some((ObjectKind::Contact, id))).await?;
    let format = PackFormat::parse(format)?;
    let now = clock::now();
    // Policy versions are not personal data; they are read before the transaction.
    let history = store::policies::history(db).await?;
    let mut tx = db.begin_snapshot().await?;
    let contact = load(&mut tx, id).await?;
    let pack_record = actor
        .audit(Action::EvidencePackGenerated)
        .on(ObjectKind::Contact, id);
    let (ledger, chain) = store::ledger::read_verified(&mut tx, id).await?;
    let chain = match chain {
        Ok(events) => ChainStatus::Intact { events },
        Err(link) => ChainStatus::Broken {
            seq: link.seq,
            problem: link.problem,
        },
    };
    let communications = store::outbox::log_of(&mut tx, id).await?;
    // The versions in force from the first recorded event or warrant on (the current one at
    // least).
    let since = ledger
        .iter()
        .map(|e| e.recorded_at)
        .chain(communications.iter().map(|c| c.decided_at))
        .min()
        .unwrap_or(now);
    let start = history
        .iter()
        .position(|p| p.changed_at <= since)
        .unwrap_or(history.len().saturating_sub(1));
    let policies = &history[..=start.min(history.len().saturating_sub(1))];
    // The users the pack names: who recorded or imported events, who changed those policies,
    // who wrote and approved the messages.
    let mut named: Vec<Uuid> = ledger
        .iter()
        .filter(|e| matches!(e.recorded_via, RecordedVia::User | RecordedVia::Import))
        .filter_map(|e| e.recorded_by)
        .chain(policies.iter().filter_map(|p| p.changed_by))
        .chain(
            communications
                .iter()
                .flat_map(|c| std::iter::once(c.author_id).chain(c.approver_id)),
        )
        .collect();
    named.sort_unstable();
    named.dedup();
    let recorders: HashMap<Uuid, String> = store::users::names(&mut tx, &named)
        .await?
        .into_iter()
        .map(|(id, (name, email))| (id, format!("{name} <{email}>")))
        .collect();
    let users_record = actor.audit_each(
        Action::UserRead,
        ObjectKind::User,
        recorders.keys().copied(),
    );
    let generated_by = match actor {
        Actor::Staff(staff) => format!("{} <{}>", staff.user.display_name, staff.user.email),
        other => names::of(&mut tx, other.reference()).await?,
    };
    tx.commit().await?;
    store::audit::record_reads(db, vec![pack_record, users_record]).await?;
    let pack = EvidencePack {
        contact: &contact,
        ledger: &ledger,
        recorders: &recorders,
        chain,
        communications: &communications,
        policies,
        generated_at: now,
        generated_by: &generated_by,
    };
    Ok(match format {
        PackFormat::Html => RenderedPack::Html(pack.html()),
        PackFormat::Pdf => RenderedPack::Pdf(pack.pdf()),
    })
}
