//! Synthetic contacts (each with an address at example.org) with seeded, realistic consent ledgers, for trying Assent out and for
//! benchmarks (`assent-server seed`). Never for a production database.
//!
//! The contacts are owned by the first user and created by the seed job; their events are
//! recorded as an import by that job. Each batch of contacts and their ledgers is one
//! transaction, audited by one record.

use assent_engine::synthetic::Generator;
use assent_shared::api::{ActorRef, ContactInput};
use assent_shared::domain::SystemJob;
use uuid::Uuid;

use super::{Actor, ServiceError, ServiceResult};
use crate::audit::Action;
use crate::clock;
use crate::store::{self, Db};

/// Contacts written in one transaction.
const BATCH: u64 = 1000;

/// What seeding made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seeded {
    pub contacts: u64,
    pub events: u64,
}

/// Creates `count` synthetic contacts ("Synthetic Person 17") from `seed` (the same seed makes
/// the same ledgers), calling `progress(done)` after each batch.
pub async fn synthetic(
    db: &Db,
    count: u64,
    seed: u64,
    mut progress: impl FnMut(u64),
) -> ServiceResult<Seeded> {
    let actor = Actor::System(SystemJob::Seed);
    let by = ActorRef::System {
        job: SystemJob::Seed,
    };
    let mut tx = db.begin_read().await?;
    let owner = store::users::list(&mut tx)
        .await?
        .into_iter()
        .min_by_key(|u| u.created_at)
        .ok_or_else(|| {
            ServiceError::BadRequest(
                "create a user first: the synthetic contacts need an owner".into(),
            )
        })?;
    drop(tx);
    let mut generator = Generator::new(seed);
    let mut seeded = Seeded {
        contacts: 0,
        events: 0,
    };
    while seeded.contacts < count {
        let batch = (count - seeded.contacts).min(BATCH);
        let first = seeded.contacts + 1;
        let contacts = (first..first + batch)
            .map(|n| {
                let subject = generator.subject();
                let input = ContactInput {
                    first_name: Some("Synthetic".into()),
                    last_name: Some(format!("Person {n}")),
                    // example.org is reserved for examples: the address reaches no one.
                    emails: vec![format!("synthetic.person.{n}@example.org")],
                    subscriber_kind: Some(subject.kind),
                    ..ContactInput::default()
                };
                Ok((Uuid::now_v7(), input.validate()?, generator.ledger()))
            })
            .collect::<ServiceResult<Vec<_>>>()?;
        let new: Vec<_> = contacts
            .iter()
            .map(|(id, valid, _)| store::contacts::NewContact {
                id: *id,
                contact: valid,
                owner_id: Some(owner.id),
                active: true,
            })
            .collect();
        let entries: Vec<_> = contacts
            .iter()
            .flat_map(|(id, _, ledger)| {
                ledger.iter().map(|event| store::ledger::NewEntry {
                    contact_id: *id,
                    at: event.at,
                    kind: &event.kind,
                    external_id: event.id.as_deref(),
                    source: None,
                    recorded_by: by,
                    imported: true,
                })
            })
            .collect();
        let now = clock::now();
        let mut tx = db.begin().await?;
        store::contacts::insert_many(&mut tx, &new, by, now).await?;
        let ids: Vec<Uuid> = new.iter().map(|contact| contact.id).collect();
        let record = actor.audit(Action::ContactsSeeded);
        store::ledger::lock(&mut tx, &record, &ids)
            .await?
            .append_many(&entries, now)
            .await?;
        tx.commit().await?;
        seeded.contacts += batch;
        seeded.events += entries.len() as u64;
        progress(seeded.contacts);
    }
    Ok(seeded)
}
