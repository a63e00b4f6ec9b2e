//! Email out: composing a message, and handing it to one SMTP relay or, when none is configured,
//! to a maildir in the data directory that a person can open with any mail reader (mail is
//! never dropped silently).
//!
//! The relay's conversation is driven one command at a time on pooled connections, so that each
//! refusal is known by where it came, which decides what the sender does with it:
//! - `250` after the message's end: [`Delivery::Accepted`];
//! - `5xx` at RCPT or after the message's end: [`Delivery::HardBounce`], the recipient's address
//!   refused for good (the sender flags it, and the next campaign skips it);
//! - `4xx` at MAIL, RCPT, DATA or after the message's end: [`Delivery::Deferred`], not taken for
//!   now, so sending it again later is no duplicate;
//! - the relay's own failure (no connection, TLS, AUTH such as `535`, a refusal of our sender at
//!   MAIL or of DATA): [`Delivery::RelayFailed`], which flags no one's address;
//! - the connection lost after the message was handed over and before its reply:
//!   [`Delivery::Unknown`]. The relay may have taken it; the sender shows it as indeterminate and
//!   never sends it again on its own.
//!
//! Replies are kept as their codes only: a relay's text often quotes the recipient's address,
//! which must not reach the logs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::address::{Address, Envelope};
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
#[derive(Debug, Clone)]
pub struct Relay {
    pub host: String,
    pub port: u16,
    pub security: Security,
    /// User name and password for AUTH (PLAIN or LOGIN), only ever sent over TLS or to a relay
    /// configured as plain.
    pub credentials: Option<(String, Secret)>,
    /// PEM certificates of the authorities that may sign the relay's certificate; the system's
    /// when none.
    pub authorities: Option<Vec<u8>>,
    /// The name this server gives in EHLO.
    pub hello_name: String,
    /// How long one step of the conversation may take.
    pub timeout: Duration,
    /// At most this many connections at once.
    pub connections: usize,
}

/// Where a message's conversation with the relay ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// The relay took the message.
    Accepted,
    /// The relay refused the recipient for good.
    HardBounce { stage: Stage, code: u16 },
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
    #[error("the maildir {path} cannot be written: {source}")]
    Maildir {
        path: PathBuf,
        source: std::io::Error,
    },
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
    pub subject: &'a str,
    pub text: &'a str,
    pub html: &'a str,
    pub unsubscribe: Option<Unsubscribe<'a>>,
}

/// The unsubscribe addresses of a marketing message (RFC 2369 and RFC 8058).
#[derive(Debug, Clone, Copy)]
pub struct Unsubscribe<'a> {
    /// The https URL that takes the one-click POST.
    pub https: &'a str,
    /// The mailbox that takes unsubscribe requests by email.
    pub mailto: &'a str,
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
        builder = builder
            .header(ListUnsubscribe(format!(
                "<{}>, <mailto:{}>",
                unsubscribe.https, unsubscribe.mailto
            )))
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
    let message = builder
        .multipart(body)
        .map_err(|e| MailError::Build(e.to_string()))?;
    Ok(Composed {
        envelope: message.envelope().clone(),
        bytes: message.formatted(),
    })
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
                Some(builder.build_rustls().map_err(|_| MailError::Authorities)?)
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
        let delivery = converse(&mut conn, message).await;
        let reusable = match &delivery {
            Delivery::Accepted => true,
            Delivery::HardBounce { .. } | Delivery::Deferred { .. } => {
                conn.command(Rset).await.is_ok()
            }
            Delivery::RelayFailed { .. } | Delivery::Unknown => false,
        };
        if reusable {
            self.idle.lock().await.push(conn);
        } else {
            conn.abort().await;
        }
        delivery
    }

    /// Closes the idle connections politely.
    pub async fn close(&self) {
        for mut conn in self.idle.lock().await.drain(..) {
            let _ = conn.quit().await;
        }
    }

    async fn idle_connection(&self) -> Option<AsyncSmtpConnection> {
        loop {
            let mut conn = self.idle.lock().await.pop()?;
            if conn.test_connected().await {
                return Some(conn);
            }
            conn.abort().await;
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
        let mut conn = AsyncSmtpConnection::connect_tokio1(
            (relay.host.as_str(), relay.port),
            Some(relay.timeout),
            &hello,
            implicit,
            None,
        )
        .await
        .map_err(|e| failed(Stage::Connect, problem(&e)))?;
        if relay.security == Security::StartTls {
            let tls = self
                .tls
                .clone()
                .ok_or_else(|| failed(Stage::Connect, "no TLS settings for STARTTLS".into()))?;
            if !conn.can_starttls() {
                conn.abort().await;
                return Err(failed(
                    Stage::Connect,
                    "the relay does not offer STARTTLS".into(),
                ));
            }
            conn.starttls(tls, &hello)
                .await
                .map_err(|e| failed(Stage::Connect, problem(&e)))?;
        }
        if let Some((user, password)) = &relay.credentials {
            let credentials = Credentials::new(user.clone(), password.expose().to_owned());
            if let Err(e) = conn
                .auth(&[Mechanism::Plain, Mechanism::Login], &credentials)
                .await
            {
                conn.abort().await;
                return Err(failed(Stage::Auth, problem(&e)));
            }
        }
        Ok(conn)
    }
}

/// One mail transaction on `conn`: MAIL, RCPT for each recipient, DATA, the message.
async fn converse(conn: &mut AsyncSmtpConnection, message: &Composed) -> Delivery {
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
    if let Err(e) = conn
        .command(Mail::new(envelope.from().cloned(), options))
        .await
    {
        return refused(Stage::Mail, &e);
    }
    for to in envelope.to() {
        if let Err(e) = conn.command(Rcpt::new(to.clone(), Vec::new())).await {
            return refused(Stage::Rcpt, &e);
        }
    }
    if let Err(e) = conn.command(Data).await {
        return refused(Stage::Data, &e);
    }
    match conn.message(&message.bytes).await {
        Ok(_) => Delivery::Accepted,
        Err(e) => refused(Stage::Message, &e),
    }
}

/// What a failed step means (see the module's description).
fn refused(stage: Stage, error: &lettre::transport::smtp::Error) -> Delivery {
    let code = error.status().map(u16::from);
    match (code, stage) {
        (Some(code), _) if error.is_transient() => Delivery::Deferred { stage, code },
        (Some(code), Stage::Rcpt | Stage::Message) if error.is_permanent() => {
            Delivery::HardBounce { stage, code }
        }
        (Some(code), _) => Delivery::RelayFailed {
            stage,
            problem: format!("the relay refused with {code}"),
        },
        // Lost while the message or its end was on its way, or while waiting for the reply.
        (None, Stage::Message) => Delivery::Unknown,
        (None, _) => Delivery::RelayFailed {
            stage,
            problem: problem(error),
        },
    }
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
        for sub in ["tmp", "new", "cur"] {
            let dir = root.join(sub);
            std::fs::create_dir_all(&dir).map_err(|source| MailError::Maildir {
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

    /// Keeps `message`: durably (flushed, then renamed into `new/`) before it returns.
    pub async fn deliver(&self, message: &Composed) -> Result<PathBuf, MailError> {
        let name = format!(
            "{}.{}.assent",
            chrono::Utc::now().timestamp(),
            uuid::Uuid::now_v7().simple()
        );
        let tmp = self.root.join("tmp").join(&name);
        let new = self.root.join("new").join(&name);
        let failed = |path: &Path| {
            let path = path.to_owned();
            move |source| MailError::Maildir { path, source }
        };
        let bytes = message.bytes.clone();
        let written = tmp.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            use std::io::Write;
            let mut file = std::fs::File::create(&written)?;
            file.write_all(&bytes)?;
            file.sync_all()
        })
        .await
        .map_err(|e| MailError::Maildir {
            path: tmp.clone(),
            source: std::io::Error::other(e),
        })?
        .map_err(failed(&tmp))?;
        tokio::fs::rename(&tmp, &new).await.map_err(failed(&new))?;
        Ok(new)
    }
}

#[cfg(test)]
mod tests;
