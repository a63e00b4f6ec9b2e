//! A decision in plain words for a salesperson, citing the rule it rests on:
//! "Not allowed: this person opted out of marketing emails on 3 May 2026. PECR reg 22 / UK GDPR
//! Art. 21."

use assent_shared::ledger::{Basis, Channel, EventKind, LedgerEvent, Message, MessageKind, Reason};

use crate::Decision;

fn channel_words(channel: Channel) -> &'static str {
    match channel {
        Channel::Email => "marketing emails",
        Channel::Sms => "marketing texts",
        Channel::Phone => "marketing calls",
        Channel::AutomatedCall => "automated marketing calls",
        Channel::Post => "marketing by post",
        Channel::Fax => "marketing faxes",
        Channel::Any => "marketing",
    }
}

fn date(event: &LedgerEvent) -> String {
    event.at.format("%-d %B %Y").to_string()
}

/// The rule a basis rests on.
fn basis_rule(basis: Basis, channel: Channel) -> &'static str {
    match (basis, channel) {
        (Basis::Service, _) => "Service messages are not marketing (PECR reg 22 does not apply).",
        (Basis::Consent, Channel::Post) => "UK GDPR Art. 6(1)(a).",
        (Basis::Consent, Channel::Phone) => "PECR reg 21 / UK GDPR Art. 6(1)(a).",
        (Basis::Consent, Channel::AutomatedCall) => "PECR reg 19 / UK GDPR Art. 6(1)(a).",
        (Basis::Consent, Channel::Fax) => "PECR reg 20 / UK GDPR Art. 6(1)(a).",
        (Basis::Consent, _) => "PECR reg 22(2) / UK GDPR Art. 6(1)(a).",
        (Basis::SoftOptIn, _) => "PECR reg 22(3) (soft opt-in); every message must offer a way to opt out.",
        (Basis::Corporate, _) => "PECR reg 22 protects individual subscribers only; every message must still offer a way to opt out.",
        (Basis::LegitimateInterest, Channel::Phone) => "PECR reg 21 (number screened against the TPS/CTPS) / UK GDPR Art. 6(1)(f).",
        (Basis::LegitimateInterest, _) => "UK GDPR Art. 6(1)(f) (legitimate interests); the person may object at any time (Art. 21).",
    }
}

fn reason_words(
    reason: Reason,
    who: &str,
    message: &Message,
    cited: Option<&LedgerEvent>,
) -> String {
    let what = channel_words(message.channel);
    let on = cited
        .map(|e| format!(" on {}", date(e)))
        .unwrap_or_default();
    match reason {
        Reason::Suppressed => format!("{who}'s data was erased{on}; only a suppression entry remains, so nothing may be sent. UK GDPR Art. 17."),
        Reason::OptedOut => format!("{who} opted out of {what}{on} and has not opted in again since. PECR reg 22 / UK GDPR Art. 21."),
        Reason::PreferenceNone => format!("{who}'s preferred contact method is NONE (recorded{on}). UK GDPR Art. 21."),
        Reason::NoConsent => format!("{who} has not consented to {what} about {}. PECR reg 22(2).", message.topic),
        Reason::ConsentUnconfirmed => format!("{who}'s sign-up was never confirmed (double opt-in). UK GDPR Art. 7(1)."),
        Reason::ConsentExpired => format!("{who}'s consent is older than the policy allows. UK GDPR Art. 7(1)."),
        Reason::ConsentEvidenceInsufficient => format!("{who}'s consent was given on an unrecorded call: there is no evidence of it. UK GDPR Art. 7(1)."),
        Reason::SoftOptInNotSimilar => format!("{who} bought or asked about something, but nothing similar to {}. PECR reg 22(3)(b).", message.topic),
        Reason::SoftOptInNoRefusalOffered => format!("{who} was not offered a way to refuse marketing when their details were collected. PECR reg 22(3)(c)."),
        Reason::SoftOptInExpired => format!("{who}'s purchase or enquiry is too long ago for the soft opt-in. PECR reg 22(3)."),
        Reason::ThirdPartyNotConsented => format!(
            "{who} has not consented to marketing from {}, which was not named when they opted in. PECR reg 22(2).",
            message.third_party.as_deref().unwrap_or("this third party")
        ),
        Reason::TpsRegistered => format!("{who}'s number is registered with the TPS/CTPS (screened{on}). PECR reg 21(1)(b)."),
        Reason::TpsUnscreened => format!("{who}'s number has not been screened against the TPS/CTPS recently enough. PECR reg 21."),
    }
}

/// The decision as sentences. `who` names the person ("Jane Doe", or "This person").
pub fn explain(
    decision: &Decision,
    ledger: &[LedgerEvent],
    message: &Message,
    who: &str,
) -> String {
    let cited: Vec<&LedgerEvent> = decision
        .evidence
        .as_slice()
        .iter()
        .map(|&i| &ledger[i as usize])
        .collect();
    if decision.allowed {
        let basis = decision.basis.unwrap_or(Basis::Service);
        let ground = match (basis, cited.first()) {
            (Basis::Service, _) => "it is a service message".to_owned(),
            (Basis::Consent, Some(e)) => format!("{who} consented on {}", date(e)),
            (Basis::SoftOptIn, Some(e)) => {
                let what = match &e.kind {
                    EventKind::Sale { .. } => "bought",
                    EventKind::Negotiation { .. } => "asked about",
                    _ => "supported",
                };
                format!(
                    "{who} {what} something similar on {} and was offered a way to refuse",
                    date(e)
                )
            }
            (Basis::LegitimateInterest, Some(e)) => format!(
                "the number was screened on {} and is not registered",
                date(e)
            ),
            (Basis::LegitimateInterest, None) => format!(
                "{who} has not objected to {}",
                channel_words(message.channel)
            ),
            (Basis::Corporate, _) => "the address is a company's, not a named person's".to_owned(),
            (_, None) => basis.as_str().replace('_', " "),
        };
        let kind = if message.kind == MessageKind::Service {
            "message"
        } else {
            "marketing"
        };
        return format!(
            "Allowed: {ground}, so this {kind} may be sent. {}",
            basis_rule(basis, message.channel)
        );
    }
    let sentences: Vec<String> = decision
        .reasons
        .iter()
        .map(|reason| {
            let event = cited.iter().copied().find(|e| match reason {
                Reason::Suppressed => matches!(e.kind, EventKind::Erased),
                Reason::OptedOut => matches!(e.kind, EventKind::OptOut { .. }),
                Reason::PreferenceNone => matches!(e.kind, EventKind::PreferenceSet { .. }),
                Reason::TpsRegistered => matches!(e.kind, EventKind::TpsCheck { .. }),
                _ => false,
            });
            reason_words(reason, who, message, event)
        })
        .collect();
    format!("Not allowed: {}", sentences.join(" "))
}
