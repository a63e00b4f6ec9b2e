//! Text messages (SMS) out through an HTTP gateway, and the people's replies in.
//!
//! The gateway's interface is the Twilio Messages API, the convention most gateways follow or
//! can be wrapped to (docs/CONFIGURATION.md, "Text messages"):
//!
//! - **Out:** `POST <sms_gateway_url>` with HTTP basic authentication (`sms_account`,
//!   `sms_auth_token`) and the form fields `To` (E.164), `From` (the sender id) and `Body`. A 2xx
//!   answer is a message the gateway took, with its id in the JSON field `sid`. A 4xx names the
//!   problem in the JSON field `code` (21211 and 21614: not a number a message can reach; 21610:
//!   the number has stopped messages from this sender at the gateway).
//! - **In:** the gateway POSTs each reply to `<public_url>/sms/inbound` as a form (`From`, `To`,
//!   `Body`, `MessageSid`), signed in `X-Twilio-Signature`: Base64 of HMAC-SHA1, keyed by the
//!   auth token, over the URL followed by every field's name and value in name order.
//!
//! Without a gateway, each text message is kept in the spool `data_dir/sms` (a maildir: one file
//! each, readable with a mail reader) and reaches no one; the server says so at start.

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, Mac};

use crate::config::Secret;
use crate::mail::{Delivery, MailError, Maildir, Stage};

/// Who a text message comes from: a number people can reply to, or an alphanumeric sender id
/// (a name such as `HarbourHeat`), which cannot take replies, so that a marketing message from
/// one must carry the unsubscribe link rather than "Reply STOP".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SenderId {
    Number(String),
    Alphanumeric(String),
}

impl SenderId {
    /// An E.164 number (`+447700900123`), or 1 to 11 letters, digits and spaces with at least one
    /// letter.
    pub fn parse(text: &str) -> Result<SenderId, String> {
        let text = text.trim();
        if let Some(digits) = text.strip_prefix('+') {
            if (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
                return Ok(SenderId::Number(text.to_owned()));
            }
        } else if (1..=11).contains(&text.len())
            && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b' ')
            && text.bytes().any(|b| b.is_ascii_alphabetic())
        {
            return Ok(SenderId::Alphanumeric(text.to_owned()));
        }
        Err(format!(
            "{text:?} is not a sender id: an E.164 number such as +447700900123, or up to 11 letters and digits such as HarbourHeat"
        ))
    }

    pub fn as_str(&self) -> &str {
        match self {
            SenderId::Number(n) | SenderId::Alphanumeric(n) => n,
        }
    }

    /// Whether people can reply to it (and so opt out with "STOP").
    pub fn takes_replies(&self) -> bool {
        matches!(self, SenderId::Number(_))
    }
}

/// The SMS gateway the organisation's text messages go through.
#[derive(Debug, Clone, PartialEq)]
pub struct Gateway {
    /// The Messages endpoint, https (http only on this machine).
    pub url: reqwest::Url,
    pub account: String,
    /// The password of basic authentication, and the key the gateway signs replies with.
    pub auth_token: Secret,
    /// The certificate authorities (PEM) the gateway's certificate is checked against instead of
    /// the system's.
    pub authorities: Option<std::path::PathBuf>,
    /// How long one request may take.
    pub timeout: Duration,
    /// At most this many requests at once.
    pub connections: usize,
}

/// Text messages out: the gateway (none: the spool `data_dir/sms`) and the sender id.
#[derive(Debug, Clone, PartialEq)]
pub struct SmsSettings {
    pub gateway: Option<Gateway>,
    pub from: SenderId,
    /// At most this many text messages handed over a second; absent: as fast as the gateway
    /// takes them.
    pub per_second: Option<u32>,
}

/// The sender id when none is configured.
pub const DEFAULT_SENDER: &str = "Assent";

impl Default for SmsSettings {
    fn default() -> Self {
        SmsSettings {
            gateway: None,
            from: SenderId::Alphanumeric(DEFAULT_SENDER.to_owned()),
            per_second: None,
        }
    }
}

/// One text message, ready to hand over.
#[derive(Debug, Clone)]
pub struct TextMessage<'a> {
    /// E.164.
    pub to: &'a str,
    pub body: &'a str,
    /// The message's id (derived from the campaign and the contact), kept with it in the spool.
    pub message_id: &'a str,
}

/// The gateway's error code for a number that has stopped texts from this sender (it replied
/// STOP to the gateway or its carrier): recorded as the person's opt-out.
pub const STOPPED_AT_GATEWAY: &str = "21610";

/// The gateway's error codes that say the number cannot be reached by text: a hard bounce.
const UNREACHABLE_NUMBER: &[i64] = &[21211, 21612, 21614];

/// The gateway's error codes that blame the account or the configuration, not the message: the
/// sender id is not one of the account's (21606), an unverified number on a trial account
/// (21608), the account suspended (20003, 20005).
const ACCOUNT_AT_FAULT: &[i64] = &[20003, 20005, 21606, 21608];

/// A gateway client.
pub struct GatewaySender {
    gateway: Gateway,
    client: reqwest::Client,
    from: String,
}

impl GatewaySender {
    pub fn new(gateway: Gateway, from: &SenderId) -> Result<Self, MailError> {
        let client = if gateway.url.scheme() == "https" {
            crate::outbound::client(gateway.authorities.as_deref(), gateway.timeout)
                .map_err(|e| MailError::Build(e.to_string()))?
        } else {
            // Plain http only to this machine (a gateway's local proxy); the configuration checks.
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(gateway.timeout)
                .build()
                .map_err(|e| MailError::Build(e.to_string()))?
        };
        Ok(Self {
            gateway,
            client,
            from: from.as_str().to_owned(),
        })
    }

    /// Posts `message` to the gateway; where the request ended.
    pub async fn send(&self, message: &TextMessage<'_>) -> Delivery {
        let form = [
            ("To", message.to),
            ("From", self.from.as_str()),
            ("Body", message.body),
        ];
        let answer = self
            .client
            .post(self.gateway.url.clone())
            .basic_auth(
                &self.gateway.account,
                Some(self.gateway.auth_token.expose()),
            )
            .form(&form)
            .send()
            .await;
        let answer = match answer {
            Ok(answer) => answer,
            // Not connected: nothing was sent, and no number is at fault.
            Err(e) if e.is_connect() => {
                return Delivery::RelayFailed {
                    stage: Stage::Connect,
                    problem: "the SMS gateway cannot be reached".into(),
                }
            }
            // The request went out and no answer came: the gateway may have taken it.
            Err(_) => return Delivery::Unknown,
        };
        let status = answer.status().as_u16();
        // The answer's body is the gateway's: only its `code` is kept (its message may quote
        // the number).
        let code = answer
            .json::<serde_json::Value>()
            .await
            .ok()
            .and_then(|body| body.get("code").and_then(serde_json::Value::as_i64));
        classify(status, code)
    }
}

/// Where a gateway's answer leaves the message.
fn classify(status: u16, code: Option<i64>) -> Delivery {
    let enhanced = code.map(|c| c.to_string());
    match status {
        200..=299 => Delivery::Accepted,
        401 | 403 => Delivery::RelayFailed {
            stage: Stage::Auth,
            problem: format!("the SMS gateway refused the account's credentials ({status})"),
        },
        // Not the gateway's Messages endpoint (a wrong URL or account), a redirect (not
        // followed), or the account at fault: no message was made, and no number is to blame.
        300..=399 | 404 | 405 => Delivery::RelayFailed {
            stage: Stage::Connect,
            problem: format!("the SMS gateway's address answered {status}: check sms_gateway_url and sms_account"),
        },
        400..=499 if code.is_some_and(|c| ACCOUNT_AT_FAULT.contains(&c)) => Delivery::RelayFailed {
            stage: Stage::Auth,
            problem: format!("the SMS gateway refused the account or its sender id ({status}, code {})", code.unwrap_or_default()),
        },
        // Too many requests, or the gateway unavailable for now: it did not take it.
        429 | 502..=504 => Delivery::Deferred {
            stage: Stage::Message,
            code: status,
        },
        400..=499 if code.is_some_and(|c| UNREACHABLE_NUMBER.contains(&c)) => {
            Delivery::HardBounce {
                stage: Stage::Rcpt,
                code: status,
                enhanced,
            }
        }
        400..=499 => Delivery::Refused {
            stage: Stage::Message,
            code: status,
            enhanced,
        },
        // A 500 may come after the gateway made the message: it may have been sent.
        _ => Delivery::Unknown,
    }
}

/// Where the sender hands its text messages: the gateway, or the spool.
pub enum SmsOutlet {
    Gateway(Box<GatewaySender>),
    Spool(Maildir),
}

impl SmsOutlet {
    /// The gateway of `settings`, or the spool `data_dir/sms` when none is configured.
    pub fn open(settings: &SmsSettings, data_dir: &Path) -> Result<Self, MailError> {
        Ok(match &settings.gateway {
            Some(gateway) => SmsOutlet::Gateway(Box::new(GatewaySender::new(
                gateway.clone(),
                &settings.from,
            )?)),
            None => SmsOutlet::Spool(Maildir::open(&data_dir.join("sms"))?),
        })
    }

    /// How many messages may be handed over at once.
    pub fn connections(&self) -> usize {
        match self {
            SmsOutlet::Gateway(sender) => sender.gateway.connections.max(1),
            SmsOutlet::Spool(_) => 1,
        }
    }

    /// Hands `message` over, from `from`. A spool that cannot be written is the outlet's own
    /// failure: nothing was kept, and no number is at fault.
    pub async fn hand_over(&self, from: &SenderId, message: &TextMessage<'_>) -> Delivery {
        match self {
            SmsOutlet::Gateway(sender) => sender.send(message).await,
            SmsOutlet::Spool(spool) => {
                let text = format!(
                    "From: {}\r\nTo: {}\r\nMessage-ID: <{}>\r\nContent-Type: text/plain; charset=utf-8\r\nX-Assent-Channel: sms\r\n\r\n{}\r\n",
                    from.as_str(),
                    message.to,
                    message.message_id,
                    message.body
                );
                match spool.keep(text.into_bytes()).await {
                    Ok(_) => Delivery::Accepted,
                    Err(e) => Delivery::RelayFailed {
                        stage: Stage::Connect,
                        problem: e.to_string(),
                    },
                }
            }
        }
    }

    /// Says at start where text messages go.
    pub fn announce(&self) {
        match self {
            SmsOutlet::Gateway(sender) => tracing::info!(
                gateway = %sender.gateway.url.host_str().unwrap_or_default(),
                "text messages go to the configured SMS gateway"
            ),
            SmsOutlet::Spool(spool) => tracing::warn!(
                spool = %spool.root().display(),
                "no SMS gateway is configured (sms_gateway_url): every text message is kept in this \
                 spool and reaches no one"
            ),
        }
    }
}

/// The MAC the gateway signs a request to `url` with the form `fields` with: HMAC-SHA1 keyed by
/// the auth token, over the URL and then each field's name and value, in name order.
fn mac_of(auth_token: &str, url: &str, fields: &[(String, String)]) -> Hmac<sha1::Sha1> {
    let mut sorted: Vec<&(String, String)> = fields.iter().collect();
    sorted.sort();
    // HMAC takes a key of any length, so this cannot fail.
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(auth_token.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    mac
}

/// The signature the gateway puts in `X-Twilio-Signature`: the Base64 of [`mac_of`].
pub fn signature(auth_token: &str, url: &str, fields: &[(String, String)]) -> String {
    let mac = mac_of(auth_token, url, fields);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Whether `given` is the signature of the request (compared in constant time).
pub fn signed(auth_token: &str, url: &str, fields: &[(String, String)], given: &str) -> bool {
    let Ok(given) = base64::engine::general_purpose::STANDARD.decode(given.trim()) else {
        return false;
    };
    mac_of(auth_token, url, fields).verify_slice(&given).is_ok()
}

/// What a reply asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// Stop every marketing text: `STOP` and its usual synonyms.
    Stop,
    /// Anything else (including `START`, which is no consent: a consent needs its wording).
    Other,
}

/// The words that stop messages, as gateways and carriers take them (the whole reply, in any
/// case, with spaces and punctuation around it).
const STOP_WORDS: &[&str] = &[
    "STOP",
    "STOPALL",
    "STOP ALL",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "OPTOUT",
    "OPT OUT",
    "REVOKE",
];

impl Reply {
    pub fn of(body: &str) -> Reply {
        let words: Vec<String> = body
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_uppercase)
            .collect();
        let whole = words.join(" ");
        if STOP_WORDS.contains(&whole.as_str()) {
            Reply::Stop
        } else {
            Reply::Other
        }
    }
}

#[cfg(any(test, feature = "test-support"))]
pub mod double;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sender_id_is_a_number_or_a_short_name() {
        assert_eq!(
            SenderId::parse("+447700900123"),
            Ok(SenderId::Number("+447700900123".into()))
        );
        assert_eq!(
            SenderId::parse("HarbourHeat"),
            Ok(SenderId::Alphanumeric("HarbourHeat".into()))
        );
        assert!(SenderId::parse("HarbourHeating").is_err(), "12 characters");
        assert!(SenderId::parse("12345").is_err(), "digits only: no letter");
        assert!(SenderId::parse("+44 7700").is_err());
        assert!(!SenderId::parse("Harbour").unwrap().takes_replies());
    }

    #[test]
    fn stop_and_its_synonyms_stop_and_nothing_else_does() {
        for stop in [
            "STOP",
            "stop",
            " Stop. ",
            "stop all",
            "Unsubscribe!",
            "END",
            "opt-out",
        ] {
            assert_eq!(Reply::of(stop), Reply::Stop, "{stop:?}");
        }
        for other in ["START", "Please don't stop", "stopped", "", "STOP IT NOW"] {
            assert_eq!(Reply::of(other), Reply::Other, "{other:?}");
        }
    }

    #[test]
    fn the_signature_is_twilios() {
        // The example of Twilio's request validation snippets (TwilioDevEd/api-snippets,
        // security/signature_validation): its token, URL, fields and signature.
        let fields: Vec<(String, String)> = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675310"),
            ("Digits", "1234"),
            ("From", "+14158675310"),
            ("To", "+18005551212"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let token = "12345";
        assert_eq!(
            signature(token, url, &fields),
            "GvWf1cFY/Q7PnoempGyD5oXAezc="
        );
        assert!(signed(token, url, &fields, "GvWf1cFY/Q7PnoempGyD5oXAezc="));
        assert!(!signed(
            "12346",
            url,
            &fields,
            "GvWf1cFY/Q7PnoempGyD5oXAezc="
        ));
        let mut changed = fields.clone();
        changed[2].1 = "1235".into();
        assert!(!signed(
            token,
            url,
            &changed,
            "GvWf1cFY/Q7PnoempGyD5oXAezc="
        ));
        assert!(!signed(token, url, &fields, "not base64!"));
    }

    #[test]
    fn the_gateways_answers_leave_the_message_where_they_say() {
        assert_eq!(classify(201, None), Delivery::Accepted);
        assert!(matches!(
            classify(400, Some(21211)),
            Delivery::HardBounce { code: 400, .. }
        ));
        assert!(matches!(
            classify(400, Some(21610)),
            Delivery::Refused { .. }
        ));
        assert!(matches!(
            classify(401, None),
            Delivery::RelayFailed {
                stage: Stage::Auth,
                ..
            }
        ));
        assert!(matches!(
            classify(429, None),
            Delivery::Deferred { code: 429, .. }
        ));
        assert!(matches!(
            classify(503, None),
            Delivery::Deferred { code: 503, .. }
        ));
        assert_eq!(classify(500, None), Delivery::Unknown);
        assert!(
            matches!(classify(404, None), Delivery::RelayFailed { .. }),
            "a wrong URL is ours"
        );
        assert!(matches!(classify(302, None), Delivery::RelayFailed { .. }));
        assert!(matches!(
            classify(400, Some(21606)),
            Delivery::RelayFailed {
                stage: Stage::Auth,
                ..
            }
        ));
    }
}
