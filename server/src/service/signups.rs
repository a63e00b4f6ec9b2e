//! Sign-up forms and their provable double opt-in.
//!
//! Staff publish a form ([`create_form`]): one wording version, the topics it offers and the
//! sites it may be posted from, with two standing campaigns of its own that send its
//! confirmation emails and its consent receipts (service messages: each has an outbox row and a
//! warrant like any other). A person signs up ([`sign_up`]): the topics ticked and where the form
//! was posted from (page, IP, user agent, the address given) are kept with the sign-up and a
//! confirmation is queued; no consent is recorded yet, so a post nobody confirms allows nothing
//! and lifts no erasure. The link in the email opens a page whose button confirms ([`confirm`]):
//! a GET confirms nothing, so a mail scanner that follows links confirms no one. Confirming
//! writes, per topic, the `consent_given` of the post (as of its time, with the form's wording
//! version, never text the browser sent) and the `consent_confirmed` of the button, and queues
//! the consent receipt.
//!
//! Subscription bombing (someone signing up other people's addresses) is bounded: a form is
//! taken only from its own sites (the browser's `Origin`), the public pages limit sign-ups per
//! client address, and an address with an unconfirmed confirmation sent in the last
//! [`Settings::mail_interval`] (through any form) gets no other: the post is answered as any
//! other and recorded nowhere.

use std::fmt::Write as _;

use assent_shared::api::{
    Audience, CampaignInput, ContactInput, EventSource, SignupForm, SignupFormInput, TopicEntry,
};
use assent_shared::domain::{parse_notes, parse_text, CampaignState, EmailAddress, Role};
use assent_shared::ledger::{Channel, ConsentMethod, EventKind, Message, MessageKind};
use assent_shared::validate::{FieldErrors, NAME_MAX, NOTES_MAX};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::campaigns::new_campaign;
use super::{access, Actor, DataSubject, ServiceError, ServiceResult};
use crate::audit::{Action, ObjectKind};
use crate::clock;
use crate::html::escape;
use crate::store::signups::{FormRow, Signup};
use crate::store::{self, ledger::NewEntry, Db};
use crate::template::ConsentValues;

/// Who may publish and retire sign-up forms: a form's wording is a consent wording, and its
/// confirmation is a message sent in the organisation's name.
pub const FORM_ROLES: &[Role] = &[Role::Manager, Role::Dpo];

/// The most topics a form offers, and sites it may be on.
pub const FORM_TOPICS_MAX: usize = 20;
pub const FORM_SITES_MAX: usize = 10;

/// The confirmation email, in English: its first line is the subject, then a line `---`, then
/// the body (CommonMark with merge fields; `{{confirm_url}}` is the confirmation page).
const CONFIRMATION: &str = include_str!("../../templates/en/signup-confirmation.md");
/// The consent receipt sent once a sign-up is confirmed, laid out as [`CONFIRMATION`] (its
/// fields: `{{receipt_id}}`, `{{consent_address}}`, `{{consent_topics}}`, `{{consent_wording}}`,
/// `{{consent_given_at}}`, `{{consent_confirmed_at}}`).
const RECEIPT: &str = include_str!("../../templates/en/consent-receipt.md");

/// How sign-ups are handled (from the configuration).
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long a confirmation link confirms (28 days unless configured).
    pub confirm_for: chrono::Duration,
    /// An address with an unconfirmed confirmation sent less than this long ago gets no other.
    pub mail_interval: chrono::Duration,
    /// The domain of the confirmations' Message-IDs.
    pub message_id_domain: String,
    /// Where the public pages are reached, without a trailing slash.
    pub public_url: String,
}

/// Publishes a sign-up form with its standing confirmation campaign.
pub async fn create_form(
    db: &Db,
    actor: &Actor,
    settings: &Settings,
    input: &SignupFormInput,
) -> ServiceResult<SignupForm> {
    access::require_any(db, actor, FORM_ROLES, None).await?;
    let staff = access::staff(db, actor, "publishes a sign-up form").await?;
    let catalogue = store::topics::in_force(db).await?;
    let mut errors = FieldErrors::default();
    let name = errors.check("name", parse_text(&input.name, NAME_MAX));
    let wording = match errors.check("wording", parse_notes(Some(&input.wording), NOTES_MAX)) {
        Some(Some(wording)) => Some(wording),
        Some(None) => {
            errors.add(
                "wording",
                "is empty: it is what people are shown and agree to",
            );
            None
        }
        None => None,
    };
    let mut topics: Vec<String> = Vec::new();
    if input.topics.is_empty() || input.topics.len() > FORM_TOPICS_MAX {
        errors.add(
            "topics",
            format!("must name 1 to {FORM_TOPICS_MAX} topics of the catalogue"),
        );
    }
    for (i, key) in input.topics.iter().enumerate() {
        match catalogue.topics.iter().find(|t| &t.key == key) {
            Some(t) if t.retired => errors.add(format!("topics[{i}]"), "is retired"),
            Some(_) if topics.contains(key) => errors.add(format!("topics[{i}]"), "is named twice"),
            Some(_) => topics.push(key.clone()),
            None => errors.add(
                format!("topics[{i}]"),
                "is not a topic of the catalogue in force",
            ),
        }
    }
    let mut sites: Vec<String> = Vec::new();
    if input.sites.is_empty() || input.sites.len() > FORM_SITES_MAX {
        errors.add(
            "sites",
            format!("must name 1 to {FORM_SITES_MAX} websites the form is on"),
        );
    }
    for (i, site) in input.sites.iter().enumerate() {
        match origin(site) {
            Some(o) if !sites.contains(&o) => sites.push(o),
            Some(_) => {}
            None => errors.add(
                format!("sites[{i}]"),
                "is not a website's origin: give its scheme and host, as https://www.example.com",
            ),
        }
    }
    if !errors.is_empty() {
        return Err(errors.into());
    }
    let name = name.unwrap_or_default();
    let now = clock::now();
    let confirmations = standing_campaign(
        format!("Sign-up confirmations: {name}"),
        CONFIRMATION,
        staff.user.id,
        now,
    )?;
    let receipts = standing_campaign(
        format!("Consent receipts: {name}"),
        RECEIPT,
        staff.user.id,
        now,
    )?;
    let wording = wording.unwrap_or_default();
    let mut tx = db.begin().await?;
    let (wording_id, wording_version) =
        store::ledger::record_wording(&mut tx, &wording, now).await?;
    let form = FormRow {
        id: Uuid::now_v7(),
        name,
        wording_id,
        wording_version,
        wording,
        topics,
        sites,
        campaign_id: confirmations.id,
        receipt_campaign_id: Some(receipts.id),
        created_by: staff.user.id,
        created_at: now,
        retired_at: None,
    };
    store::campaigns::insert(&mut tx, &confirmations).await?;
    store::campaigns::insert(&mut tx, &receipts).await?;
    store::signups::insert_form(&mut tx, &form).await?;
    let record = actor
        .audit(Action::SignupFormPublished)
        .on(ObjectKind::SignupForm, form.id)
        .on(ObjectKind::Campaign, confirmations.id)
        .on(ObjectKind::Campaign, receipts.id);
    store::audit::append(&mut tx, &record).await?;
    tx.commit().await?;
    Ok(to_api(form, &catalogue.topics, settings))
}

/// Every sign-up form, newest first.
pub async fn forms(db: &Db, actor: &Actor, settings: &Settings) -> ServiceResult<Vec<SignupForm>> {
    access::require_any(db, actor, FORM_ROLES, None).await?;
    let (forms, catalogue) =
        futures_util::try_join!(store::signups::forms(db), store::topics::in_force(db))?;
    Ok(forms
        .into_iter()
        .map(|f| to_api(f, &catalogue.topics, settings))
        .collect())
}

/// One sign-up form, with its snippet.
pub async fn form(
    db: &Db,
    actor: &Actor,
    settings: &Settings,
    id: Uuid,
) -> ServiceResult<SignupForm> {
    access::require_any(db, actor, FORM_ROLES, None).await?;
    let (form, catalogue) =
        futures_util::try_join!(store::signups::form(db, id), store::topics::in_force(db))?;
    let form = form.ok_or(ServiceError::NotFound("sign-up form"))?;
    Ok(to_api(form, &catalogue.topics, settings))
}

/// Retires a form: sign-ups through it are refused from now on, links already sent still confirm,
/// and its standing campaign sends what is queued.
pub async fn retire_form(
    db: &Db,
    actor: &Actor,
    settings: &Settings,
    id: Uuid,
) -> ServiceResult<SignupForm> {
    access::require_any(db, actor, FORM_ROLES, None).await?;
    let mut tx = db.begin().await?;
    if !store::signups::retire(&mut tx, id, clock::now()).await? {
        drop(tx);
        return match store::signups::form(db, id).await? {
            Some(_) => Err(ServiceError::WrongState(
                "The form is retired already.".into(),
            )),
            None => Err(ServiceError::NotFound("sign-up form")),
        };
    }
    store::audit::append(
        &mut tx,
        &actor
            .audit(Action::SignupFormRetired)
            .on(ObjectKind::SignupForm, id),
    )
    .await?;
    tx.commit().await?;
    form(db, actor, settings, id).await
}

/// The subject and body of a message kept in a template file: its first line, a line `---`,
/// then the body.
fn split_template(template: &'static str) -> (&'static str, &'static str) {
    match template.split_once("\n---\n") {
        Some((subject, body)) => (subject.trim(), body.trim()),
        // The files are part of the build; a test reads each.
        None => ("", template.trim()),
    }
}

/// A standing campaign of a form, sending `template` (a service email), approved as published
/// by the manager or data protection lead who publishes the form.
pub(super) fn standing_campaign(
    name: String,
    template: &'static str,
    publisher: Uuid,
    now: DateTime<Utc>,
) -> ServiceResult<assent_shared::api::Campaign> {
    let (subject, body) = split_template(template);
    let content = CampaignInput {
        name,
        message: Message {
            kind: MessageKind::Service,
            channel: Channel::Email,
            topic: String::new(),
            third_party: None,
        },
        subject: Some(subject.to_owned()),
        body: body.to_owned(),
        // Each sign-up brings its own recipient.
        audience: Audience::ContactIds(Vec::new()),
    };
    let mut campaign = new_campaign(content, Vec::new(), CampaignState::Sending, publisher)?;
    campaign.standing = true;
    campaign.submitted_at = Some(now);
    campaign.decided_by = Some(publisher);
    campaign.decided_at = Some(now);
    campaign.frozen_members = Some(0);
    Ok(campaign)
}

/// A website's origin as a browser sends it (`scheme://host[:port]`, lower case, no path), or
/// `None` when `site` is not one.
pub fn origin(site: &str) -> Option<String> {
    let site = site.trim().trim_end_matches('/').to_ascii_lowercase();
    let (scheme, rest) = site.split_once("://")?;
    if scheme != "https" && scheme != "http" {
        return None;
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) => {
            if port.is_empty() || port.len() > 5 || !port.chars().all(|c| c.is_ascii_digit()) {
                return None;
            }
            (host, Some(port))
        }
        None => (rest, None),
    };
    // A host name or an IPv4 address (an IPv6 literal is not taken).
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    if !host_ok {
        return None;
    }
    Some(match port {
        Some(port) => format!("{scheme}://{host}:{port}"),
        None => format!("{scheme}://{host}"),
    })
}

fn to_api(form: FormRow, catalogue: &[TopicEntry], settings: &Settings) -> SignupForm {
    let topics: Vec<TopicEntry> = form
        .topics
        .iter()
        .map(|key| named(catalogue, key))
        .collect();
    let snippet = snippet(&form, &topics, &settings.public_url);
    SignupForm {
        id: form.id,
        name: form.name,
        wording_version: form.wording_version,
        wording: form.wording,
        topics,
        sites: form.sites,
        campaign_id: form.campaign_id,
        receipt_campaign_id: form.receipt_campaign_id,
        created_by: form.created_by,
        created_at: form.created_at,
        retired_at: form.retired_at,
        snippet,
    }
}

/// A topic of the catalogue by key, in words (its key when the catalogue no longer has it).
fn named(catalogue: &[TopicEntry], key: &str) -> TopicEntry {
    catalogue
        .iter()
        .find(|t| t.key == key)
        .cloned()
        .unwrap_or_else(|| TopicEntry {
            key: key.to_owned(),
            name: key.to_owned(),
            description: String::new(),
            retired: false,
        })
}

/// The name of the field a bot fills in and a person never sees.
pub const HONEYPOT: &str = "website";

/// The HTML the organisation pastes into its website: a plain form (no script) that posts to the
/// public pages, with the wording version it shows, one unticked box per topic, and a field
/// hidden from people that only bots fill in.
fn snippet(form: &FormRow, topics: &[TopicEntry], public_url: &str) -> String {
    let mut html = String::new();
    let _ = writeln!(
        html,
        "<form method=\"post\" action=\"{}/s/{}\" accept-charset=\"utf-8\" class=\"assent-signup\">",
        escape(public_url),
        form.id
    );
    let _ = writeln!(
        html,
        "  <input type=\"hidden\" name=\"wording\" value=\"{}\">",
        form.wording_version
    );
    let wording = escape(&form.wording).replace('\n', "<br>\n  ");
    let _ = writeln!(html, "  <p>{wording}</p>");
    let _ = writeln!(
        html,
        "  <fieldset>\n    <legend>What would you like to hear about?</legend>"
    );
    for topic in topics {
        let _ = writeln!(
            html,
            "    <label><input type=\"checkbox\" name=\"topic\" value=\"{}\"> {}</label><br>",
            escape(&topic.key),
            escape(&topic.name)
        );
    }
    let _ = writeln!(html, "  </fieldset>");
    let _ = writeln!(
        html,
        "  <label>First name <input name=\"first_name\" autocomplete=\"given-name\" maxlength=\"{NAME_MAX}\" required></label><br>\n  \
         <label>Last name <input name=\"last_name\" autocomplete=\"family-name\" maxlength=\"{NAME_MAX}\"></label><br>\n  \
         <label>Email address <input type=\"email\" name=\"email\" autocomplete=\"email\" maxlength=\"254\" required></label><br>"
    );
    let _ = writeln!(
        html,
        "  <div style=\"position:absolute;left:-10000px\" aria-hidden=\"true\"><label>Leave this empty <input name=\"{HONEYPOT}\" tabindex=\"-1\" autocomplete=\"off\"></label></div>"
    );
    let _ = writeln!(html, "  <button type=\"submit\">Sign up</button>\n</form>");
    html
}

/// A sign-up as a browser posted it.
#[derive(Debug, Clone, Default)]
pub struct SignUp {
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// The topics ticked (keys).
    pub topics: Vec<String>,
    /// The wording version the snippet carried.
    pub wording_version: Option<i64>,
    /// The page it was posted from (`Referer`), if the browser said.
    pub page: Option<String>,
    /// The browser's `Origin`.
    pub origin: Option<String>,
    pub ip: Option<std::net::IpAddr>,
    pub user_agent: Option<String>,
}

/// What a sign-up did.
#[derive(Debug, Clone)]
pub struct SignedUp {
    /// The topics ticked, in words.
    pub topics: Vec<TopicEntry>,
}

/// Takes a sign-up through the form `form_id`: a contact made or matched by the address, the
/// topics ticked and where the form was posted from kept with a confirmation queued, in one
/// transaction that commits before it returns. No consent is recorded until the person confirms
/// ([`confirm`]). The answer is the same whether or not anything was queued, so that it tells
/// nobody what the address did before.
pub async fn sign_up(
    db: &Db,
    settings: &Settings,
    form_id: Uuid,
    input: &SignUp,
) -> ServiceResult<SignedUp> {
    let form = store::signups::form(db, form_id)
        .await?
        .ok_or(ServiceError::NotFound("sign-up form"))?;
    if form.retired_at.is_some() {
        return Err(ServiceError::WrongState(
            "This sign-up form is no longer in use: the website it is on may have a newer one."
                .into(),
        ));
    }
    let from_its_site = input
        .origin
        .as_deref()
        .and_then(origin)
        .is_some_and(|o| form.sites.contains(&o));
    if !from_its_site {
        return Err(ServiceError::Forbidden(
            "This form can only be used on the organisation's own website.".into(),
        ));
    }
    if input
        .wording_version
        .is_some_and(|v| v != form.wording_version)
    {
        return Err(ServiceError::WrongState(
            "This form has changed since the page was opened: reload the page and sign up again."
                .into(),
        ));
    }
    let mut errors = FieldErrors::default();
    let email = errors.check("Email address", EmailAddress::parse(&input.email));
    let contact_input = ContactInput {
        first_name: input.first_name.clone(),
        last_name: input.last_name.clone(),
        emails: email.iter().map(|e| e.as_str().to_owned()).collect(),
        phones: Vec::new(),
        address: None,
        company_id: None,
        subscriber_kind: None,
        job_title: None,
        notes: None,
        owner_id: None,
        version: None,
    };
    let contact = match contact_input.validate() {
        Ok(contact) => Some(contact),
        Err(invalid) => {
            for e in invalid.0 {
                let field = match e.field.as_str() {
                    "first_name" => "First name",
                    "last_name" => "Last name",
                    f if f.starts_with("emails") => continue,
                    _ => "Your name",
                };
                errors.add(field, e.reason);
            }
            None
        }
    };
    let mut topics: Vec<String> = Vec::new();
    for key in &input.topics {
        if !form.topics.contains(key) {
            return Err(ServiceError::BadRequest(
                "One of the choices sent is not one this form offers.".into(),
            ));
        }
        if !topics.contains(key) {
            topics.push(key.clone());
        }
    }
    if topics.is_empty() {
        errors.add("What would you like to hear about", "tick at least one box");
    }
    if !errors.is_empty() {
        return Err(errors.into());
    }
    let (Some(email), Some(contact)) = (email, contact) else {
        // Both are Some once no field is in error.
        return Err(ServiceError::BadRequest(
            "The form could not be read.".into(),
        ));
    };
    let address = email.as_str().to_owned();
    let address_key = store::users::email_key(&address);
    let signup_id = Uuid::now_v7();
    let now = clock::now();
    // The page without its query or fragment, which may carry someone's data or a tracker.
    let page = input
        .page
        .as_deref()
        .map(|p| p.split(['?', '#']).next().unwrap_or_default());
    let source = EventSource {
        form_url: page
            .or(input.origin.as_deref())
            .and_then(super::unsubscribe::source_text),
        ip: input.ip.map(|ip| ip.to_string()),
        user_agent: input
            .user_agent
            .as_deref()
            .and_then(super::unsubscribe::source_text),
        paper_reference: None,
        recording_reference: Some(format!(
            "sign-up form \u{201c}{}\u{201d}, wording version {}",
            form.name, form.wording_version
        )),
        contact_point: Some(address.clone()),
    };
    let catalogue = store::topics::in_force(db).await?;
    let signed_up = SignedUp {
        topics: topics.iter().map(|k| named(&catalogue.topics, k)).collect(),
    };
    let mut tx = db.begin().await?;
    store::signups::lock_address(&mut tx, &address_key).await?;
    // An address waiting on a confirmation sent a moment ago gets no other, through any form:
    // the post is answered as any other and recorded nowhere.
    if store::signups::pending_since(&mut tx, &address_key, now - settings.mail_interval).await? {
        return Ok(signed_up);
    }
    let holders = store::signups::contacts_holding(&mut tx, &address_key).await?;
    // The newest active contact holding the address gets the consent (the others are listed
    // for staff to review); else the one an earlier unconfirmed sign-up of it made; else a new
    // one, made inactive: out of every list and audience until the person confirms.
    let (contact_id, others, created, inserted) = match holders.split_first() {
        Some((newest, others)) => (*newest, others.to_vec(), false, false),
        None => match store::signups::pending_contact(&mut tx, &address_key).await? {
            Some(pending) => (pending, Vec::new(), true, false),
            None => {
                let id = Uuid::now_v7();
                let by = assent_shared::api::ActorRef::DataSubject { id };
                store::contacts::insert_pending(&mut tx, id, &contact, by, now).await?;
                (id, Vec::new(), true, true)
            }
        },
    };
    let actor = Actor::DataSubject(DataSubject {
        contact_id,
        token_id: signup_id,
    });
    if inserted {
        store::audit::append(
            &mut tx,
            &actor
                .audit(Action::ContactCreated)
                .on(ObjectKind::Contact, contact_id),
        )
        .await?;
    }
    let signup = Signup {
        id: signup_id,
        form_id: form.id,
        contact_id,
        address,
        address_key,
        topics,
        source,
        created_contact: created,
        others,
        outbox_id: Uuid::now_v7(),
        created_at: now,
        mailed_at: now,
        expires_at: now + settings.confirm_for,
        confirmed_at: None,
        receipt_outbox_id: None,
    };
    queue_confirmation(&mut tx, settings, &form, &signup, now).await?;
    store::audit::append(
        &mut tx,
        &actor
            .audit(Action::SignedUp)
            .on(ObjectKind::Contact, contact_id)
            .on(ObjectKind::SignupForm, form.id),
    )
    .await?;
    tx.commit().await?;
    Ok(signed_up)
}

/// Writes `signup` and queues its confirmation on the form's standing campaign.
async fn queue_confirmation(
    tx: &mut store::WriteTx,
    settings: &Settings,
    form: &FormRow,
    signup: &Signup,
    now: DateTime<Utc>,
) -> ServiceResult<()> {
    queue(
        tx,
        settings,
        form.campaign_id,
        signup,
        signup.outbox_id,
        now,
    )
    .await?;
    store::signups::insert(tx, signup).await?;
    Ok(())
}

/// Queues the message `outbox_id` of the standing campaign `campaign_id`, answering `signup` (its
/// occasion), to be sent at once.
async fn queue(
    tx: &mut store::WriteTx,
    settings: &Settings,
    campaign_id: Uuid,
    signup: &Signup,
    outbox_id: Uuid,
    now: DateTime<Utc>,
) -> ServiceResult<()> {
    let row = store::outbox::NewRow {
        id: outbox_id,
        contact_id: signup.contact_id,
        message_id: format!(
            "{}.{}.{}@{}",
            campaign_id.simple(),
            signup.contact_id.simple(),
            signup.id.simple(),
            settings.message_id_domain
        ),
        token: crate::auth::new_token().0,
    };
    let occasion = signup.id.to_string();
    store::outbox::enqueue(tx, campaign_id, "email", &occasion, &[row], now).await?;
    Ok(())
}

/// Whether `contact` is the one `signup` made, waiting for its confirmation: inactive, and
/// untouched since it was made (version 1), so never one staff deactivated.
fn waiting(signup: &Signup, contact: &assent_shared::api::Contact) -> bool {
    signup.created_contact
        && signup.confirmed_at.is_none()
        && !contact.active
        && contact.version == 1
}

/// What the confirmation page of a link shows.
#[derive(Debug, Clone)]
pub struct Confirmation {
    /// The topics the sign-up asked for, in words.
    pub topics: Vec<TopicEntry>,
    /// The exact words the person agreed to.
    pub wording: String,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub expired: bool,
}

/// The sign-up a confirmation link's token belongs to: an unknown token, or one of another kind
/// of message, is `NotFound` alike.
async fn pending(db: &Db, token: &str) -> ServiceResult<(Signup, FormRow)> {
    let not_found = || ServiceError::NotFound("confirmation link");
    if !crate::auth::looks_like_token(token) {
        return Err(not_found());
    }
    let row = store::outbox::by_token(db, token)
        .await?
        .ok_or_else(not_found)?;
    let mut tx = db.begin_read().await?;
    let signup = store::signups::by_message(&mut tx, row.id).await?;
    tx.commit().await?;
    let signup = signup.ok_or_else(not_found)?;
    // A contact deactivated (or erased) since is as unknown as a wrong link; the one the sign-up
    // made waits, inactive, for its confirmation.
    let contact = store::contacts::read(db, signup.contact_id).await?;
    let usable = contact
        .as_ref()
        .is_some_and(|c| c.active || waiting(&signup, c));
    if !usable {
        return Err(not_found());
    }
    let form = store::signups::form(db, signup.form_id)
        .await?
        .ok_or_else(not_found)?;
    Ok((signup, form))
}

/// What the link of `token` would confirm. Changes nothing.
pub async fn confirmation(db: &Db, token: &str) -> ServiceResult<Confirmation> {
    let (signup, form) = pending(db, token).await?;
    let catalogue = store::topics::in_force(db).await?;
    Ok(Confirmation {
        topics: signup
            .topics
            .iter()
            .map(|k| named(&catalogue.topics, k))
            .collect(),
        wording: form.wording,
        confirmed_at: signup.confirmed_at,
        expired: signup.confirmed_at.is_none() && signup.expires_at <= clock::now(),
    })
}

/// How a confirmation reached Assent: the page's POST.
#[derive(Debug, Clone)]
pub struct Confirming {
    /// The page's address without the token.
    pub page: String,
    pub ip: Option<std::net::IpAddr>,
    pub user_agent: Option<String>,
}

/// What pressing the button did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmed {
    /// Recorded now: a `consent_confirmed` per topic.
    Now { topics: usize },
    /// Confirmed before: nothing more was recorded.
    Already,
    /// The link ran out before it was used; nothing was recorded.
    Expired,
}

/// Confirms the sign-up of `token`: for each of its topics on email, by the person, the
/// `consent_given` of the form's post (with its source and time) and the `consent_confirmed` of
/// this request (its IP and user agent), both as of now and each naming the address; and queues
/// the consent receipt; in one transaction that commits before it returns.
pub async fn confirm(
    db: &Db,
    settings: &Settings,
    token: &str,
    via: &Confirming,
) -> ServiceResult<Confirmed> {
    let (signup, form) = pending(db, token).await?;
    if signup.confirmed_at.is_some() {
        return Ok(Confirmed::Already);
    }
    let now = clock::now();
    if signup.expires_at <= now {
        return Ok(Confirmed::Expired);
    }
    let source = EventSource {
        form_url: super::unsubscribe::source_text(&via.page),
        ip: via.ip.map(|ip| ip.to_string()),
        user_agent: via
            .user_agent
            .as_deref()
            .and_then(super::unsubscribe::source_text),
        paper_reference: None,
        recording_reference: Some(format!(
            "confirmation of sign-up form \u{201c}{}\u{201d}",
            form.name
        )),
        contact_point: Some(signup.address.clone()),
    };
    let actor = Actor::DataSubject(DataSubject {
        contact_id: signup.contact_id,
        token_id: signup.outbox_id,
    });
    let record = actor
        .audit(Action::SignupConfirmed)
        .on(ObjectKind::Contact, signup.contact_id)
        .on(ObjectKind::SignupForm, form.id);
    let mut tx = db.begin().await?;
    let mut ledger = store::ledger::lock(&mut tx, &record, &[signup.contact_id]).await?;
    // The receipt is queued with the confirmation, in its transaction.
    let receipt = match form.receipt_campaign_id {
        Some(campaign_id) => {
            let id = Uuid::now_v7();
            queue(ledger.tx(), settings, campaign_id, &signup, id, now).await?;
            Some(id)
        }
        None => None,
    };
    if !store::signups::confirm(ledger.tx(), signup.id, now, receipt).await? {
        // Another press of the button got there first.
        return Ok(Confirmed::Already);
    }
    // The contact the sign-up made joins the lists now that the person has confirmed.
    if signup.created_contact {
        activate(ledger.tx(), &actor, signup.contact_id, now).await?;
    }
    // The consents are written now, as the person confirms them: each given as of this moment
    // (a confirmation is their latest word: an opt-out or an erasure between the post and the
    // button does not outrank it), with the post's page, IP, user agent and time as its source,
    // then confirmed by this request.
    let mut posted = signup.source.clone();
    posted.recording_reference = Some(format!(
        "{}, posted {}",
        posted
            .recording_reference
            .as_deref()
            .unwrap_or("sign-up form"),
        signup
            .created_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    ));
    for topic in &signup.topics {
        let given = EventKind::ConsentGiven {
            channel: Channel::Email,
            topic: topic.clone().into(),
            method: ConsentMethod::WebForm,
            wording: form.wording.clone(),
            third_parties: Vec::new(),
        };
        let confirmed = EventKind::ConsentConfirmed {
            channel: Channel::Email,
            topic: topic.clone().into(),
        };
        for (kind, at, source) in [(&given, now, &posted), (&confirmed, now, &source)] {
            let entry = NewEntry {
                contact_id: signup.contact_id,
                at,
                kind,
                external_id: None,
                source: Some(source),
                recorded_by: actor.reference(),
                imported: false,
            };
            ledger.append(&entry, now).await?;
        }
    }
    tx.commit().await?;
    Ok(Confirmed::Now {
        topics: signup.topics.len(),
    })
}

/// Activates the contact a sign-up made (if it is still inactive), with its history.
async fn activate(
    tx: &mut store::WriteTx,
    actor: &Actor,
    contact_id: Uuid,
    now: DateTime<Utc>,
) -> ServiceResult<()> {
    let Some(contact) = store::contacts::get(tx, contact_id).await? else {
        return Err(ServiceError::NotFound("confirmation link"));
    };
    if contact.active {
        return Ok(());
    }
    if contact.version != 1 {
        // Deactivated by staff since it was made: not switched back on by a link.
        return Err(ServiceError::NotFound("confirmation link"));
    }
    let change = store::contacts::ContactChange::Active(true);
    match store::contacts::update(tx, &contact, contact.version, change, actor.reference(), now)
        .await?
    {
        store::Updated::Saved(_) => Ok(()),
        store::Updated::Stale(_) => Err(ServiceError::Conflict(
            "Someone else changed this contact at the same moment, so nothing was recorded. Try again.",
        )),
    }
}

/// Sends a fresh confirmation for the expired link of `token` (its topics, to its address, a new
/// link), unless one sent in the last [`Settings::mail_interval`] is still pending.
pub async fn resend(db: &Db, settings: &Settings, token: &str) -> ServiceResult<bool> {
    let (old, form) = pending(db, token).await?;
    let now = clock::now();
    if old.confirmed_at.is_some() || old.expires_at > now {
        return Ok(false);
    }
    let signup_id = Uuid::now_v7();
    let actor = Actor::DataSubject(DataSubject {
        contact_id: old.contact_id,
        token_id: old.outbox_id,
    });
    let mut tx = db.begin().await?;
    store::signups::lock_address(&mut tx, &old.address_key).await?;
    if store::signups::pending_since(&mut tx, &old.address_key, now - settings.mail_interval)
        .await?
    {
        return Ok(false);
    }
    // The same sign-up (its topics, its post's time and source), with a new link.
    let signup = Signup {
        id: signup_id,
        outbox_id: Uuid::now_v7(),
        mailed_at: now,
        expires_at: now + settings.confirm_for,
        confirmed_at: None,
        receipt_outbox_id: None,
        ..old
    };
    queue_confirmation(&mut tx, settings, &form, &signup, now).await?;
    store::audit::append(
        &mut tx,
        &actor
            .audit(Action::SignupLinkResent)
            .on(ObjectKind::Contact, signup.contact_id)
            .on(ObjectKind::SignupForm, form.id),
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// What the messages of a step of a standing campaign answer (sign-ups, data requests): by
/// outbox row, the address each goes to, the page its link opens, and what each receipt states.
#[derive(Debug, Default)]
pub struct Answered {
    /// (outbox id, address, the path of the page its button is on: `c` to confirm a sign-up,
    /// `v` to verify a data request, none for a receipt), by outbox id.
    rows: Vec<(Uuid, String, Option<&'static str>)>,
    /// (outbox id, what the receipt states), by outbox id.
    receipts: Vec<(Uuid, ConsentValues)>,
    /// The messages (by outbox id, sorted) sent even to an inactive contact: confirmations to the
    /// contact their sign-up made (inactive until confirmed), and data request verifications.
    waiting: Vec<Uuid>,
}

impl Answered {
    /// The address the message `outbox_id` goes to: the one the person gave.
    pub fn address(&self, outbox_id: Uuid) -> Option<&str> {
        self.find(outbox_id).map(|(_, address, _)| address.as_str())
    }

    /// The path of the page the message's link opens (`c`, `v`), if it has one.
    pub fn link_path(&self, outbox_id: Uuid) -> Option<&'static str> {
        self.find(outbox_id).and_then(|(_, _, path)| *path)
    }

    /// Whether the message `outbox_id` is sent even to an inactive contact (as an individual): a
    /// confirmation to the contact its sign-up made, or a data request's verification.
    pub fn sent_if_inactive(&self, outbox_id: Uuid) -> bool {
        self.waiting.binary_search(&outbox_id).is_ok()
    }

    /// What the receipt `outbox_id` states, if it is one.
    pub fn receipt(&self, outbox_id: Uuid) -> Option<&ConsentValues> {
        self.receipts
            .binary_search_by_key(&outbox_id, |(id, _)| *id)
            .ok()
            .map(|i| &self.receipts[i].1)
    }

    fn find(&self, outbox_id: Uuid) -> Option<&(Uuid, String, Option<&'static str>)> {
        self.rows
            .binary_search_by_key(&outbox_id, |(id, _, _)| *id)
            .ok()
            .map(|i| &self.rows[i])
    }
}

/// What the messages `rows` (outbox id, contact) of the standing campaign `campaign_id` answer.
/// A message to an address flagged as bouncing (for any contact) has no address
/// ([`Answered::address`]).
pub async fn answered(
    db: &Db,
    campaign_id: Uuid,
    rows: &[(Uuid, Uuid)],
) -> ServiceResult<Answered> {
    let outbox_ids: Vec<Uuid> = rows.iter().map(|(id, _)| *id).collect();
    let (signups, requests, form, catalogue) = futures_util::try_join!(
        store::signups::for_messages(db, &outbox_ids),
        store::data_requests::addresses(db, &outbox_ids),
        store::signups::form_by_campaign(db, campaign_id),
        store::topics::in_force(db)
    )?;
    let outbox_ids = &outbox_ids;
    let mut answered = Answered::default();
    for (outbox_id, address) in requests {
        answered.rows.push((outbox_id, address, Some("v")));
        // A reply to what the person asked: their contact may be deactivated, its data is held.
        answered.waiting.push(outbox_id);
    }
    for signup in signups {
        if outbox_ids.contains(&signup.outbox_id) {
            answered
                .rows
                .push((signup.outbox_id, signup.address.clone(), Some("c")));
            if signup.created_contact && signup.confirmed_at.is_none() {
                let contact = store::contacts::read(db, signup.contact_id).await?;
                if contact.is_some_and(|c| waiting(&signup, &c)) {
                    answered.waiting.push(signup.outbox_id);
                }
            }
        }
        let Some(receipt) = signup
            .receipt_outbox_id
            .filter(|id| outbox_ids.contains(id))
        else {
            continue;
        };
        answered.rows.push((receipt, signup.address.clone(), None));
        if let Some(form) = &form {
            answered
                .receipts
                .push((receipt, receipt_values(&signup, form, &catalogue.topics)));
        }
    }
    // An address found to bounce is not written to again, whoever gives it.
    let keys: Vec<String> = answered
        .rows
        .iter()
        .map(|(_, address, _)| store::users::email_key(address))
        .collect();
    let bouncing = store::signups::bouncing(db, &keys).await?;
    answered
        .rows
        .retain(|(_, address, _)| !bouncing.contains(&store::users::email_key(address)));
    answered.rows.sort_unstable_by_key(|(id, _, _)| *id);
    answered.receipts.sort_unstable_by_key(|(id, _)| *id);
    answered.waiting.sort_unstable();
    Ok(answered)
}

/// What a confirmed sign-up's receipt states (the fields of ISO/IEC TS 27560 that apply; the
/// controller is the sender named in every email's footer).
fn receipt_values(signup: &Signup, form: &FormRow, catalogue: &[TopicEntry]) -> ConsentValues {
    let when = |at: DateTime<Utc>| at.format("%-d %B %Y at %H:%M UTC").to_string();
    let topics: Vec<String> = signup
        .topics
        .iter()
        .map(|key| named(catalogue, key).name)
        .collect();
    ConsentValues {
        receipt_id: signup.id.to_string(),
        address: signup.address.clone(),
        topics: topics.join(", "),
        wording: form.wording.clone(),
        given_at: when(signup.created_at),
        confirmed_at: signup.confirmed_at.map(when).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_site_is_taken_as_the_origin_a_browser_sends() {
        assert_eq!(
            origin("https://www.Harbour-Heating.example/").as_deref(),
            Some("https://www.harbour-heating.example")
        );
        assert_eq!(
            origin("http://127.0.0.1:8080").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        for bad in [
            "www.example.com",
            "ftp://example.com",
            "https://example.com/signup",
            "https://user@example.com",
            "https://example.com:http",
            "https://",
            "http://[::1]:8080",
        ] {
            assert_eq!(origin(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_templates_have_a_subject_and_a_body_with_their_fields() {
        use crate::template::{MergeField, Template};
        for (template, needs) in [
            (CONFIRMATION, vec![MergeField::ConfirmUrl]),
            (
                RECEIPT,
                vec![
                    MergeField::ReceiptId,
                    MergeField::ConsentAddress,
                    MergeField::ConsentTopics,
                    MergeField::ConsentWording,
                    MergeField::ConsentGivenAt,
                    MergeField::ConsentConfirmedAt,
                    MergeField::PreferencesUrl,
                ],
            ),
        ] {
            let (subject, body) = split_template(template);
            assert!(!subject.is_empty() && !subject.contains('\n'), "{subject}");
            let body = Template::parse(body).unwrap();
            for field in needs {
                assert!(body.uses(field), "{}", field.name());
            }
        }
    }
}
