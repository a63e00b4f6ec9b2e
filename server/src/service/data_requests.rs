//! Asking for one's data through the public pages: access, correction or erasure (UK GDPR
//! Articles 15 to 17). The page is offered once the data protection lead publishes it
//! ([`publish_page`]), which makes the standing campaign that sends its verification emails.
//!
//! A person gives their address and what they ask ([`ask`]); the request is recorded with its
//! received time at once, and when a contact (active or not) holds the address, an email goes to it
//! with a link whose page has a button: pressing it ([`verify`]) proves the address is theirs and
//! records the verified time. A GET of the link verifies nothing. The answer to the person is the
//! same whether or not anyone holds the address, so the page tells a stranger nothing; a request
//! for an address no contact holds is still recorded, unverified, for staff to answer by other
//! means. The register of requests and its clock come with the data subject rights issue: here
//! the staff see the list ([`list`]).

use assent_shared::api::{DataRequest, DataRequestPage};
use assent_shared::domain::{parse_notes, DataRequestKind, EmailAddress, Role, SystemJob};
use assent_shared::validate::FieldErrors;
use uuid::Uuid;

use super::signups::{standing_campaign, Settings};
use super::{access, Actor, DataSubject, ServiceError, ServiceResult};
use crate::audit::{Action, ObjectKind};
use crate::clock;
use crate::store::data_requests::{PublishedPage, StoredRequest, DATA_REQUEST_PAGE};
use crate::store::{self, Db};

/// Who publishes the page (its verification email is sent in the organisation's name).
pub const PAGE_ROLES: &[Role] = &[Role::Dpo];
/// Who sees the requests.
pub const REQUEST_ROLES: &[Role] = &[Role::Dpo, Role::Manager];

/// The longest details a person may write.
pub const DETAILS_MAX: usize = 2000;

/// The verification email, laid out as the sign-up confirmation (`{{confirm_url}}` is the page
/// of its button).
const VERIFICATION: &str = include_str!("../../templates/en/data-request-verification.md");

/// Publishes the data request page with its standing campaign.
pub async fn publish_page(
    db: &Db,
    actor: &Actor,
    settings: &Settings,
) -> ServiceResult<DataRequestPage> {
    access::require_any(db, actor, PAGE_ROLES, None).await?;
    let staff = access::staff(db, actor, "publishes the data request page").await?;
    let now = clock::now();
    let campaign = standing_campaign(
        "Data request verifications".to_owned(),
        VERIFICATION,
        staff.user.id,
        now,
    )?;
    let page = PublishedPage {
        campaign_id: campaign.id,
        published_by: staff.user.id,
        published_at: now,
    };
    let mut tx = db.begin().await?;
    store::campaigns::insert(&mut tx, &campaign).await?;
    if !store::data_requests::publish(&mut tx, DATA_REQUEST_PAGE, &page).await? {
        return Err(ServiceError::WrongState(
            "The data request page is published already.".into(),
        ));
    }
    store::audit::append(
        &mut tx,
        &actor
            .audit(Action::DataRequestPagePublished)
            .on(ObjectKind::Campaign, campaign.id),
    )
    .await?;
    tx.commit().await?;
    Ok(to_api(page, settings))
}

/// The data request page, if it is published.
pub async fn page(db: &Db, actor: &Actor, settings: &Settings) -> ServiceResult<DataRequestPage> {
    access::require_any(db, actor, REQUEST_ROLES, None).await?;
    store::data_requests::page(db, DATA_REQUEST_PAGE)
        .await?
        .map(|p| to_api(p, settings))
        .ok_or(ServiceError::NotFound("data request page"))
}

fn to_api(page: PublishedPage, settings: &Settings) -> DataRequestPage {
    DataRequestPage {
        url: format!("{}/r", settings.public_url),
        campaign_id: page.campaign_id,
        published_by: page.published_by,
        published_at: page.published_at,
    }
}

/// The requests, newest first (at most 500), audited as a read of each.
pub async fn list(db: &Db, actor: &Actor) -> ServiceResult<Vec<DataRequest>> {
    access::require_any(db, actor, REQUEST_ROLES, None).await?;
    let requests = store::data_requests::list(db, 500).await?;
    let record = actor
        .audit(Action::DataRequestsListed)
        .on_each(ObjectKind::DataRequest, requests.iter().map(|r| r.id))
        .on_each(
            ObjectKind::Contact,
            requests.iter().filter_map(|r| r.contact_id),
        );
    let mut tx = db.begin().await?;
    store::audit::append(&mut tx, &record).await?;
    tx.commit().await?;
    Ok(requests)
}

/// Whether the page is offered.
pub async fn offered(db: &Db) -> ServiceResult<bool> {
    Ok(store::data_requests::page(db, DATA_REQUEST_PAGE)
        .await?
        .is_some())
}

/// A request as the page's form sent it.
#[derive(Debug, Clone, Default)]
pub struct Ask {
    pub email: String,
    pub kind: String,
    pub details: Option<String>,
}

/// Records a request and, when a contact holds the address, queues the email that verifies it
/// (at most one every `mail_interval` for an address with one pending), in one transaction that
/// commits before it returns. What the person is told does not depend on either.
pub async fn ask(db: &Db, settings: &Settings, input: &Ask) -> ServiceResult<()> {
    let Some(page) = store::data_requests::page(db, DATA_REQUEST_PAGE).await? else {
        return Err(ServiceError::NotFound("data request page"));
    };
    let mut errors = FieldErrors::default();
    let email = errors.check("Email address", EmailAddress::parse(&input.email));
    let kind: Option<DataRequestKind> = errors.check("What you ask for", input.kind.parse());
    let details = errors
        .check(
            "Anything we should know",
            parse_notes(input.details.as_deref(), DETAILS_MAX),
        )
        .flatten();
    if !errors.is_empty() {
        return Err(errors.into());
    }
    let (Some(email), Some(kind)) = (email, kind) else {
        // Both are Some once no field is in error.
        return Err(ServiceError::BadRequest(
            "The form could not be read.".into(),
        ));
    };
    let address = email.as_str().to_owned();
    let address_key = store::users::email_key(&address);
    let now = clock::now();
    let id = Uuid::now_v7();
    let mut tx = db.begin().await?;
    store::signups::lock_address(&mut tx, &address_key).await?;
    // A deactivated contact's data is held too: the request is about it.
    let contact_id = store::signups::any_contact_holding(&mut tx, &address_key).await?;
    let pending =
        store::data_requests::mailed_since(&mut tx, &address_key, now - settings.mail_interval)
            .await?;
    let outbox_id = (contact_id.is_some() && !pending).then(Uuid::now_v7);
    let stored = StoredRequest {
        request: DataRequest {
            id,
            kind,
            details,
            address: address.clone(),
            contact_id,
            received_at: now,
            verified_at: None,
            expires_at: now + settings.confirm_for,
        },
        outbox_id,
    };
    if let (Some(contact_id), Some(outbox_id)) = (contact_id, outbox_id) {
        let row = store::outbox::NewRow {
            id: outbox_id,
            contact_id,
            message_id: format!(
                "{}.{}.{}@{}",
                page.campaign_id.simple(),
                contact_id.simple(),
                id.simple(),
                settings.message_id_domain
            ),
            token: crate::auth::new_token().0,
        };
        let occasion = id.to_string();
        store::outbox::enqueue(&mut tx, page.campaign_id, "email", &occasion, &[row], now).await?;
    }
    store::data_requests::insert(&mut tx, &stored, &address_key).await?;
    let actor = match contact_id {
        Some(contact_id) => Actor::DataSubject(DataSubject {
            contact_id,
            token_id: id,
        }),
        // Nobody in the CRM: the page received it.
        None => Actor::System(SystemJob::PublicPages),
    };
    let mut record = actor
        .audit(Action::DataRequestReceived)
        .on(ObjectKind::DataRequest, id);
    if let Some(contact_id) = contact_id {
        record = record.on(ObjectKind::Contact, contact_id);
    }
    store::audit::append(&mut tx, &record).await?;
    tx.commit().await?;
    Ok(())
}

/// What the verification page of a link shows.
#[derive(Debug, Clone)]
pub struct Verification {
    pub kind: DataRequestKind,
    pub verified: bool,
    pub expired: bool,
}

/// The request a verification link's token belongs to; an unknown token, or one of another
/// message, is `NotFound` alike.
async fn holder(db: &Db, token: &str) -> ServiceResult<StoredRequest> {
    let not_found = || ServiceError::NotFound("verification link");
    if !crate::auth::looks_like_token(token) {
        return Err(not_found());
    }
    let row = store::outbox::by_token(db, token)
        .await?
        .ok_or_else(not_found)?;
    store::data_requests::by_message(db, row.id)
        .await?
        .ok_or_else(not_found)
}

/// What the link of `token` would verify. Changes nothing.
pub async fn verification(db: &Db, token: &str) -> ServiceResult<Verification> {
    let stored = holder(db, token).await?;
    let r = &stored.request;
    Ok(Verification {
        kind: r.kind,
        verified: r.verified_at.is_some(),
        expired: r.verified_at.is_none() && r.expires_at <= clock::now(),
    })
}

/// Verifies the request of `token` (the button's POST): its verified time, with the audit record
/// by the person, committed before it returns. An expired link verifies nothing.
pub async fn verify(db: &Db, token: &str) -> ServiceResult<Verification> {
    let stored = holder(db, token).await?;
    let now = clock::now();
    let r = &stored.request;
    if r.verified_at.is_none() && r.expires_at > now {
        let (Some(contact_id), Some(outbox_id)) = (r.contact_id, stored.outbox_id) else {
            // A link exists only for a request with a contact.
            return Err(ServiceError::NotFound("verification link"));
        };
        let actor = Actor::DataSubject(DataSubject {
            contact_id,
            token_id: outbox_id,
        });
        let mut tx = db.begin().await?;
        if store::data_requests::verify(&mut tx, r.id, now).await? {
            store::audit::append(
                &mut tx,
                &actor
                    .audit(Action::DataRequestVerified)
                    .on(ObjectKind::DataRequest, r.id)
                    .on(ObjectKind::Contact, contact_id),
            )
            .await?;
            tx.commit().await?;
        }
    }
    verification(db, token).await
}
