//! The send worker: it works through the outbox of every campaign that is sending, a step (half
//! of `send_batch`) at a time, acting as the system's `sender` job.
//!
//! For each step, in one transaction: pick the due rows, decide each recipient again (the ledger
//! and the policy as they are now), write each decision's warrant to the campaign's chain in the
//! communication log, end the refused and the unsendable rows as `not_sent` and claim the rest
//! under a lease naming this worker. Then, outside any transaction, hand each allowed message to
//! the outlet and write that row's end as soon as the relay has answered: a row's state is its
//! checkpoint, written after the reply. The next step is prepared while one is handed over. A
//! worker killed in between leaves rows `claimed`; when their lease runs out they become
//! `indeterminate` (they may have been sent) and are never sent again on their own. So a crash
//! duplicates nothing and loses nothing, and leaves at most `send_batch` rows (two steps)
//! indeterminate.
//!
//! An opt-out that commits before a step's decision began stops that person's message: the
//! decision is made just before the hand-over, never at approval.

use std::sync::Arc;
use std::time::Duration;

use assent_engine::compact::CopiedLedger;
use assent_engine::{decide, CompiledPolicy};
use assent_shared::api::{Campaign, CampaignTestSend, RenderedMessage};
use assent_shared::domain::{CampaignState, OutboxState, SystemJob};
use assent_shared::ledger::{Channel, MessageKind, Subject};
use futures_util::StreamExt;
use uuid::Uuid;

use super::campaigns::{Links, Rules, Templates};
use super::{Actor, ServiceResult};
use crate::api::Mail;
use crate::audit::{Action, ObjectKind};
use crate::clock;
use crate::mail::{compose, Delivery, Email, Mailto, Unsubscribe};
use crate::sms::TextMessage;
use crate::store::contacts::AddressFlag;
use crate::store::outbox::{self, Claimed, Warrant};
use crate::store::{self, ledger::Ledgers, Db};

/// How the worker runs.
#[derive(Debug, Clone)]
pub struct Worker {
    /// Names the worker in its leases: unique per process.
    pub name: String,
    /// The most recipients in flight: claimed in steps of half, one prepared while the one
    /// before it is handed over.
    pub batch: i64,
    /// How long a claim lasts before its rows count as indeterminate.
    pub lease: chrono::Duration,
    /// Where unsubscribe links point (the public pages), without a trailing slash.
    pub public_url: String,
    /// How long to wait when there is nothing to send.
    pub idle: Duration,
    /// The rate limit of each channel that has one.
    pub mail_pace: Option<Arc<Pace>>,
    pub sms_pace: Option<Arc<Pace>>,
}

/// A rate limit: at most `per_second` hand-overs a second, spread evenly (each waits for its
/// slot), shared by every batch of the worker.
#[derive(Debug)]
pub struct Pace {
    interval: Duration,
    next: tokio::sync::Mutex<tokio::time::Instant>,
}

impl Pace {
    pub fn per_second(per_second: u32) -> Pace {
        Pace {
            interval: Duration::from_secs(1) / per_second.max(1),
            next: tokio::sync::Mutex::new(tokio::time::Instant::now()),
        }
    }

    /// Waits for the next free slot.
    pub async fn wait(&self) {
        let slot = {
            let mut next = self.next.lock().await;
            let slot = (*next).max(tokio::time::Instant::now());
            *next = slot + self.interval;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

/// A row the relay did not take for now is tried again this many times, waiting longer each time.
const MAX_ATTEMPTS: i64 = 6;

/// The wait before attempt `attempts + 1`: 1, 5, 15, 60, 240 minutes.
fn backoff(attempts: i64) -> chrono::Duration {
    let minutes = [1, 5, 15, 60, 240];
    chrono::Duration::minutes(minutes[(attempts.max(1) as usize - 1).min(minutes.len() - 1)])
}

/// Runs until `stop` turns true: marks expired leases indeterminate, then works the sending
/// campaigns in turn, a step at a time, waiting `idle` when there is nothing to do. A failure is
/// logged and the loop goes on.
///
/// A step is half of `send_batch`: one step is prepared (picked, decided, warranted, claimed and
/// rendered) while the one before it is handed over, so the database and the relay work at once
/// and no more than `send_batch` recipients are ever in flight. When `stop` turns, the step being
/// handed over is finished and the one prepared goes back to the queue untouched.
pub async fn run(
    db: Db,
    mail: Arc<Mail>,
    phrases: Arc<Vec<String>>,
    worker: Worker,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let rules = Rules {
        identity: &mail.settings.identity,
        marketing_phrases: &phrases,
        sms_takes_replies: mail.sms.from.takes_replies(),
    };
    // A batch of one cannot be halved: its steps take turns instead.
    let overlap = worker.batch >= 2;
    let step = (worker.batch / 2).max(1);
    // Expired leases are looked for at most every half lease (not every pass, which would be
    // a write every `idle` on an idle server): a crashed batch is shown indeterminate within
    // one and a half leases.
    let every = worker.lease.to_std().unwrap_or(Duration::from_secs(120)) / 2;
    let mut next_expiry = tokio::time::Instant::now();
    let mut turn = 0;
    let mut prepared: Option<Prepared> = None;
    loop {
        let stopping = *stop.borrow();
        if stopping && prepared.is_none() {
            break;
        }
        let expire = tokio::time::Instant::now() >= next_expiry;
        if expire {
            next_expiry = tokio::time::Instant::now() + every;
        }
        // The step prepared last time is handed over by a task of its own, so that composing
        // and signing its messages and preparing the next step use a core each. The task is
        // this loop's: if the worker is stopped short (aborted), so is the task.
        let hand = prepared.take().map(|step| {
            let (db, mail, worker, stop) = (db.clone(), mail.clone(), worker.clone(), stop.clone());
            HandOver(tokio::spawn(async move {
                let campaign = step.campaign.id;
                if let Err(e) = hand_over(&db, &mail, &worker, &stop, step).await {
                    tracing::error!(campaign = %campaign, error = %e, "handing over a step of the campaign failed");
                }
            }))
        });
        let handed = hand.is_some();
        let handed_over = |hand: Option<HandOver>| async move {
            if let Some(mut hand) = hand {
                if let Err(e) = (&mut hand.0).await {
                    tracing::error!(error = %e, "handing over a step stopped short: its rows not yet ended will be indeterminate");
                }
            }
        };
        let prepare = async {
            if stopping {
                return Ok(None);
            }
            next_step(&db, &rules, &worker, step, expire, &mut turn).await
        };
        let next = if overlap {
            let next = prepare.await;
            handed_over(hand).await;
            next
        } else {
            handed_over(hand).await;
            prepare.await
        };
        let worked = match next {
            Ok(next) => {
                prepared = next;
                prepared.is_some()
            }
            Err(e) => {
                tracing::error!(error = %e, "the send worker failed; it will try again");
                false
            }
        };
        if !worked && !handed && !stopping {
            tokio::select! {
                _ = tokio::time::sleep(worker.idle) => {}
                _ = stop.changed() => {}
            }
        }
    }
}

/// The task handing a step over, aborted when dropped: the worker that started it owns it.
struct HandOver(tokio::task::JoinHandle<()>);

impl Drop for HandOver {
    fn drop(&mut self) {
        // A task that has finished is not affected.
        self.0.abort();
    }
}

/// Expired leases (when `expire`), then the next step of the sending campaigns, taken in turn
/// (`turn` counts the steps prepared): the first campaign from there with rows to send.
async fn next_step(
    db: &Db,
    rules: &Rules<'_>,
    worker: &Worker,
    step: i64,
    expire: bool,
    turn: &mut usize,
) -> ServiceResult<Option<Prepared>> {
    let expired = if expire {
        outbox::expire_leases(db, clock::now()).await?
    } else {
        0
    };
    if expired > 0 {
        tracing::warn!(
            rows = expired,
            "outbox rows were claimed by a worker that stopped before it finished them: they are indeterminate and will not be sent again on their own"
        );
    }
    let sending = outbox::campaigns_in(db, CampaignState::Sending.as_str()).await?;
    for i in 0..sending.len() {
        let campaign_id = sending[(*turn + i) % sending.len()];
        // One campaign's failure (its claim rolled back) holds up no other.
        match prepare(db, rules, worker, step, campaign_id).await {
            Ok(Some(prepared)) => {
                *turn = (*turn + i + 1) % sending.len();
                return Ok(Some(prepared));
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(campaign = %campaign_id, error = %e, "a step of the campaign failed; it will be tried again")
            }
        }
    }
    Ok(None)
}

/// A step decided and committed: its allowed messages, rendered, to hand over.
struct Prepared {
    campaign: Campaign,
    /// When its rows were claimed, under a lease of `Worker::lease` from then.
    claimed_at: chrono::DateTime<chrono::Utc>,
    ready: Vec<Ready>,
}

/// Why a member deactivated (or gone) since approval is not sent: not decided, not sent.
const INACTIVE: &str = "contact_inactive";

/// A claimed row the engine allowed, ready to hand over.
struct Ready {
    row: Claimed,
    /// The campaign the message belongs to.
    message_campaign: Uuid,
    message: RenderedMessage,
    /// The recipient's one-click unsubscribe URL for this message.
    unsubscribe: String,
}

/// Picks up to `limit` due rows of the campaign, decides each recipient again, writes the
/// warrants, ends the refused and claims the rest in one transaction, then renders the allowed
/// messages. None when the campaign has nothing due (it is marked sent when nothing is left).
async fn prepare(
    db: &Db,
    rules: &Rules<'_>,
    worker: &Worker,
    limit: i64,
    campaign_id: Uuid,
) -> ServiceResult<Option<Prepared>> {
    let Some(campaign) = store::campaigns::get(db, campaign_id).await? else {
        return Ok(None);
    };
    if campaign.state != CampaignState::Sending {
        return Ok(None);
    }
    let actor = Actor::System(SystemJob::Sender);
    let now = clock::now();
    // A standing campaign waits for sign-ups most of the time: looked at without a write first.
    if campaign.standing && !outbox::has_due(db, campaign_id, now).await? {
        return Ok(None);
    }
    let mut tx = db.begin().await?;
    let claimed = outbox::pick(&mut tx, campaign_id, now, limit).await?;
    if claimed.is_empty() {
        drop(tx);
        finish_if_done(db, &actor, &campaign).await?;
        return Ok(None);
    }
    // The decision begins here, before the ledgers are read: an opt-out committed before this
    // moment is in what is read. The warrant names this moment; the engine weighs everything
    // read (it decides as of the end of the reading, below).
    let decided_at = clock::now();
    let ids: Vec<Uuid> = claimed.iter().map(|r| r.contact_id).collect();
    // Three reads, at once (on PostgreSQL each on a connection of its own).
    let read_ledgers = async {
        let mut ledgers: Vec<(Uuid, CopiedLedger)> = Vec::with_capacity(ids.len());
        store::ledger::visit(db, Ledgers::Of(&ids), None, |contact_id, ledger| {
            ledgers.push((contact_id, ledger()?));
            Ok(())
        })
        .await?;
        Ok::<_, store::StoreError>(ledgers)
    };
    let (listed, policy, ledgers) = futures_util::try_join!(
        store::contacts::audience_by_ids(db, &ids),
        store::policies::in_force(db, None),
        read_ledgers
    )?;
    let preferences_footer = policy.policy.service_preferences_link;
    let compiled = CompiledPolicy::new(policy.policy);
    let read_at = clock::now();
    let templates = Templates::parse(&campaign.content)?;
    let message = &campaign.content.message;
    let empty = CopiedLedger::default();
    // A standing campaign's message answers a sign-up or a data request: it goes to the address
    // the person gave (to a contact the sign-up made, inactive until confirmed, too), and a
    // receipt states what was consented to.
    let answered = if campaign.standing {
        let rows: Vec<(Uuid, Uuid)> = claimed.iter().map(|r| (r.id, r.contact_id)).collect();
        super::signups::answered(db, campaign_id, &rows).await?
    } else {
        super::signups::Answered::default()
    };
    let mut warrants = Vec::with_capacity(claimed.len());
    // The refused and the unsendable, ended together once the batch is decided.
    let mut not_sent: Vec<(Uuid, String)> = Vec::new();
    // The allowed rows, each with the index of its warrant.
    let mut allowed: Vec<(Claimed, usize)> = Vec::new();
    for row in claimed {
        let contact = row.contact_id;
        let kind = listed
            .active
            .binary_search_by_key(&contact, |(id, _)| *id)
            .ok()
            .map(|i| listed.active[i].1)
            .or_else(|| {
                answered
                    .sent_if_inactive(row.id)
                    .then_some(assent_shared::domain::SubscriberKind::Individual)
            });
        let ledger = ledgers
            .binary_search_by_key(&contact, |(id, _)| *id)
            .map_or(&empty, |i| &ledgers[i].1);
        let mut warrant = Warrant {
            id: Uuid::now_v7(),
            outbox_id: row.id,
            campaign_id,
            contact_id: contact,
            channel: message.channel.as_str().to_owned(),
            kind: message.kind.as_str().to_owned(),
            topic: message.topic.clone(),
            third_party: message.third_party.clone(),
            contact_point: None,
            message_id: row.message_id.clone(),
            allowed: false,
            basis: None,
            reasons: Vec::new(),
            evidence_seqs: Vec::new(),
            policy_version: policy.version,
            author_id: campaign.author_id,
            approver_id: campaign.decided_by,
            decided_at,
        };
        let Some(kind) = kind else {
            // Deactivated (or gone) since approval: not decided, not sent.
            warrant.reasons = vec![INACTIVE.into()];
            not_sent.push((row.id, INACTIVE.to_owned()));
            warrants.push(warrant);
            continue;
        };
        let subject = Subject {
            kind,
            named_person: true,
        };
        let decision = decide(&compiled, &subject, &ledger.events, message, read_at);
        warrant.allowed = decision.allowed;
        warrant.basis = decision.basis.map(|b| b.as_str().to_owned());
        warrant.reasons = decision
            .reasons
            .iter()
            .map(|r| r.as_str().to_owned())
            .collect();
        warrant.evidence_seqs = ledger.cited(&decision.evidence);
        if !decision.allowed {
            let outcome = warrant.reasons.first().cloned().unwrap_or_default();
            not_sent.push((row.id, outcome));
            warrants.push(warrant);
            continue;
        }
        allowed.push((row, warrants.len()));
        warrants.push(warrant);
    }
    // Where each allowed message goes is settled here, from the recipients read now; the message
    // is rendered once the transaction has committed, so that SQLite's one writer is not held
    // while CommonMark is turned to HTML.
    let allowed_ids: Vec<Uuid> = allowed.iter().map(|(row, _)| row.contact_id).collect();
    let mut recipients = store::contacts::recipients(db, &allowed_ids).await?;
    let listed = recipients.len();
    let mut addressed: Vec<(Claimed, usize)> = Vec::with_capacity(allowed.len());
    for (row, w) in allowed {
        let found = recipients[..listed]
            .binary_search_by_key(&row.contact_id, |r| r.id)
            .ok();
        let found = match found {
            Some(i) if campaign.standing => {
                match answered.address(row.id) {
                    Some(address) => {
                        let mut recipient = recipients[i].clone();
                        recipient.email = Some(address.to_owned());
                        recipients.push(recipient);
                        Some(recipients.len() - 1)
                    }
                    None => {
                        // The address given bounces (or the sign-up is gone): not sent.
                        let mut recipient = recipients[i].clone();
                        recipient.email = None;
                        recipient.email_flagged = true;
                        recipients.push(recipient);
                        Some(recipients.len() - 1)
                    }
                }
            }
            found => found,
        };
        match found.map(|i| (i, templates.address(&campaign.content, &recipients[i]))) {
            Some((i, Ok(to))) => {
                warrants[w].contact_point = Some(to);
                addressed.push((row, i));
            }
            Some((_, Err(why))) => not_sent.push((row.id, unsendable_outcome(&why))),
            None => not_sent.push((row.id, INACTIVE.to_owned())),
        }
    }
    // Each row picked is written once: the refused and the unsendable ended, the rest claimed.
    outbox::end_not_sent(&mut tx, &not_sent, now).await?;
    let claim: Vec<Uuid> = addressed.iter().map(|(row, _)| row.id).collect();
    outbox::claim(&mut tx, &claim, &worker.name, now + worker.lease, now).await?;
    outbox::append_warrants(&mut tx, campaign_id, &warrants).await?;
    // The ledgers read to decide are reads of personal data by the sender: one record a batch.
    let record = actor
        .audit_each(
            Action::RecipientsDecided,
            ObjectKind::Contact,
            warrants.iter().map(|w| w.contact_id),
        )
        .on(ObjectKind::Campaign, campaign_id);
    store::audit::append(&mut tx, &record).await?;
    tx.commit().await?;
    let mut ready = Vec::with_capacity(addressed.len());
    let mut unrendered = Vec::new();
    for (row, i) in addressed {
        let link = format!("{}/u/{}", worker.public_url, row.token);
        let preferences = format!("{}/p/{}", worker.public_url, row.token);
        let confirm = answered
            .link_path(row.id)
            .map(|path| format!("{}/{path}/{}", worker.public_url, row.token));
        let links = Links {
            unsubscribe: &link,
            preferences: &preferences,
            confirm: confirm.as_deref(),
            consent: answered.receipt(row.id),
            preferences_footer,
        };
        match templates.render(&campaign.content, rules, &recipients[i], links) {
            Ok(message) => ready.push(Ready {
                message_campaign: campaign_id,
                row,
                message,
                unsubscribe: link,
            }),
            // `address` found nothing to refuse, so this is not expected; the row still ends.
            Err(why) => unrendered.push((row.id, unsendable_outcome(&why))),
        }
    }
    if !unrendered.is_empty() {
        // The step is claimed: its messages go on even if these ends cannot be written (those
        // rows then stay claimed and become indeterminate, as a crash would leave them).
        let ended = async {
            let mut tx = db.begin().await?;
            outbox::end_not_sent(&mut tx, &unrendered, clock::now()).await?;
            tx.commit().await
        };
        if let Err(e) = ended.await {
            tracing::error!(campaign = %campaign_id, error = %e, "rows that could not be rendered cannot be ended: they will be indeterminate");
        }
    }
    Ok(Some(Prepared {
        campaign,
        claimed_at: now,
        ready,
    }))
}

/// How a row that cannot be sent ends: the reason, and the merge field when one is missing.
fn unsendable_outcome(why: &assent_shared::api::Unsendable) -> String {
    match &why.field {
        Some(field) => format!("{}:{field}", why.reason),
        None => why.reason.clone(),
    }
}

/// Marks a sending campaign sent once no row is queued or in flight.
async fn finish_if_done(db: &Db, actor: &Actor, campaign: &Campaign) -> ServiceResult<()> {
    if campaign.standing {
        // Never done: the next sign-up brings its next message.
        return Ok(());
    }
    let open = outbox::progress(db, campaign.id)
        .await?
        .iter()
        .any(|(state, count)| {
            *count > 0 && matches!(state, OutboxState::Queued | OutboxState::Claimed)
        });
    if open {
        return Ok(());
    }
    let mut tx = db.begin().await?;
    if store::campaigns::mark_sent(&mut tx, campaign.id, campaign.version, clock::now()).await? {
        store::audit::append(
            &mut tx,
            &actor
                .audit(Action::CampaignSent)
                .on(ObjectKind::Campaign, campaign.id),
        )
        .await?;
        tx.commit().await?;
        tracing::info!(campaign = %campaign.id, "campaign sent");
    }
    Ok(())
}

/// Hands each message over (as many at once as the relay has connections) and writes each row's
/// end as soon as its reply is known.
async fn hand_over(
    db: &Db,
    mail: &Mail,
    worker: &Worker,
    stop: &tokio::sync::watch::Receiver<bool>,
    step: Prepared,
) -> ServiceResult<()> {
    let campaign = &step.campaign;
    let Some(ready) = renewed(db, worker, step.claimed_at, step.ready).await else {
        return Ok(());
    };
    let channel = campaign.content.message.channel;
    let (at_once, pace) = match channel {
        Channel::Sms => (mail.sms_outlet.connections(), worker.sms_pace.as_deref()),
        _ => (
            mail.settings
                .relay
                .as_ref()
                .map_or(1, |r| r.connections.max(1)),
            worker.mail_pace.as_deref(),
        ),
    };
    let marketing = campaign.content.message.kind == MessageKind::Marketing;
    let identity = &mail.settings.identity;
    // The hand-overs run while their ends are written: each reply goes to the recorder, which
    // writes the accepted ones that have come since its last write in one statement (on
    // PostgreSQL a commit per message would bound the send), and every other end on its own.
    let (replies, mut to_record) = tokio::sync::mpsc::unbounded_channel::<(Ready, Delivery)>();
    let sending = async move {
        let mut results = futures_util::stream::iter(ready.into_iter().map(|ready| async move {
            // Stopping: what has not been handed over yet goes back to the queue untouched
            // (a rate limit can stretch a step well past the grace a stop gives), looked at
            // before and after waiting for the slot, so that a step prepared when the stop came
            // is put back at once.
            if *stop.borrow() {
                return (ready, None);
            }
            if let Some(pace) = pace {
                pace.wait().await;
            }
            if *stop.borrow() {
                return (ready, None);
            }
            let delivery = match channel {
                Channel::Sms => deliver_text(mail, &ready).await,
                _ => deliver(mail, identity, marketing, &ready).await,
            };
            (ready, Some(delivery))
        }))
        .buffer_unordered(at_once);
        while let Some((ready, delivery)) = results.next().await {
            match delivery {
                // The recorder ends only when this sender is dropped, so it is still receiving.
                Some(delivery) => {
                    let _ = replies.send((ready, delivery));
                }
                None => {
                    if let Err(e) = outbox::release(db, ready.row.id, &worker.name).await {
                        tracing::error!(row = %ready.row.id, error = %e, "a row not handed over cannot be put back: it will be indeterminate");
                    }
                }
            }
        }
    };
    let recording = async {
        while let Some(first) = to_record.recv().await {
            let mut accepted = Vec::new();
            let mut others = Vec::new();
            let mut next = Some(first);
            while let Some((ready, delivery)) = next.take() {
                if delivery == Delivery::Accepted {
                    accepted.push(ready);
                } else {
                    others.push((ready, delivery));
                }
                if accepted.len() + others.len() < ACCEPTED_AT_ONCE {
                    next = to_record.try_recv().ok();
                }
            }
            record_accepted(db, &worker.name, &accepted).await;
            for (ready, delivery) in others {
                // A row whose end cannot be written stays claimed and becomes indeterminate:
                // the rest of the batch is still recorded.
                match record(db, &worker.name, channel, &ready, delivery).await {
                    Ok(true) => {}
                    Ok(false) => tracing::warn!(
                        row = %ready.row.id,
                        "an outbox row was no longer this worker's when its result came (its lease ran out)"
                    ),
                    Err(e) => tracing::error!(
                        row = %ready.row.id,
                        error = %e,
                        "the result of a message cannot be written: its row will be indeterminate"
                    ),
                }
            }
        }
    };
    tokio::join!(sending, recording);
    Ok(())
}

/// The rows of a step still this worker's to hand over. A step waits for the one before it to be
/// handed over; if a slow relay made it wait a quarter of its lease, the lease is renewed first,
/// and a row whose lease ran out meanwhile is not handed over (it is, or is about to be,
/// indeterminate). None when the lease cannot be renewed: the rows are put back in the queue
/// (those that cannot be will be indeterminate), never handed over on a lease that may be gone.
async fn renewed(
    db: &Db,
    worker: &Worker,
    claimed_at: chrono::DateTime<chrono::Utc>,
    ready: Vec<Ready>,
) -> Option<Vec<Ready>> {
    let now = clock::now();
    if ready.is_empty() || now - claimed_at < worker.lease / 4 {
        return Some(ready);
    }
    let ids: Vec<Uuid> = ready.iter().map(|r| r.row.id).collect();
    // Tried twice: on SQLite the writer may be held by the next step's preparation.
    let renewal = match outbox::renew(db, &ids, &worker.name, now, now + worker.lease).await {
        Err(e) => {
            tracing::warn!(error = %e, "renewing the lease of a step failed; trying once more");
            outbox::renew(
                db,
                &ids,
                &worker.name,
                clock::now(),
                clock::now() + worker.lease,
            )
            .await
        }
        renewed => renewed,
    };
    let held = match renewal {
        Ok(held) => held,
        Err(e) => {
            tracing::error!(error = %e, rows = ids.len(), "the lease of a step cannot be renewed: its rows go back to the queue unsent");
            for id in ids {
                if let Err(e) = outbox::release(db, id, &worker.name).await {
                    tracing::error!(row = %id, error = %e, "a row not handed over cannot be put back: it will be indeterminate");
                }
            }
            return None;
        }
    };
    let (kept, lost): (Vec<Ready>, Vec<Ready>) = ready
        .into_iter()
        .partition(|r| held.binary_search(&r.row.id).is_ok());
    if !lost.is_empty() {
        tracing::warn!(
            rows = lost.len(),
            "rows of a step waiting to be handed over were no longer this worker's (their lease ran out): they are indeterminate and were not sent"
        );
    }
    Some(kept)
}

/// The most accepted messages whose ends are written in one statement.
const ACCEPTED_AT_ONCE: usize = 200;

/// Writes the ends of messages the relay (or gateway) took: `sent`, with the address or number
/// used. A row whose end cannot be written stays claimed and becomes indeterminate.
async fn record_accepted(db: &Db, owner: &str, accepted: &[Ready]) {
    if accepted.is_empty() {
        return;
    }
    let rows: Vec<(Uuid, &str)> = accepted
        .iter()
        .map(|r| (r.row.id, r.message.to.as_str()))
        .collect();
    // Tried twice: up to ACCEPTED_AT_ONCE rows ride on this write.
    let written = match outbox::end_sent(db, owner, &rows, clock::now()).await {
        Err(e) => {
            tracing::warn!(error = %e, "writing the ends of sent messages failed; trying once more");
            outbox::end_sent(db, owner, &rows, clock::now()).await
        }
        done => done,
    };
    match written {
        Ok(written) if written == rows.len() as u64 => {}
        Ok(written) => tracing::warn!(
            rows = rows.len() as u64 - written,
            "outbox rows were no longer this worker's when their results came (their lease ran out)"
        ),
        Err(e) => tracing::error!(
            rows = rows.len(),
            error = %e,
            "the results of messages cannot be written: their rows will be indeterminate"
        ),
    }
}

/// Writes the end of one handed-over row from where its conversation with the relay (or the SMS
/// gateway) ended.
async fn record(
    db: &Db,
    owner: &str,
    channel: Channel,
    ready: &Ready,
    delivery: Delivery,
) -> ServiceResult<bool> {
    let now = clock::now();
    let row = &ready.row;
    let to = Some(ready.message.to.as_str());
    let end = |state, outcome: String| async move {
        outbox::end(db, row.id, owner, state, &outcome, to, now).await
    };
    Ok(match delivery {
        Delivery::Accepted => end(OutboxState::Sent, outbox::ACCEPTED.into()).await?,
        // The mailbox (or the number) refused for good: it is flagged on the contact in the same
        // transaction, so that the next campaign uses the next one or leaves them out.
        Delivery::HardBounce { code, enhanced, .. } => {
            let reason = refusal("hard_bounce", code, enhanced.as_deref());
            let flag = AddressFlag {
                contact_id: row.contact_id,
                channel: channel.as_str(),
                address: &ready.message.to,
                reason: &reason,
                outbox_id: Some(row.id),
                at: now,
            };
            let record = Actor::System(SystemJob::Sender)
                .audit(Action::AddressFlagged)
                .on(ObjectKind::Contact, row.contact_id);
            outbox::end_bounced(db, owner, &flag, &record).await?
        }
        Delivery::Refused { code, enhanced, .. } => {
            let ended = end(
                OutboxState::Failed,
                refusal("refused", code, enhanced.as_deref()),
            )
            .await?;
            if channel == Channel::Sms
                && enhanced.as_deref() == Some(crate::sms::STOPPED_AT_GATEWAY)
            {
                stopped_at_gateway(db, ready).await?;
            }
            ended
        }
        Delivery::Deferred { code, .. } => {
            not_taken(db, owner, row, &format!("deferred:{code}"), now).await?
        }
        // The relay itself failed (no connection, TLS, a refused login, our sender refused):
        // the message was not taken and no address is at fault, so it is tried again later.
        Delivery::RelayFailed { stage, .. } => {
            let outcome = format!("relay_failed:{}", format!("{stage:?}").to_lowercase());
            not_taken(db, owner, row, &outcome, now).await?
        }
        Delivery::Unknown => {
            end(OutboxState::Indeterminate, "no_reply_after_message".into()).await?
        }
    })
}

/// The gateway says the number has stopped texts from this sender (its STOP, taken by the
/// gateway or the carrier, may never have reached Assent): recorded as the person's opt-out of
/// marketing by text, by the `sms_replies` job, so that no later campaign tries them again.
async fn stopped_at_gateway(db: &Db, ready: &Ready) -> ServiceResult<()> {
    let actor = Actor::System(SystemJob::SmsReplies);
    let stop = super::unsubscribe::Stop {
        actor: &actor,
        action: Action::Unsubscribed,
        contact_id: ready.row.contact_id,
        campaign_id: Some(ready.message_campaign),
        source: assent_shared::api::EventSource {
            recording_reference: Some(format!(
                "the SMS gateway refused message <{}>: the number has stopped texts from this sender (code {})",
                ready.row.message_id,
                crate::sms::STOPPED_AT_GATEWAY
            )),
            ..Default::default()
        },
    };
    let everything = super::unsubscribe::Scope {
        channel: Channel::Sms,
        topic: assent_shared::ledger::ALL_TOPICS.to_owned(),
        name: "everything".to_owned(),
    };
    super::unsubscribe::record(db, &stop, std::slice::from_ref(&everything)).await?;
    Ok(())
}

fn refusal(what: &str, code: u16, enhanced: Option<&str>) -> String {
    match enhanced {
        Some(enhanced) => format!("{what}:{code}:{enhanced}"),
        None => format!("{what}:{code}"),
    }
}

/// The relay did not take it for now: tried again later, or failed after the last attempt.
async fn not_taken(
    db: &Db,
    owner: &str,
    row: &Claimed,
    outcome: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> ServiceResult<bool> {
    Ok(if row.attempts >= MAX_ATTEMPTS {
        outbox::end(db, row.id, owner, OutboxState::Failed, outcome, None, now).await?
    } else {
        let at = now + backoff(row.attempts);
        outbox::retry_at(db, row.id, owner, at, outcome, now).await?
    })
}

/// Hands one text message to the SMS outlet.
async fn deliver_text(mail: &Mail, ready: &Ready) -> Delivery {
    let message = TextMessage {
        to: &ready.message.to,
        body: &ready.message.text,
        message_id: &ready.row.message_id,
    };
    mail.sms_outlet.hand_over(&mail.sms.from, &message).await
}

/// Composes one email and hands it to the outlet.
async fn deliver(
    mail: &Mail,
    identity: &crate::config::SenderIdentity,
    marketing: bool,
    ready: &Ready,
) -> Delivery {
    let failed = |problem: String| Delivery::RelayFailed {
        stage: crate::mail::Stage::Connect,
        problem,
    };
    let message = &ready.message;
    let Some((from, reply_to)) = sender_mailboxes(identity) else {
        return failed("the configured From address is not an address".into());
    };
    let Ok(to) = message.to.parse::<lettre::Address>() else {
        // A stored address that is not one: a refusal of that address, never a relay failure.
        return Delivery::Refused {
            stage: crate::mail::Stage::Rcpt,
            code: 553,
            enhanced: Some("5.1.3".into()),
        };
    };
    // Bounces come back to the return path tagged with the row's id, which names the message.
    let return_path = mail.settings.return_path.as_deref().and_then(|path| {
        let (local, domain) = path.split_once('@')?;
        Some(format!("{local}+{}@{domain}", ready.row.id.simple()))
    });
    // The mailbox's request names the message by its token, as the link does.
    let subject = format!(
        "{} {}",
        crate::service::unsubscribe::MAIL_SUBJECT,
        ready.row.token
    );
    let unsubscribe = marketing.then_some(Unsubscribe {
        https: &ready.unsubscribe,
        mailto: mail
            .settings
            .unsubscribe_mailto
            .as_deref()
            .map(|address| Mailto {
                address,
                subject: &subject,
            }),
    });
    let email = Email {
        message_id: &ready.row.message_id,
        from,
        reply_to,
        to: lettre::message::Mailbox::new(None, to),
        return_path: return_path.as_deref(),
        subject: message.subject.as_deref().unwrap_or_default(),
        text: &message.text,
        html: message.html.as_deref().unwrap_or_default(),
        unsubscribe,
        dkim: mail.settings.dkim.as_ref(),
    };
    match compose(&email) {
        Ok(composed) => mail.outlet.hand_over(&composed).await,
        Err(e) => failed(e.to_string()),
    }
}

/// The `From:` and `Reply-To:` of every email, from the sender's identity; none when the
/// configured From address is not an address.
fn sender_mailboxes(
    identity: &crate::config::SenderIdentity,
) -> Option<(lettre::message::Mailbox, Option<lettre::message::Mailbox>)> {
    let from = identity.from.parse::<lettre::Address>().ok()?;
    let reply_to = identity
        .reply_to
        .as_deref()
        .and_then(|r| r.parse::<lettre::Address>().ok())
        .map(|a| lettre::message::Mailbox::new(None, a));
    Some((
        lettre::message::Mailbox::new(identity.organisation.clone(), from),
        reply_to,
    ))
}

/// Sends the campaign, as its first sendable recipient would get it (the preview's sample: their
/// merge values, links that reach no one), to the actor's own address, through the same outlet
/// and signing as the send: the exact message, before anyone else gets it. Email only, before
/// the campaign sends (the author or a manager). Nothing is written to the outbox or the
/// communication log; the test is audited, naming the contact whose values it carried.
pub async fn test_send(
    db: &Db,
    actor: &Actor,
    rules: &Rules<'_>,
    mail: &Mail,
    id: Uuid,
) -> ServiceResult<CampaignTestSend> {
    let object = Some((ObjectKind::Campaign, id));
    super::access::require_any(db, actor, super::campaigns::AUTHOR_ROLES, object).await?;
    let staff = super::access::staff(db, actor, "sends a test").await?;
    let campaign = store::campaigns::get(db, id)
        .await?
        .ok_or(super::ServiceError::NotFound("campaign"))?;
    if campaign.author_id != staff.user.id && !actor.has(assent_shared::domain::Role::Manager) {
        let message = "Only the campaign's author or a manager may send it a test.".to_owned();
        return Err(super::access::refuse(db, actor, object, message).await);
    }
    if !matches!(
        campaign.state,
        CampaignState::Draft
            | CampaignState::Submitted
            | CampaignState::Approved
            | CampaignState::Rejected
    ) {
        return Err(super::ServiceError::WrongState(format!(
            "The campaign is {}: a test is sent before the campaign is.",
            campaign.state
        )));
    }
    if campaign.content.message.channel != Channel::Email {
        return Err(super::ServiceError::field(
            "message.channel",
            "a test is sent by email only: the preview shows the text message as it goes",
        ));
    }
    let Some(sample) = super::campaigns::first_sendable(db, actor, rules, &campaign).await? else {
        return Err(super::ServiceError::field(
            "audience",
            "nobody in the audience can be sent it now, so there is no message to test",
        ));
    };
    let Some((from, reply_to)) = sender_mailboxes(rules.identity) else {
        return Err(super::ServiceError::BadRequest(
            "the configured From address (mail_from) is not an address".into(),
        ));
    };
    let to = staff.user.email.parse::<lettre::Address>().map_err(|_| {
        super::ServiceError::field(
            "to",
            "your own address cannot take mail; ask an administrator to correct it",
        )
    })?;
    let message_id = format!(
        "test.{}.{}@{}",
        id.simple(),
        Uuid::now_v7().simple(),
        rules.identity.message_id_domain()
    );
    let subject = format!("[Test] {}", sample.subject.as_deref().unwrap_or_default());
    let marketing = campaign.content.message.kind == MessageKind::Marketing;
    let email = Email {
        message_id: &message_id,
        from,
        reply_to,
        to: lettre::message::Mailbox::new(None, to),
        return_path: None,
        subject: &subject,
        text: &sample.text,
        html: sample.html.as_deref().unwrap_or_default(),
        unsubscribe: marketing.then_some(Unsubscribe {
            https: super::campaigns::PREVIEW_LINK,
            mailto: None,
        }),
        dkim: mail.settings.dkim.as_ref(),
    };
    let composed = compose(&email).map_err(|e| super::ServiceError::BadRequest(e.to_string()))?;
    // Recorded before it goes: a test that went out is never missing from the trail.
    let record = actor
        .audit(Action::CampaignTestSent)
        .on(ObjectKind::Campaign, id)
        .on(ObjectKind::Contact, sample.contact_id);
    let mut tx = db.begin().await?;
    store::audit::append(&mut tx, &record).await?;
    tx.commit().await?;
    let delivery = mail.outlet.hand_over(&composed).await;
    Ok(CampaignTestSend {
        to: staff.user.email.clone(),
        message_id,
        delivered: matches!(delivery, Delivery::Accepted),
        outcome: in_words(&delivery),
    })
}

/// What the relay answered, for a person.
fn in_words(delivery: &Delivery) -> String {
    let code = |code: &u16, enhanced: &Option<String>| match enhanced {
        Some(enhanced) => format!("{code} {enhanced}"),
        None => code.to_string(),
    };
    match delivery {
        Delivery::Accepted => outbox::ACCEPTED.into(),
        Delivery::HardBounce {
            code: c, enhanced, ..
        } => {
            format!("your mailbox was refused ({})", code(c, enhanced))
        }
        Delivery::Refused {
            code: c, enhanced, ..
        } => {
            format!("the relay refused the message ({})", code(c, enhanced))
        }
        Delivery::Deferred { code, .. } => format!("the relay deferred it ({code}); try again"),
        Delivery::RelayFailed { stage, problem } => {
            format!("the relay failed ({stage:?}): {problem}")
        }
        Delivery::Unknown => "the relay did not answer after the message".into(),
    }
}
