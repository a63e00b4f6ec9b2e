//! Email out: composing a message, and handing it to one SMTP relay or, when none is configured,
//! to a maildir in the data directory that a person can open with any mail reader (mail is
//! never dropped silently).
//!
//! The relay's conversation is driven one command at a time on pooled connections, so that each
//! refusal is known by where it came, which decides what the sender does with it:
//! - `250` after the message's end: [`Delivery::Accepted`];
//! - a permanent refusal of the recipient's mailbox, at RCPT or after the message's end:
//!   [`Delivery::HardBounce`], the address refused for good (the sender flags it, and the next
//!   campaign skips it). That is an enhanced status (RFC 3463) of `5.1.x` (bad address) or
//!   `5.2.1` (mailbox disabled), or, from a relay without enhanced codes, `550`, `551` or `553`
//!   at RCPT;
//! - any other permanent refusal at RCPT or after the message's end (`5.7.x` policy, spam or
//!   authentication of the message, `5.3.4` too big, a bare `554`): [`Delivery::Refused`], the
//!   message failed and no address is flagged (a relay that refuses a whole campaign for want of
//!   DKIM must not mark every recipient as bouncing);
//! - `4xx` at MAIL, RCPT, DATA or after the message's end, and `552` or `5.2.2` (mailbox full) at
//!   RCPT (RFC 5321 4.5.3.1.10): [`Delivery::Deferred`], not taken for now, so sending it again
//!   later is no duplicate;
//! - the relay's own failure (no connection, TLS, AUTH such as `535`, a refusal of our sender at
//!   MAIL or of DATA, no answer in time before the message): [`Delivery::RelayFailed`], which
//!   flags no one's address;
//! - the connection lost or silent after the message was handed over and before its reply:
//!   [`Delivery::Unknown`]. The relay may have taken it; the sender shows it as indeterminate and
//!   never sends it again on its own.
//!
//! Every step is bounded by [`Relay::timeout`], so a stalled relay cannot hold a connection, or
//! a caller's send, for ever. Replies are kept as their codes only (the basic and the enhanced
//! one): a relay's text often quotes the recipient's address, which must not reach the logs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::address::{Address, Envelope};
use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm,
    DkimSigningKey,
};
use lettre::message::header::{self, ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt, Rset};
use lettre::transport::smtp::extension::{ClientId, Extension, MailParameter};
use tokio::sync::{Mutex, Semaphore};

use crate::config::Secret;

/// How the connection to the relay is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// No TLS (a relay on the same machine or network only).
    Plain,
    /// STARTTLS after the greeting, required: a relay that does not offer it is not used.
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
}

/// The SMTP relay that takes the organisation's mail.
#[derive(Debug, Clone, PartialEq)]
pub struct Relay {
    pub host: String,
    pub port: u16,
    pub security: Security,
    /// User name and password for AUTH (PLAIN or LOGIN): only ever sent over TLS, or in plain to
    /// a relay on this machine (loopback).
    pub credentials: Option<(String, Secret)>,
    /// PEM certificates of the authorities that may sign the relay's certificate; the system's
    /// when none.
    pub authorities: Option<Vec<u8>>,
    /// The name this server gives in EHLO.
    pub hello_name: String,
    /// How long one step of the conversation may take (connecting, TLS, the greeting, AUTH,
    /// each command, the reply to the message's end).
    pub timeout: Duration,
    /// At most this many connections at once.
    pub connections: usize,
}

/// Where a message's conversation with the relay ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// The relay took the message.
    Accepted,
    /// The relay refused the recipient's mailbox for good.
    HardBounce {
        stage: Stage,
        code: u16,
        enhanced: Option<String>,
    },
    /// The relay refused this message for good, for a reason that is not the address.
    Refused {
        stage: Stage,
        code: u16,
        enhanced: Option<String>,
    },
    /// The relay did not take the message for now.
    Deferred { stage: Stage, code: u16 },
    /// The relay itself failed; the message was not taken and no address is at fault.
    RelayFailed { stage: Stage, problem: String },
    /// The connection was lost after the message was handed over: it may have been taken.
    Unknown,
}

/// A step of the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Connect,
    Auth,
    Mail,
    Rcpt,
    Data,
    /// The message itself, up to the relay's reply to its end.
    Message,
}

/// What is wrong with a message or the relay's settings, found before anything is sent.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("{0} is not an email address that can be sent to")]
    Address(&'static str),
    #[error("the message cannot be built: {0}")]
    Build(String),
    #[error("the relay's certificate authorities are not valid PEM certificates")]
    Authorities,
    #[error("TLS for the relay cannot be set up")]
    Tls,
    #[error("the relay's password would cross the network in plain: use STARTTLS or TLS, or a relay on this machine")]
    PlainCredentials,
    #[error("the unsubscribe {0} is not valid in a List-Unsubscribe header")]
    Unsubscribe(&'static str),
    #[error("the maildir {path} cannot be written: {source}")]
    Maildir {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The DKIM key messages are signed with (Ed25519, RFC 8463): its selector and domain, as its
/// public key is published in DNS (`<selector>._domainkey.<domain>`).
#[derive(Clone, PartialEq, Eq)]
pub struct DkimKey {
    pub selector: String,
    pub domain: String,
    /// The private key's 32 bytes, base64, as lettre's signer takes them.
    seed: crate::config::Secret,
    /// The public key's 32 bytes, base64: the `p=` of the DNS record.
    pub public: String,
}

impl std::fmt::Debug for DkimKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DkimKey({}._domainkey.{})", self.selector, self.domain)
    }
}

impl DkimKey {
    /// Reads a PKCS#8 PEM Ed25519 private key (`openssl genpkey -algorithm ed25519`, or
    /// `assent-server audit keygen`); the reason, in words, when it is not one.
    pub fn read(path: &Path, selector: &str, domain: &str) -> Result<DkimKey, String> {
        use ed25519_dalek::pkcs8::DecodePrivateKey;
        let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
        let key = ed25519_dalek::SigningKey::from_pkcs8_pem(&text)
            .map_err(|_| "is not a PKCS#8 PEM Ed25519 private key".to_owned())?;
        Ok(Self::from_key(&key, selector, domain))
    }

    pub fn from_key(key: &ed25519_dalek::SigningKey, selector: &str, domain: &str) -> DkimKey {
        use base64::Engine;
        let encode = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
        DkimKey {
            selector: selector.to_owned(),
            domain: domain.to_owned(),
            seed: crate::config::Secret::new(encode(&key.to_bytes())),
            public: encode(key.verifying_key().as_bytes()),
        }
    }

    /// The DNS TXT record that publishes the public key.
    pub fn dns_record(&self) -> String {
        format!("v=DKIM1; k=ed25519; p={}", self.public)
    }

    /// The signing configuration for a message with `headers` (relaxed/relaxed).
    fn config(&self, headers: Vec<HeaderName>) -> Result<DkimConfig, MailError> {
        let key = DkimSigningKey::new(self.seed.expose(), DkimSigningAlgorithm::Ed25519)
            .map_err(|_| MailError::Build("the DKIM key cannot be used".into()))?;
        Ok(DkimConfig::new(
            self.selector.clone(),
            self.domain.clone(),
            key,
            headers,
            DkimCanonicalization {
                header: DkimCanonicalizationType::Relaxed,
                body: DkimCanonicalizationType::Relaxed,
            },
        ))
    }
}

/// An email as the sender composes it: HTML with its plain-text part, and for marketing the
/// one-click unsubscribe of RFC 8058.
#[derive(Debug, Clone)]
pub struct Email<'a> {
    /// The Message-ID without its angle brackets: derived from (campaign, contact) by the
    /// sender, so that a duplicate is detectable downstream.
    pub message_id: &'a str,
    pub from: Mailbox,
    pub reply_to: Option<Mailbox>,
    pub to: Mailbox,
    /// The envelope sender bounces go to, when it is not the `From:` address.
    pub return_path: Option<&'a str>,
    pub subject: &'a str,
    pub text: &'a str,
    pub html: &'a str,
    pub unsubscribe: Option<Unsubscribe<'a>>,
    /// Signs the message when a key is configured.
    pub dkim: Option<&'a DkimKey>,
}

/// The unsubscribe addresses of a marketing message (RFC 2369 and RFC 8058). Receivers honour
/// the one-click POST only when a DKIM signature covers both headers (RFC 8058 section 4); DKIM
/// signing is a later part of the sender.
#[derive(Debug, Clone, Copy)]
pub struct Unsubscribe<'a> {
    /// The https URL that takes the one-click POST.
    pub https: &'a str,
    /// The mailbox that takes unsubscribe requests by email, if the organisation has one.
    pub mailto: Option<Mailto<'a>>,
}

/// A `mailto:` unsubscribe: the mailbox, and the subject the request carries (which names the
/// message, so that the request can be matched to it when it is forwarded back).
#[derive(Debug, Clone, Copy)]
pub struct Mailto<'a> {
    pub address: &'a str,
    /// Letters, digits, `-`, `_` and spaces only (written `%20` in the URL).
    pub subject: &'a str,
}

/// A message ready to hand over: its envelope and its bytes.
#[derive(Debug, Clone)]
pub struct Composed {
    pub envelope: Envelope,
    pub bytes: Vec<u8>,
}

/// Builds `email` (headers encoded, the HTML and plain-text parts as alternatives).
pub fn compose(email: &Email<'_>) -> Result<Composed, MailError> {
    let mut builder = lettre::Message::builder()
        .message_id(Some(format!("<{}>", email.message_id)))
        .from(email.from.clone())
        .to(email.to.clone())
        .subject(email.subject)
        .date_now();
    if let Some(reply_to) = &email.reply_to {
        builder = builder.reply_to(reply_to.clone());
    }
    if let Some(unsubscribe) = email.unsubscribe {
        check_unsubscribe(unsubscribe)?;
        let addresses = match unsubscribe.mailto {
            Some(mailto) => format!(
                "<{}>, <mailto:{}?subject={}>",
                unsubscribe.https,
                mailto.address,
                mailto.subject.replace(' ', "%20")
            ),
            None => format!("<{}>", unsubscribe.https),
        };
        builder = builder
            .header(ListUnsubscribe(addresses))
            .header(ListUnsubscribePost);
    }
    let body = MultiPart::alternative()
        .singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_PLAIN)
                .body(email.text.to_owned()),
        )
        .singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_HTML)
                .body(email.html.to_owned()),
        );
    let mut message = builder
        .multipart(body)
        .map_err(|e| MailError::Build(e.to_string()))?;
    if let Some(key) = email.dkim {
        // lettre's default list leaves out List-Unsubscribe and List-Unsubscribe-Post, which a
        // receiver needs signed to honour the one-click POST (RFC 8058 section 4). The MIME
        // headers are not among them: lettre's signer does not see those of a multipart body,
        // so a signature naming them would not verify.
        let mut signed: Vec<&str> = vec!["From", "To", "Subject", "Date", "Message-ID"];
        if email.reply_to.is_some() {
            signed.push("Reply-To");
        }
        if email.unsubscribe.is_some() {
            signed.extend(["List-Unsubscribe", "List-Unsubscribe-Post"]);
        }
        let headers = signed
            .into_iter()
            .map(HeaderName::new_from_ascii_str)
            .collect();
        message.sign(&key.config(headers)?);
    }
    let bytes = message.formatted();
    // Headers are encoded (RFC 2047) and bodies quoted-printable or base64, so the message is
    // 7-bit and needs no 8BITMIME from the relay.
    debug_assert!(bytes.is_ascii(), "a composed message is 7-bit");
    let envelope = match email.return_path {
        Some(path) => {
            let path: Address = path
                .parse()
                .map_err(|_| MailError::Build("the return path is not an address".into()))?;
            Envelope::new(Some(path), message.envelope().to().to_vec())
                .map_err(|e| MailError::Build(e.to_string()))?
        }
        None => message.envelope().clone(),
    };
    Ok(Composed { envelope, bytes })
}

/// The unsubscribe URL must be https and the mailto an address, each printable ASCII without
/// what would end its `<...>` or the list (RFC 2369): anything else would be encoded or cut, and
/// the link would not work.
fn check_unsubscribe(unsubscribe: Unsubscribe<'_>) -> Result<(), MailError> {
    let plain = |text: &str| {
        text.bytes()
            .all(|b| b.is_ascii_graphic() && !b"<>,\"".contains(&b))
    };
    let https = unsubscribe.https;
    if !https.starts_with("https://") || https.len() <= "https://".len() || !plain(https) {
        return Err(MailError::Unsubscribe("URL"));
    }
    if let Some(mailto) = unsubscribe.mailto {
        if !plain(mailto.address) || mailto.address.parse::<Address>().is_err() {
            return Err(MailError::Unsubscribe("mailbox"));
        }
        let word = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == ' ';
        if !mailto.subject.chars().all(word) {
            return Err(MailError::Unsubscribe("mailbox's subject"));
        }
    }
    Ok(())
}

/// `List-Unsubscribe` (RFC 2369): the https URL first, then the mailto.
#[derive(Debug, Clone)]
struct ListUnsubscribe(String);

impl header::Header for ListUnsubscribe {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe")
    }
    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self(s.to_owned()))
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058).
#[derive(Debug, Clone)]
struct ListUnsubscribePost;

impl header::Header for ListUnsubscribePost {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe-Post")
    }
    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self)
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "List-Unsubscribe=One-Click".to_owned())
    }
}

/// Parses an address a message is sent from or to; `what` names it in the error.
pub fn address(text: &str, what: &'static str) -> Result<Address, MailError> {
    text.parse().map_err(|_| MailError::Address(what))
}

/// The relay's connections: idle ones kept for the next message, at most
/// [`Relay::connections`] in use at once.
pub struct SmtpSender {
    relay: Relay,
    tls: Option<TlsParameters>,
    idle: Mutex<Vec<AsyncSmtpConnection>>,
    in_use: Semaphore,
}

impl SmtpSender {
    pub fn new(relay: Relay) -> Result<Self, MailError> {
        if relay.security == Security::Plain
            && relay.credentials.is_some()
            && !on_loopback(&relay.host)
        {
            return Err(MailError::PlainCredentials);
        }
        let tls = match relay.security {
            Security::Plain => None,
            Security::StartTls | Security::Tls => {
                let mut builder = TlsParameters::builder(relay.host.clone());
                if let Some(pem) = &relay.authorities {
                    builder = builder
                        .certificate_store(lettre::transport::smtp::client::CertificateStore::None);
                    for cert in pem_certificates(pem)? {
                        builder = builder.add_root_certificate(cert);
                    }
                }
                Some(builder.build_rustls().map_err(|_| MailError::Tls)?)
            }
        };
        let in_use = Semaphore::new(relay.connections.max(1));
        Ok(Self {
            relay,
            tls,
            idle: Mutex::new(Vec::new()),
            in_use,
        })
    }

    /// Hands `message` to the relay and says where the conversation ended.
    pub async fn send(&self, message: &Composed) -> Delivery {
        // The semaphore is never closed, so acquiring fails only if it were.
        let Ok(_permit) = self.in_use.acquire().await else {
            return Delivery::RelayFailed {
                stage: Stage::Connect,
                problem: "the sender is shutting down".into(),
            };
        };
        let mut conn = match self.idle_connection().await {
            Some(conn) => conn,
            None => match self.connect().await {
                Ok(conn) => conn,
                Err(failed) => return failed,
            },
        };
        let delivery = converse(&mut conn, message, self.relay.timeout).await;
        let reusable = match &delivery {
            Delivery::Accepted => true,
            Delivery::HardBounce { .. } | Delivery::Refused { .. } | Delivery::Deferred { .. } => {
                matches!(
                    step(self.relay.timeout, conn.command(Rset)).await,
                    Ok(Ok(_))
                )
            }
            Delivery::RelayFailed { .. } | Delivery::Unknown => false,
        };
        if reusable {
            self.idle.lock().await.push(conn);
        } else {
            discard(&mut conn, self.relay.timeout).await;
        }
        delivery
    }

    /// Closes the idle connections politely.
    pub async fn close(&self) {
        for mut conn in self.idle.lock().await.drain(..) {
            let _ = step(self.relay.timeout, conn.quit()).await;
        }
    }

    async fn idle_connection(&self) -> Option<AsyncSmtpConnection> {
        loop {
            let mut conn = self.idle.lock().await.pop()?;
            if matches!(
                step(self.relay.timeout, conn.test_connected()).await,
                Ok(true)
            ) {
                return Some(conn);
            }
            discard(&mut conn, self.relay.timeout).await;
        }
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, Delivery> {
        let relay = &self.relay;
        let failed = |stage, problem: String| Delivery::RelayFailed { stage, problem };
        let hello = ClientId::Domain(relay.hello_name.clone());
        let implicit = match relay.security {
            Security::Tls => self.tls.clone(),
            Security::Plain | Security::StartTls => None,
        };
        let too_slow = || failed(Stage::Connect, "the relay did not answer in time".into());
        // The TLS handshake, the greeting and EHLO are inside this bound too.
        let mut conn = match implicit {
            Some(tls) => step(
                relay.timeout,
                AsyncSmtpConnection::connect_tokio1(
                    (relay.host.as_str(), relay.port),
                    Some(relay.timeout),
                    &hello,
                    Some(tls),
                    None,
                ),
            )
            .await
            .map_err(|_| too_slow())?
            .map_err(|e| failed(Stage::Connect, problem(&e)))?,
            None => {
                // Our own socket, without Nagle's algorithm: lettre writes a command and its
                // end in separate small writes, and with Nagle and delayed ACKs each message
                // waited tens of milliseconds for the relay's acknowledgement (measured: 170
                // messages/s over 8 connections to smtp-sink on loopback).
                let connected = step(
                    relay.timeout,
                    tokio::net::TcpStream::connect((relay.host.as_str(), relay.port)),
                )
                .await
                .map_err(|_| too_slow())?
                .map_err(|e| failed(Stage::Connect, e.kind().to_string()))?;
                connected
                    .set_nodelay(true)
                    .map_err(|e| failed(Stage::Connect, e.kind().to_string()))?;
                step(
                    relay.timeout,
                    AsyncSmtpConnection::connect_with_transport(Box::new(connected), &hello),
                )
                .await
                .map_err(|_| too_slow())?
                .map_err(|e| failed(Stage::Connect, problem(&e)))?
            }
        };
        if relay.security == Security::StartTls {
            let tls = self
                .tls
                .clone()
                .ok_or_else(|| failed(Stage::Connect, "no TLS settings for STARTTLS".into()))?;
            if !conn.can_starttls() {
                discard(&mut conn, relay.timeout).await;
                return Err(failed(
                    Stage::Connect,
                    "the relay does not offer STARTTLS".into(),
                ));
            }
            step(relay.timeout, conn.starttls(tls, &hello))
                .await
                .map_err(|_| too_slow())?
                .map_err(|e| failed(Stage::Connect, problem(&e)))?;
        }
        if let Some((user, password)) = &relay.credentials {
            let credentials = Credentials::new(user.clone(), password.expose().to_owned());
            let mechanisms = [Mechanism::Plain, Mechanism::Login];
            let problem = match step(relay.timeout, conn.auth(&mechanisms, &credentials)).await {
                Ok(Ok(_)) => None,
                Ok(Err(e)) => Some(problem(&e)),
                Err(_) => Some("the relay did not answer in time".to_owned()),
            };
            if let Some(problem) = problem {
                discard(&mut conn, relay.timeout).await;
                return Err(failed(Stage::Auth, problem));
            }
        }
        Ok(conn)
    }
}

/// Ends a connection that is not kept: QUIT if the relay still answers within `limit`, then
/// closed either way (a relay that stopped answering is not waited for).
async fn discard(conn: &mut AsyncSmtpConnection, limit: Duration) {
    let _ = step(limit, conn.abort()).await;
}

/// Runs one step of the conversation, bounded by `limit`.
async fn step<T>(
    limit: Duration,
    step: impl std::future::Future<Output = T>,
) -> Result<T, tokio::time::error::Elapsed> {
    tokio::time::timeout(limit, step).await
}

/// One mail transaction on `conn`: MAIL, RCPT for each recipient, DATA, the message; each step
/// bounded by `limit`.
async fn converse(conn: &mut AsyncSmtpConnection, message: &Composed, limit: Duration) -> Delivery {
    let envelope = &message.envelope;
    let mut options = Vec::new();
    let non_ascii = envelope
        .from()
        .into_iter()
        .chain(envelope.to())
        .any(|a: &Address| !AsRef::<str>::as_ref(a).is_ascii());
    if non_ascii {
        if !conn.server_info().supports_feature(Extension::SmtpUtfEight) {
            return Delivery::RelayFailed {
                stage: Stage::Mail,
                problem: "the relay does not take addresses outside ASCII (SMTPUTF8)".into(),
            };
        }
        options.push(MailParameter::SmtpUtfEight);
    }
    let outcome = |stage, result| match result {
        Ok(Ok(_)) => None,
        Ok(Err(e)) => Some(refused(stage, &e)),
        Err(_) => Some(silent(stage)),
    };
    let mail = Mail::new(envelope.from().cloned(), options);
    if let Some(failed) = outcome(Stage::Mail, step(limit, conn.command(mail)).await) {
        return failed;
    }
    for to in envelope.to() {
        let rcpt = Rcpt::new(to.clone(), Vec::new());
        if let Some(failed) = outcome(Stage::Rcpt, step(limit, conn.command(rcpt)).await) {
            return failed;
        }
    }
    if let Some(failed) = outcome(Stage::Data, step(limit, conn.command(Data)).await) {
        return failed;
    }
    outcome(
        Stage::Message,
        step(limit, conn.message(&message.bytes)).await,
    )
    .unwrap_or(Delivery::Accepted)
}

/// A step that got no answer in time: before the message, the relay's failure; once the message
/// was on its way, the relay may have taken it.
fn silent(stage: Stage) -> Delivery {
    match stage {
        Stage::Message => Delivery::Unknown,
        _ => Delivery::RelayFailed {
            stage,
            problem: "the relay did not answer in time".into(),
        },
    }
}

/// What a failed step means (see the module's description).
fn refused(stage: Stage, error: &lettre::transport::smtp::Error) -> Delivery {
    let Some(code) = error.status().map(u16::from) else {
        // Lost while the message or its end was on its way, or while waiting for the reply.
        return match stage {
            Stage::Message => Delivery::Unknown,
            _ => Delivery::RelayFailed {
                stage,
                problem: problem(error),
            },
        };
    };
    let enhanced = enhanced_status(error);
    let mailbox_full = match enhanced.as_deref() {
        Some(status) => status == "5.2.2",
        None => code == 552,
    };
    let mailbox_refused = match enhanced.as_deref() {
        Some(status) => refuses_the_mailbox(status),
        None => stage == Stage::Rcpt && matches!(code, 550 | 551 | 553),
    };
    match stage {
        _ if error.is_transient() => Delivery::Deferred { stage, code },
        Stage::Rcpt if mailbox_full => Delivery::Deferred { stage, code },
        Stage::Rcpt | Stage::Message if error.is_permanent() && mailbox_refused => {
            Delivery::HardBounce {
                stage,
                code,
                enhanced,
            }
        }
        Stage::Rcpt | Stage::Message if error.is_permanent() => Delivery::Refused {
            stage,
            code,
            enhanced,
        },
        _ => Delivery::RelayFailed {
            stage,
            problem: format!("the relay refused with {code}"),
        },
    }
}

/// The enhanced status code (RFC 3463) a reply's text begins with, if any: `x.y.z` only, never
/// the rest of the text.
fn enhanced_status(error: &lettre::transport::smtp::Error) -> Option<String> {
    let text = std::error::Error::source(error)?.to_string();
    let first = text.split_whitespace().next()?;
    let parts: Vec<&str> = first.split('.').collect();
    let numeric = |p: &str, max: usize| {
        !p.is_empty() && p.len() <= max && p.bytes().all(|b| b.is_ascii_digit())
    };
    match parts.as_slice() {
        [class, subject, detail]
            if matches!(*class, "2" | "4" | "5") && numeric(subject, 3) && numeric(detail, 3) =>
        {
            Some(first.to_owned())
        }
        _ => None,
    }
}

pub fn on_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A connection-level failure in words, without the relay's reply text (which may quote an
/// address).
fn problem(error: &lettre::transport::smtp::Error) -> String {
    if let Some(code) = error.status() {
        return format!("the relay refused with {}", u16::from(code));
    }
    if error.is_tls() {
        return "TLS with the relay failed (its certificate, or the protocol)".into();
    }
    if error.is_timeout() {
        return "the relay did not answer in time".into();
    }
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return format!("the connection to the relay failed: {}", io.kind());
        }
        source = cause.source();
    }
    "the relay's reply could not be read".into()
}

fn pem_certificates(pem: &[u8]) -> Result<Vec<Certificate>, MailError> {
    use rustls_pki_types::pem::PemObject;
    let certs: Vec<_> = rustls_pki_types::CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|_| MailError::Authorities)?;
    if certs.is_empty() {
        return Err(MailError::Authorities);
    }
    certs
        .into_iter()
        .map(|der| Certificate::from_der(der.to_vec()).map_err(|_| MailError::Authorities))
        .collect()
}

/// The catch-all used when no relay is configured: each message a file in a maildir
/// (`tmp/`, `new/`, `cur/`), written in `tmp/` and renamed into `new/` so that a reader never
/// sees half a message.
#[derive(Debug, Clone)]
pub struct Maildir {
    root: PathBuf,
}

impl Maildir {
    /// The maildir at `root`, made if missing.
    pub fn open(root: &Path) -> Result<Self, MailError> {
        use std::os::unix::fs::DirBuilderExt;
        // Only the server's user may read it: it holds the messages' personal data.
        for dir in [
            root.to_owned(),
            root.join("tmp"),
            root.join("new"),
            root.join("cur"),
        ] {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(|source| MailError::Maildir {
                    path: dir.clone(),
                    source,
                })?;
        }
        Ok(Self {
            root: root.to_owned(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Keeps `message`, durably before it returns: written and flushed in `tmp/` (readable by the
    /// server's user only), renamed into `new/`, and `new/` flushed, so a power cut keeps it.
    pub async fn deliver(&self, message: &Composed) -> Result<PathBuf, MailError> {
        self.keep(message.bytes.clone()).await
    }

    /// Keeps `bytes` as one message, durably before it returns (as [`Maildir::deliver`]).
    pub async fn keep(&self, bytes: Vec<u8>) -> Result<PathBuf, MailError> {
        let name = format!(
            "{}.{}.assent",
            chrono::Utc::now().timestamp(),
            uuid::Uuid::now_v7().simple()
        );
        let tmp = self.root.join("tmp").join(&name);
        let new = self.root.join("new").join(&name);
        let (written, renamed) = (tmp.clone(), new.clone());
        let kept = tokio::task::spawn_blocking(move || -> Result<(), (PathBuf, std::io::Error)> {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let at = |path: &Path| {
                let path = path.to_owned();
                move |e| (path, e)
            };
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&written)
                .map_err(at(&written))?;
            file.write_all(&bytes)
                .and_then(|_| file.sync_all())
                .map_err(at(&written))?;
            if let Err(e) = std::fs::rename(&written, &renamed) {
                let _ = std::fs::remove_file(&written);
                return Err((renamed, e));
            }
            let new_dir = renamed.parent().unwrap_or(Path::new("."));
            std::fs::File::open(new_dir)
                .and_then(|d| d.sync_all())
                .map_err(at(new_dir))
        })
        .await;
        match kept {
            Ok(Ok(())) => {}
            Ok(Err((path, source))) => return Err(MailError::Maildir { path, source }),
            Err(e) => {
                return Err(MailError::Maildir {
                    path: tmp,
                    source: std::io::Error::other(e),
                })
            }
        }
        Ok(new)
    }
}

/// Where the sender hands its messages: the configured relay, or the maildir catch-all.
pub enum Outlet {
    // Boxed: the sender holds its TLS settings and pool, the maildir only a path.
    Relay(Box<SmtpSender>),
    Maildir(Maildir),
}

impl Outlet {
    /// The relay of `settings`, or the maildir `data_dir/mail` when none is configured.
    pub fn open(
        settings: &crate::config::MailSettings,
        data_dir: &Path,
    ) -> Result<Self, MailError> {
        Ok(match &settings.relay {
            Some(relay) => Outlet::Relay(Box::new(SmtpSender::new(relay.clone())?)),
            None => Outlet::Maildir(Maildir::open(&data_dir.join("mail"))?),
        })
    }

    /// Hands `message` over. A maildir that cannot be written is the outlet's own failure: the
    /// message was not kept, and no address is at fault.
    pub async fn hand_over(&self, message: &Composed) -> Delivery {
        match self {
            Outlet::Relay(sender) => sender.send(message).await,
            Outlet::Maildir(maildir) => match maildir.deliver(message).await {
                Ok(_) => Delivery::Accepted,
                Err(e) => Delivery::RelayFailed {
                    stage: Stage::Connect,
                    problem: e.to_string(),
                },
            },
        }
    }

    /// Says at start where mail goes, so that no one believes a maildir is sending.
    pub fn announce(&self) {
        match self {
            Outlet::Relay(sender) => tracing::info!(
                relay = %format!("{}:{}", sender.relay.host, sender.relay.port),
                security = ?sender.relay.security,
                "mail goes to the configured SMTP relay"
            ),
            Outlet::Maildir(maildir) => tracing::warn!(
                maildir = %maildir.root().display(),
                "no mail relay is configured (mail_relay): every message is kept in this maildir and \
                 reaches no one; open it with a mail reader such as `mutt -f`"
            ),
        }
    }

    /// Closes the relay's idle connections.
    pub async fn close(&self) {
        if let Outlet::Relay(sender) = self {
            sender.close().await;
        }
    }
}

/// Whether an enhanced status code (RFC 3463) says the mailbox itself is refused for good: a bad
/// address (`5.1.x`) or a disabled mailbox (`5.2.1`). A hard bounce, at send or reported later.
pub fn refuses_the_mailbox(status: &str) -> bool {
    status.starts_with("5.1.") || status == "5.2.1"
}

pub mod reports;
#[cfg(any(test, feature = "test-support"))]
pub mod sink;
#[cfg(test)]
mod tests;
