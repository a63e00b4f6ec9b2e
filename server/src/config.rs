//! Configuration: a TOML file and `ASSENT_*` environment variables (the environment wins), with
//! defaults that run a single server on SQLite. Every value is checked at start; a bad one stops
//! the start with a message naming the key, where it came from and what is wrong.
//! `docs/CONFIGURATION.md` and `assent.example.toml` document every key.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use chrono::Duration;
use secrecy::{ExposeSecret, SecretString};

use crate::auth::SessionPolicy;
use crate::store::{DatabaseLocation, SqliteSync};

/// A configuration value that must never be shown: not in `Debug`, logs or error messages
/// (a database URL with its password; credentials of the mail and SMS gateways).
#[derive(Clone)]
pub struct Secret(SecretString);

impl Secret {
    pub fn new(value: String) -> Self {
        Secret(SecretString::from(value))
    }

    /// The value itself, for the one place that must use it (opening the connection).
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

impl Eq for Secret {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Address and port of the HTTPS listener.
    pub bind: SocketAddr,
    /// Where the SQLite database and the generated certificate live.
    pub data_dir: PathBuf,
    /// `postgres://...` for PostgreSQL; absent for SQLite in the data directory.
    pub database_url: Option<Secret>,
    /// How SQLite flushes its commits (not used with PostgreSQL).
    pub sqlite_synchronous: SqliteSync,
    /// A PEM certificate chain and private key; absent for a generated self-signed pair.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub sessions: SessionPolicy,
    pub log_format: LogFormat,
    pub log_level: String,
    /// Checkpoints of the audit trail: signed with this key and written where [`Checkpoints`]
    /// says; absent for none.
    pub checkpoints: Option<Checkpoints>,
    /// Where mail goes and whom it comes from.
    pub mail: MailSettings,
    /// Where text messages go and whom they come from.
    pub sms: crate::sms::SmsSettings,
    /// Words and phrases that mark a message as promotional: a service message holding one is
    /// flagged to its approver and needs a manager's approval (lower case).
    pub marketing_phrases: Vec<String>,
    /// The address people reach the public pages at (unsubscribe links point there), https.
    pub public_url: String,
    /// Address and port of the public pages' HTTPS listener (the unsubscribe page), apart from
    /// the staff API's so that each can be exposed on its own network.
    pub public_bind: SocketAddr,
    /// The proxies whose `X-Forwarded-For` names the client of a public page.
    pub trusted_proxies: crate::public::TrustedProxies,
    /// The send worker: the most recipients in flight (and so the most a crash can leave
    /// indeterminate); it claims half of them while it hands the other half over.
    pub send_batch: i64,
    /// How long a claim of the send worker lasts: rows still claimed after it (their worker
    /// stopped) are indeterminate.
    pub send_lease: std::time::Duration,
    /// How long a sign-up's confirmation link confirms.
    pub signup_confirm_days: i64,
    /// An address with an unconfirmed confirmation sent less than this long ago gets no other.
    pub signup_mail_interval_minutes: i64,
    /// Sign-ups taken from one client address (an IPv6 client by its /64) in ten minutes.
    pub signups_per_address: u32,
}

/// The public pages' address when none is configured.
pub const DEFAULT_PUBLIC_URL: &str = "https://localhost:8444";

/// The marketing phrases when none are configured.
pub const DEFAULT_MARKETING_PHRASES: &[&str] = &[
    "offer",
    "discount",
    "% off",
    "sale",
    "deal",
    "promotion",
    "free gift",
    "upgrade",
    "newsletter",
    "season's greetings",
    "christmas",
    "competition",
    "prize",
    "voucher",
];

/// Mail out: the relay (none: the maildir `data_dir/mail`, which a person opens with a mail
/// reader), the identity every message carries, and where unsubscribe requests by email go.
#[derive(Debug, Clone, PartialEq)]
pub struct MailSettings {
    pub relay: Option<crate::mail::Relay>,
    pub identity: SenderIdentity,
    /// The mailbox named in `List-Unsubscribe` beside the https URL; the organisation's mail
    /// system forwards what reaches it to Assent.
    pub unsubscribe_mailto: Option<String>,
    /// The return path (envelope sender) bounces go to, tagged per message
    /// (`bounces+<tag>@domain`); absent: the `From:` address, untagged.
    pub return_path: Option<String>,
    /// The bearer secret the organisation's mail system sends with the bounce and complaint
    /// reports it forwards; absent: reports are not taken.
    pub reports_secret: Option<Secret>,
    /// The key every email is signed with (DKIM); absent: unsigned.
    pub dkim: Option<crate::mail::DkimKey>,
    /// At most this many emails handed over a second; absent: as fast as the relay takes them.
    pub per_second: Option<u32>,
}

/// Who the organisation is, as its messages say: PECR reg 23 and the ICO ask that a marketing
/// message names its sender and gives a valid address; a marketing campaign without a name and a
/// postal address is refused at submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderIdentity {
    pub organisation: Option<String>,
    pub postal_address: Option<String>,
    /// The `From:` address of every email.
    pub from: String,
    pub reply_to: Option<String>,
}

impl SenderIdentity {
    /// The domain of the `From:` address, which every Message-ID Assent makes ends with.
    pub fn message_id_domain(&self) -> &str {
        self.from.rsplit_once('@').map_or("localhost", |(_, d)| d)
    }
}

impl Default for MailSettings {
    fn default() -> Self {
        MailSettings {
            relay: None,
            identity: SenderIdentity {
                organisation: None,
                postal_address: None,
                from: DEFAULT_MAIL_FROM.to_owned(),
                reply_to: None,
            },
            unsubscribe_mailto: None,
            return_path: None,
            reports_secret: None,
            dkim: None,
            per_second: None,
        }
    }
}

/// The `From:` of mail kept in the maildir when nothing else is configured.
pub const DEFAULT_MAIL_FROM: &str = "assent@localhost";

/// Where and how often the server writes checkpoints of the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoints {
    /// The Ed25519 private key (PKCS#8 PEM) that signs them; never in the database.
    pub key: PathBuf,
    /// A file each checkpoint is appended to as a line (besides the log).
    pub file: Option<PathBuf>,
    /// An `https://` URL each checkpoint is POSTed to (it may hold a token, so it is a secret).
    pub url: Option<Secret>,
    /// The certificate authorities (PEM) the URL's server is checked against instead of the
    /// system's.
    pub url_authorities: Option<PathBuf>,
    pub every: std::time::Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: SocketAddr::from(([127, 0, 0, 1], 8443)),
            data_dir: PathBuf::from("assent-data"),
            database_url: None,
            sqlite_synchronous: SqliteSync::Normal,
            tls_cert: None,
            tls_key: None,
            sessions: SessionPolicy::default(),
            log_format: LogFormat::Text,
            log_level: "info".to_owned(),
            checkpoints: None,
            mail: MailSettings::default(),
            sms: crate::sms::SmsSettings::default(),
            marketing_phrases: DEFAULT_MARKETING_PHRASES
                .iter()
                .map(|p| (*p).to_owned())
                .collect(),
            public_url: DEFAULT_PUBLIC_URL.to_owned(),
            public_bind: SocketAddr::from(([127, 0, 0, 1], 8444)),
            trusted_proxies: crate::public::TrustedProxies::default(),
            send_batch: 50,
            send_lease: std::time::Duration::from_secs(120),
            signup_confirm_days: 28,
            signup_mail_interval_minutes: 10,
            signups_per_address: 30,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("cannot read the configuration file {path}: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("the configuration file {path} is not valid TOML: {reason}")]
    NotToml { path: String, reason: String },
    #[error("configuration key `{key}` (from {origin}): {problem}")]
    BadValue {
        key: &'static str,
        origin: String,
        problem: String,
    },
    #[error("configuration key `{key}` in {path} is not a known key (known keys: {known})")]
    UnknownKey {
        key: String,
        path: String,
        known: String,
    },
}

/// Every key, in the order the documentation lists them.
pub const KEYS: &[&str] = &[
    "bind",
    "data_dir",
    "database_url",
    "sqlite_synchronous",
    "tls_cert",
    "tls_key",
    "session_idle_minutes",
    "session_absolute_hours",
    "log_format",
    "log_level",
    "checkpoint_key",
    "checkpoint_file",
    "checkpoint_url",
    "checkpoint_url_ca",
    "checkpoint_minutes",
    "mail_relay",
    "mail_security",
    "mail_username",
    "mail_password",
    "mail_relay_ca",
    "mail_hello_name",
    "mail_timeout_seconds",
    "mail_connections",
    "mail_from",
    "mail_reply_to",
    "organisation_name",
    "organisation_postal_address",
    "unsubscribe_mailto",
    "mail_return_path",
    "mail_reports_secret",
    "dkim_key",
    "dkim_selector",
    "dkim_domain",
    "mail_per_second",
    "sms_gateway_url",
    "sms_account",
    "sms_auth_token",
    "sms_gateway_ca",
    "sms_timeout_seconds",
    "sms_connections",
    "sms_from",
    "sms_per_second",
    "marketing_phrases",
    "public_url",
    "public_bind",
    "trusted_proxies",
    "send_batch",
    "send_lease_seconds",
    "signup_confirm_days",
    "signup_mail_interval_minutes",
    "signups_per_address",
];

/// The environment variable of a key.
pub fn env_name(key: &str) -> String {
    format!("ASSENT_{}", key.to_ascii_uppercase())
}

impl Config {
    /// The SQLite file, or the PostgreSQL URL.
    pub fn database(&self) -> DatabaseLocation {
        match &self.database_url {
            Some(url) => DatabaseLocation::Postgres(url.clone()),
            None => DatabaseLocation::SqliteFile(self.data_dir.join("assent.db")),
        }
    }

    /// Reads the configuration from `file` (if any) and `env` (the process environment, or a
    /// test's map).
    pub fn load(file: Option<&Path>, env: &HashMap<String, String>) -> Result<Config, ConfigError> {
        let mut values: HashMap<&'static str, (String, String)> = HashMap::new();
        if let Some(path) = file {
            let shown = path.display().to_string();
            let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Unreadable {
                path: shown.clone(),
                reason: e.to_string(),
            })?;
            let table: toml::Table =
                text.parse()
                    .map_err(|e: toml::de::Error| ConfigError::NotToml {
                        path: shown.clone(),
                        reason: e.message().to_owned(),
                    })?;
            for (key, value) in table {
                let Some(known) = KEYS.iter().find(|k| **k == key) else {
                    return Err(ConfigError::UnknownKey {
                        key,
                        path: shown,
                        known: KEYS.join(", "),
                    });
                };
                let text = match value {
                    toml::Value::String(s) => s,
                    toml::Value::Integer(i) => i.to_string(),
                    toml::Value::Boolean(b) => b.to_string(),
                    other => {
                        return Err(ConfigError::BadValue {
                            key: known,
                            origin: shown,
                            problem: format!(
                                "expected a string or a number, found a {}",
                                other.type_str()
                            ),
                        })
                    }
                };
                values.insert(known, (shown.clone(), text));
            }
        }
        for key in KEYS {
            if let Some(value) = env.get(&env_name(key)) {
                values.insert(
                    key,
                    (
                        format!("environment variable {}", env_name(key)),
                        value.clone(),
                    ),
                );
            }
        }
        let mut config = Config::default();
        let mut idle_minutes = 30_i64;
        let mut absolute_hours = 12_i64;
        let mut checkpoint_key = None;
        let mut checkpoint_file = None;
        let mut checkpoint_url = None;
        let mut checkpoint_url_ca = None;
        let mut checkpoint_minutes = 60_i64;
        let mut mail = MailKeys::default();
        let mut sms = SmsKeys::default();
        for key in KEYS {
            let Some((source, raw)) = values.get(key) else {
                continue;
            };
            let bad = |problem: String| ConfigError::BadValue {
                key,
                origin: source.clone(),
                problem,
            };
            let untrimmed = raw;
            let raw = raw.trim();
            match *key {
                "bind" => {
                    config.bind = raw.parse().map_err(|_| {
                        bad(format!(
                            "{raw:?} is not an address and port such as 127.0.0.1:8443"
                        ))
                    })?
                }
                "data_dir" => {
                    if raw.is_empty() {
                        return Err(bad("is empty".into()));
                    }
                    config.data_dir = PathBuf::from(raw);
                }
                "database_url" => {
                    if raw.is_empty() {
                        config.database_url = None;
                    } else if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
                        config.database_url = Some(Secret::new(raw.to_owned()));
                    } else {
                        // The value may hold a password: it is not echoed.
                        return Err(bad(
                            "must start with postgres:// (leave it out to use SQLite in data_dir)"
                                .into(),
                        ));
                    }
                }
                "sqlite_synchronous" => {
                    config.sqlite_synchronous = match raw {
                        "normal" => SqliteSync::Normal,
                        "full" => SqliteSync::Full,
                        _ => return Err(bad(format!("{raw:?} is not one of: normal, full"))),
                    }
                }
                "tls_cert" => config.tls_cert = Some(existing_file(raw).map_err(bad)?),
                "tls_key" => config.tls_key = Some(existing_file(raw).map_err(bad)?),
                "session_idle_minutes" => idle_minutes = bounded(raw, 1, 24 * 60).map_err(bad)?,
                "session_absolute_hours" => {
                    absolute_hours = bounded(raw, 1, 7 * 24).map_err(bad)?
                }
                "log_format" => {
                    config.log_format = match raw {
                        "text" => LogFormat::Text,
                        "json" => LogFormat::Json,
                        _ => return Err(bad(format!("{raw:?} is not one of: text, json"))),
                    }
                }
                "log_level" => {
                    tracing_subscriber::EnvFilter::try_new(raw).map_err(|e| {
                        bad(format!(
                            "{raw:?} is not a log filter such as info or assent_server=debug: {e}"
                        ))
                    })?;
                    config.log_level = raw.to_owned();
                }
                "checkpoint_key" => {
                    let path = existing_file(raw).map_err(bad)?;
                    // Read now, so that a wrong key stops the start rather than the first checkpoint.
                    crate::checkpoint::CheckpointKey::read(&path)
                        .map_err(|e| bad(e.to_string()))?;
                    checkpoint_key = Some(path);
                }
                "checkpoint_file" => {
                    if raw.is_empty() {
                        return Err(bad("is empty".into()));
                    }
                    checkpoint_file = Some(PathBuf::from(raw));
                }
                "checkpoint_url" => {
                    // Not echoed: the URL may hold a token.
                    let url = reqwest::Url::parse(raw).map_err(|_| {
                        bad("is not a URL such as https://collector.example/checkpoints".into())
                    })?;
                    if url.scheme() != "https" || url.host().is_none() {
                        return Err(bad("must be an https:// URL with a host".into()));
                    }
                    checkpoint_url = Some(Secret::new(raw.to_owned()));
                }
                "checkpoint_url_ca" => {
                    let path = existing_file(raw).map_err(bad)?;
                    // Read now, so that a wrong bundle stops the start rather than the first post.
                    crate::outbound::read_authorities(&path).map_err(|e| bad(e.to_string()))?;
                    checkpoint_url_ca = Some(path);
                }
                "checkpoint_minutes" => {
                    checkpoint_minutes = bounded(raw, 1, 24 * 60).map_err(bad)?
                }
                "mail_relay" => mail.relay = Some(host_and_port(raw).map_err(bad)?),
                "mail_security" => {
                    mail.security = match raw {
                        "starttls" => crate::mail::Security::StartTls,
                        "tls" => crate::mail::Security::Tls,
                        "plain" => crate::mail::Security::Plain,
                        _ => {
                            return Err(bad(format!("{raw:?} is not one of: starttls, tls, plain")))
                        }
                    }
                }
                "mail_username" => mail.username = Some(non_empty(raw).map_err(bad)?),
                // Not echoed, not trimmed: a password may end in a space.
                "mail_password" => {
                    if untrimmed.is_empty() {
                        return Err(bad("is empty".into()));
                    }
                    mail.password = Some(Secret::new(untrimmed.clone()));
                }
                "mail_relay_ca" => {
                    let path = existing_file(raw).map_err(bad)?;
                    // Checked now, so that a wrong bundle stops the start rather than the first send.
                    crate::outbound::read_authorities(&path).map_err(|e| bad(e.to_string()))?;
                    let pem = std::fs::read(&path).map_err(|e| bad(e.to_string()))?;
                    mail.authorities = Some(pem);
                }
                "mail_hello_name" => {
                    if raw.is_empty()
                        || !raw
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
                    {
                        return Err(bad(format!(
                            "{raw:?} is not a host name such as mail.example.org"
                        )));
                    }
                    mail.hello_name = Some(raw.to_owned());
                }
                "mail_timeout_seconds" => mail.timeout = bounded(raw, 1, 600).map_err(bad)?,
                "mail_connections" => mail.connections = bounded(raw, 1, 100).map_err(bad)?,
                "mail_from" => {
                    mail_address(raw).map_err(bad)?;
                    mail.from = Some(raw.to_owned());
                }
                "mail_reply_to" => {
                    mail_address(raw).map_err(bad)?;
                    mail.reply_to = Some(raw.to_owned());
                }
                "organisation_name" => mail.organisation = Some(non_empty(raw).map_err(bad)?),
                "organisation_postal_address" => {
                    mail.postal_address = Some(non_empty(raw).map_err(bad)?)
                }
                "unsubscribe_mailto" => {
                    mail_address(raw).map_err(bad)?;
                    mail.unsubscribe_mailto = Some(raw.to_owned());
                }
                "mail_return_path" => {
                    mail_address(raw).map_err(bad)?;
                    let (local, _) = raw.split_once('@').unwrap_or((raw, ""));
                    if local.contains('+') {
                        return Err(bad(format!(
                            "{raw:?} holds a '+': Assent adds its own tag after one (bounces+<tag>@...)"
                        )));
                    }
                    mail.return_path = Some(raw.to_owned());
                }
                "dkim_key" => mail.dkim_key = Some(existing_file(raw).map_err(bad)?),
                "dkim_selector" | "dkim_domain" => {
                    let label = |part: &str| {
                        !part.is_empty()
                            && part.len() <= 63
                            && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    };
                    if !raw.split('.').all(label) {
                        return Err(bad(format!("{raw:?} is not a DNS name such as mail2026")));
                    }
                    if *key == "dkim_selector" {
                        mail.dkim_selector = Some(raw.to_owned());
                    } else {
                        mail.dkim_domain = Some(raw.to_ascii_lowercase());
                    }
                }
                "mail_reports_secret" => {
                    if untrimmed.chars().count() < 16 {
                        return Err(bad("is shorter than 16 characters".into()));
                    }
                    mail.reports_secret = Some(Secret::new(untrimmed.clone()));
                }
                "mail_per_second" => {
                    mail.per_second = Some(bounded(raw, 1, 100_000).map_err(bad)? as u32)
                }
                "sms_gateway_url" => {
                    let url = reqwest::Url::parse(raw).map_err(|_| {
                        bad(format!(
                            "{raw:?} is not a URL such as https://api.twilio.com/2010-04-01/Accounts/AC.../Messages.json"
                        ))
                    })?;
                    let local = url.host_str().is_some_and(crate::mail::on_loopback);
                    let secure = url.scheme() == "https" || (url.scheme() == "http" && local);
                    if !secure || url.host().is_none() || !url.username().is_empty() {
                        return Err(bad(
                            "must be an https:// URL with a host and no user (http:// only to this machine); the account goes in sms_account".into(),
                        ));
                    }
                    sms.url = Some(url);
                }
                "sms_account" => sms.account = Some(non_empty(raw).map_err(bad)?),
                // Not echoed, not trimmed.
                "sms_auth_token" => {
                    if untrimmed.chars().count() < 16 {
                        return Err(bad("is shorter than 16 characters".into()));
                    }
                    sms.auth_token = Some(Secret::new(untrimmed.clone()));
                }
                "sms_gateway_ca" => {
                    let path = existing_file(raw).map_err(bad)?;
                    crate::outbound::read_authorities(&path).map_err(|e| bad(e.to_string()))?;
                    sms.authorities = Some(path);
                }
                "sms_timeout_seconds" => sms.timeout = Some(bounded(raw, 1, 600).map_err(bad)?),
                "sms_connections" => sms.connections = Some(bounded(raw, 1, 100).map_err(bad)?),
                "sms_from" => sms.from = Some(crate::sms::SenderId::parse(raw).map_err(bad)?),
                "sms_per_second" => {
                    sms.per_second = Some(bounded(raw, 1, 100_000).map_err(bad)? as u32)
                }
                "marketing_phrases" => {
                    let phrases: Vec<String> = raw
                        .split(',')
                        .map(|p| p.trim().to_lowercase())
                        .filter(|p| !p.is_empty())
                        .collect();
                    if phrases.iter().any(|p| p.chars().count() > 100) {
                        return Err(bad("holds a phrase longer than 100 characters".into()));
                    }
                    config.marketing_phrases = phrases;
                }
                "public_url" => {
                    let url = reqwest::Url::parse(raw).map_err(|_| {
                        bad(format!(
                            "{raw:?} is not a URL such as https://crm.example.org"
                        ))
                    })?;
                    let plain = raw
                        .bytes()
                        .all(|b| b.is_ascii_graphic() && !b"<>,\"".contains(&b));
                    if url.scheme() != "https"
                        || url.host().is_none()
                        || !plain
                        || url.query().is_some()
                    {
                        return Err(bad(format!(
                            "{raw:?} must be an https:// address with a host and no query"
                        )));
                    }
                    config.public_url = raw.trim_end_matches('/').to_owned();
                }
                "public_bind" => {
                    config.public_bind = raw.parse().map_err(|_| {
                        bad(format!(
                            "{raw:?} is not an address and port such as 0.0.0.0:8444"
                        ))
                    })?
                }
                "trusted_proxies" => {
                    config.trusted_proxies =
                        crate::public::TrustedProxies::parse(raw).map_err(bad)?
                }
                "send_batch" => config.send_batch = bounded(raw, 1, 1000).map_err(bad)?,
                "send_lease_seconds" => {
                    config.send_lease =
                        std::time::Duration::from_secs(bounded(raw, 1, 3600).map_err(bad)? as u64)
                }
                "signup_confirm_days" => {
                    config.signup_confirm_days = bounded(raw, 1, 365).map_err(bad)?
                }
                "signup_mail_interval_minutes" => {
                    config.signup_mail_interval_minutes = bounded(raw, 0, 24 * 60).map_err(bad)?
                }
                "signups_per_address" => {
                    config.signups_per_address = bounded(raw, 1, 1_000_000).map_err(bad)? as u32
                }
                _ => unreachable!("every key in KEYS is handled"),
            }
        }
        if config.public_bind == config.bind && config.bind.port() != 0 {
            return Err(ConfigError::BadValue {
                key: "public_bind",
                origin: "the configuration".into(),
                problem: format!(
                    "is {}, the staff API's bind: the public pages need a listener of their own",
                    config.bind
                ),
            });
        }
        match (&config.tls_cert, &config.tls_key) {
            (Some(_), None) => return Err(missing_pair("tls_key", "tls_cert")),
            (None, Some(_)) => return Err(missing_pair("tls_cert", "tls_key")),
            _ => {}
        }
        if absolute_hours * 60 < idle_minutes {
            return Err(ConfigError::BadValue {
                key: "session_absolute_hours",
                origin: "the configuration".into(),
                problem: "must be at least as long as session_idle_minutes".into(),
            });
        }
        if checkpoint_url_ca.is_some() && checkpoint_url.is_none() {
            return Err(missing_pair("checkpoint_url", "checkpoint_url_ca"));
        }
        config.checkpoints = match (checkpoint_key, checkpoint_file, checkpoint_url) {
            (Some(key), file, url) => Some(Checkpoints {
                key,
                file,
                url,
                url_authorities: checkpoint_url_ca,
                every: std::time::Duration::from_secs(checkpoint_minutes as u64 * 60),
            }),
            (None, Some(_), _) => return Err(missing_pair("checkpoint_key", "checkpoint_file")),
            (None, None, Some(_)) => return Err(missing_pair("checkpoint_key", "checkpoint_url")),
            (None, None, None) => None,
        };
        config.mail = mail.settings()?;
        config.sms = sms.settings()?;
        // A rate limit stretches a batch's hand-over: it must fit well inside the lease, or
        // another worker would take the rows still waiting for their slot as indeterminate.
        for (key, per_second) in [
            ("mail_per_second", config.mail.per_second),
            ("sms_per_second", config.sms.per_second),
        ] {
            if let Some(per_second) = per_second {
                let batch_seconds = config.send_batch as f64 / f64::from(per_second);
                if batch_seconds > config.send_lease.as_secs_f64() / 2.0 {
                    return Err(ConfigError::BadValue {
                        key,
                        origin: "the configuration".into(),
                        problem: format!(
                            "is {per_second}: a batch of send_batch = {} would take {batch_seconds:.0} s to hand over, more than half of send_lease_seconds = {}; lower send_batch or raise send_lease_seconds",
                            config.send_batch,
                            config.send_lease.as_secs()
                        ),
                    });
                }
            }
        }
        config.sessions = SessionPolicy {
            idle: Duration::minutes(idle_minutes),
            absolute: Duration::hours(absolute_hours),
        };
        Ok(config)
    }
}

/// The mail keys as read, before they are checked together.
struct MailKeys {
    relay: Option<(String, u16)>,
    security: crate::mail::Security,
    username: Option<String>,
    password: Option<Secret>,
    authorities: Option<Vec<u8>>,
    hello_name: Option<String>,
    timeout: i64,
    connections: i64,
    from: Option<String>,
    reply_to: Option<String>,
    organisation: Option<String>,
    postal_address: Option<String>,
    unsubscribe_mailto: Option<String>,
    return_path: Option<String>,
    reports_secret: Option<Secret>,
    dkim_key: Option<PathBuf>,
    dkim_selector: Option<String>,
    dkim_domain: Option<String>,
    per_second: Option<u32>,
}

impl Default for MailKeys {
    fn default() -> Self {
        MailKeys {
            relay: None,
            security: crate::mail::Security::StartTls,
            username: None,
            password: None,
            authorities: None,
            hello_name: None,
            timeout: 30,
            connections: 4,
            from: None,
            reply_to: None,
            organisation: None,
            postal_address: None,
            unsubscribe_mailto: None,
            return_path: None,
            reports_secret: None,
            dkim_key: None,
            dkim_selector: None,
            dkim_domain: None,
            per_second: None,
        }
    }
}

impl MailKeys {
    fn settings(self) -> Result<MailSettings, ConfigError> {
        let credentials = match (self.username, self.password) {
            (Some(user), Some(password)) => Some((user, password)),
            (Some(_), None) => return Err(missing_pair("mail_password", "mail_username")),
            (None, Some(_)) => return Err(missing_pair("mail_username", "mail_password")),
            (None, None) => None,
        };
        let relay = match self.relay {
            Some((host, port)) => {
                let Some(from) = &self.from else {
                    return Err(missing_pair("mail_from", "mail_relay"));
                };
                let hello_name = self.hello_name.unwrap_or_else(|| {
                    // `from` was checked to be an address, so it has a domain.
                    from.rsplit_once('@')
                        .map_or("localhost", |(_, d)| d)
                        .to_owned()
                });
                let relay = crate::mail::Relay {
                    host,
                    port,
                    security: self.security,
                    credentials,
                    authorities: self.authorities,
                    hello_name,
                    timeout: std::time::Duration::from_secs(self.timeout as u64),
                    connections: self.connections as usize,
                };
                // Refuses a password in plain beyond loopback, and a bad bundle.
                crate::mail::SmtpSender::new(relay.clone()).map_err(|e| ConfigError::BadValue {
                    key: "mail_relay",
                    origin: "the configuration".into(),
                    problem: e.to_string(),
                })?;
                Some(relay)
            }
            None => {
                for (key, given) in [
                    ("mail_username", credentials.is_some()),
                    ("mail_relay_ca", self.authorities.is_some()),
                    ("mail_hello_name", self.hello_name.is_some()),
                ] {
                    if given {
                        return Err(missing_pair("mail_relay", key));
                    }
                }
                None
            }
        };
        let from = self.from.unwrap_or_else(|| DEFAULT_MAIL_FROM.to_owned());
        let dkim = match (self.dkim_key, self.dkim_selector) {
            (Some(path), Some(selector)) => {
                // `from` was checked to be an address, so it has a domain.
                let domain = self.dkim_domain.unwrap_or_else(|| {
                    from.rsplit_once('@')
                        .map_or("localhost", |(_, d)| d)
                        .to_ascii_lowercase()
                });
                let key =
                    crate::mail::DkimKey::read(&path, &selector, &domain).map_err(|problem| {
                        ConfigError::BadValue {
                            key: "dkim_key",
                            origin: path.display().to_string(),
                            problem,
                        }
                    })?;
                Some(key)
            }
            (Some(_), None) => return Err(missing_pair("dkim_selector", "dkim_key")),
            (None, Some(_)) => return Err(missing_pair("dkim_key", "dkim_selector")),
            (None, None) if self.dkim_domain.is_some() => {
                return Err(missing_pair("dkim_key", "dkim_domain"))
            }
            (None, None) => None,
        };
        Ok(MailSettings {
            relay,
            identity: SenderIdentity {
                organisation: self.organisation,
                postal_address: self.postal_address,
                from,
                reply_to: self.reply_to,
            },
            unsubscribe_mailto: self.unsubscribe_mailto,
            return_path: self.return_path,
            reports_secret: self.reports_secret,
            dkim,
            per_second: self.per_second,
        })
    }
}

/// The SMS keys as read, before they are checked together.
#[derive(Default)]
struct SmsKeys {
    url: Option<reqwest::Url>,
    account: Option<String>,
    auth_token: Option<Secret>,
    authorities: Option<PathBuf>,
    timeout: Option<i64>,
    connections: Option<i64>,
    from: Option<crate::sms::SenderId>,
    per_second: Option<u32>,
}

impl SmsKeys {
    fn settings(self) -> Result<crate::sms::SmsSettings, ConfigError> {
        let gateway = match (self.url, self.account, self.auth_token) {
            (Some(url), Some(account), Some(auth_token)) => {
                if self.from.is_none() {
                    return Err(missing_pair("sms_from", "sms_gateway_url"));
                }
                Some(crate::sms::Gateway {
                    url,
                    account,
                    auth_token,
                    authorities: self.authorities,
                    timeout: std::time::Duration::from_secs(self.timeout.unwrap_or(10) as u64),
                    connections: self.connections.unwrap_or(4) as usize,
                })
            }
            (Some(_), None, _) => return Err(missing_pair("sms_account", "sms_gateway_url")),
            (Some(_), _, None) => return Err(missing_pair("sms_auth_token", "sms_gateway_url")),
            (None, account, token) => {
                for (key, given) in [
                    ("sms_account", account.is_some()),
                    ("sms_auth_token", token.is_some()),
                    ("sms_gateway_ca", self.authorities.is_some()),
                    ("sms_timeout_seconds", self.timeout.is_some()),
                    ("sms_connections", self.connections.is_some()),
                ] {
                    if given {
                        return Err(missing_pair("sms_gateway_url", key));
                    }
                }
                None
            }
        };
        Ok(crate::sms::SmsSettings {
            gateway,
            from: self.from.unwrap_or_else(|| {
                crate::sms::SenderId::Alphanumeric(crate::sms::DEFAULT_SENDER.to_owned())
            }),
            per_second: self.per_second,
        })
    }
}

/// `host:port`, a host name or an IP address (IPv6 in brackets).
fn host_and_port(raw: &str) -> Result<(String, u16), String> {
    let wrong = || format!("{raw:?} is not a host and port such as smtp.example.org:587");
    let (host, port) = raw.rsplit_once(':').ok_or_else(wrong)?;
    let port: u16 = port.parse().ok().filter(|p| *p != 0).ok_or_else(wrong)?;
    let host = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => {
            v6.parse::<std::net::Ipv6Addr>().map_err(|_| wrong())?;
            v6.to_owned()
        }
        None => {
            let name_like = !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
            if !name_like {
                return Err(wrong());
            }
            host.to_owned()
        }
    };
    Ok((host, port))
}

fn mail_address(raw: &str) -> Result<(), String> {
    crate::mail::address(raw, "the value")
        .map(|_| ())
        .map_err(|_| format!("{raw:?} is not an email address"))
}

fn non_empty(raw: &str) -> Result<String, String> {
    if raw.is_empty() {
        Err("is empty".into())
    } else {
        Ok(raw.to_owned())
    }
}

fn missing_pair(missing: &'static str, given: &str) -> ConfigError {
    let why = match missing {
        "mail_relay" => "it only applies to a relay",
        "mail_from" => "a relay needs the address mail comes from",
        "mail_password" | "mail_username" => "the relay's login needs both",
        "checkpoint_key" => "checkpoints are signed with it",
        "checkpoint_url" => "the certificate authorities are those of the checkpoint URL's server",
        "dkim_selector" => "receivers find the public key by its selector",
        "dkim_key" => "only a signing key needs a selector and a domain",
        "sms_gateway_url" => "it only applies to a gateway",
        "sms_account" | "sms_auth_token" => "the gateway's login needs both",
        "sms_from" => "a gateway needs the sender id messages come from",
        _ => "a certificate needs its private key",
    };
    ConfigError::BadValue {
        key: missing,
        origin: "the configuration".into(),
        problem: format!("is required when {given} is set ({why})"),
    }
}

fn existing_file(raw: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(raw);
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!("{raw:?} is not a readable file"))
    }
}

fn bounded(raw: &str, min: i64, max: i64) -> Result<i64, String> {
    match raw.parse::<i64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        Ok(n) => Err(format!("{n} is outside the allowed range {min} to {max}")),
        Err(_) => Err(format!("{raw:?} is not a whole number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_run_on_sqlite_in_the_data_directory() {
        let config = Config::load(None, &HashMap::new()).unwrap();
        assert_eq!(config.bind.to_string(), "127.0.0.1:8443");
        assert_eq!(
            config.database(),
            DatabaseLocation::SqliteFile(PathBuf::from("assent-data/assent.db"))
        );
        assert_eq!(config.sessions, SessionPolicy::default());
    }

    #[test]
    fn the_environment_wins_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("assent.toml");
        std::fs::write(
            &file,
            "bind = \"0.0.0.0:9443\"\nsession_idle_minutes = 15\n",
        )
        .unwrap();
        let config = Config::load(Some(&file), &env(&[("ASSENT_BIND", "127.0.0.1:7443")])).unwrap();
        assert_eq!(config.bind.to_string(), "127.0.0.1:7443");
        assert_eq!(config.sessions.idle, Duration::minutes(15));
    }

    #[test]
    fn sqlite_flushes_as_configured_and_refuses_other_words() {
        let config = Config::load(None, &env(&[("ASSENT_SQLITE_SYNCHRONOUS", "full")])).unwrap();
        assert_eq!(config.sqlite_synchronous, SqliteSync::Full);
        assert_eq!(
            Config::load(None, &env(&[])).unwrap().sqlite_synchronous,
            SqliteSync::Normal
        );
        let error = Config::load(None, &env(&[("ASSENT_SQLITE_SYNCHRONOUS", "off")])).unwrap_err();
        assert_eq!(
            error.to_string(),
            "configuration key `sqlite_synchronous` (from environment variable ASSENT_SQLITE_SYNCHRONOUS): \"off\" is not one of: normal, full"
        );
    }

    #[test]
    fn a_bad_value_names_its_key_and_source() {
        let error =
            Config::load(None, &env(&[("ASSENT_SESSION_IDLE_MINUTES", "soon")])).unwrap_err();
        assert_eq!(
            error.to_string(),
            "configuration key `session_idle_minutes` (from environment variable ASSENT_SESSION_IDLE_MINUTES): \"soon\" is not a whole number"
        );
        let error =
            Config::load(None, &env(&[("ASSENT_DATABASE_URL", "mysql://secret@db")])).unwrap_err();
        assert!(error
            .to_string()
            .starts_with("configuration key `database_url`"));
        assert!(
            !error.to_string().contains("secret"),
            "a database URL is never echoed"
        );
    }

    /// A new checkpoint private key, written to `dir/checkpoint.pem`.
    fn checkpoint_key_in(dir: &std::path::Path) -> PathBuf {
        let key = dir.join("checkpoint.pem");
        std::fs::write(
            &key,
            crate::checkpoint::CheckpointKey::generate().private_pem(),
        )
        .unwrap();
        key
    }

    #[test]
    fn checkpoints_need_a_readable_ed25519_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = checkpoint_key_in(dir.path());
        let key_text = key.display().to_string();
        let config = Config::load(
            None,
            &env(&[
                ("ASSENT_CHECKPOINT_KEY", &key_text),
                ("ASSENT_CHECKPOINT_MINUTES", "15"),
            ]),
        )
        .unwrap();
        let checkpoints = config.checkpoints.unwrap();
        assert_eq!(checkpoints.key, key);
        assert_eq!(checkpoints.file, None);
        assert_eq!(checkpoints.every, std::time::Duration::from_secs(15 * 60));

        let not_a_key = dir.path().join("notes.txt");
        std::fs::write(&not_a_key, "hello").unwrap();
        let error = Config::load(
            None,
            &env(&[("ASSENT_CHECKPOINT_KEY", &not_a_key.display().to_string())]),
        )
        .unwrap_err();
        assert!(
            error.to_string().contains("is not an Ed25519 private key"),
            "{error}"
        );
        let error = Config::load(
            None,
            &env(&[("ASSENT_CHECKPOINT_FILE", "/var/log/checkpoints")]),
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "configuration key `checkpoint_key` (from the configuration): is required when checkpoint_file is set (checkpoints are signed with it)"
        );
    }

    #[test]
    fn a_checkpoint_url_must_be_https_needs_the_key_and_is_never_echoed() {
        let dir = tempfile::tempdir().unwrap();
        let key = checkpoint_key_in(dir.path());
        let key = key.display().to_string();
        let load = |pairs: &[(&str, &str)]| Config::load(None, &env(pairs));
        let url = "https://collector.example/checkpoints?token=kept-secret-19";
        let config = load(&[
            ("ASSENT_CHECKPOINT_KEY", &key),
            ("ASSENT_CHECKPOINT_URL", url),
        ])
        .unwrap();
        let checkpoints = config.checkpoints.clone().unwrap();
        assert_eq!(checkpoints.url.as_ref().map(Secret::expose), Some(url));
        assert_eq!(checkpoints.url_authorities, None);
        assert!(
            !format!("{config:?}").contains("kept-secret-19"),
            "the URL is not in debug output"
        );

        for bad in [
            "http://collector.example/checkpoints?token=kept-secret-19",
            "mailto:kept-secret-19@collector.example",
            "https://",
            "kept-secret-19",
        ] {
            let error = load(&[
                ("ASSENT_CHECKPOINT_KEY", &key),
                ("ASSENT_CHECKPOINT_URL", bad),
            ])
            .unwrap_err()
            .to_string();
            assert!(
                error.starts_with("configuration key `checkpoint_url`"),
                "{bad}: {error}"
            );
            assert!(!error.contains("kept-secret-19"), "{error}");
        }
        let error = load(&[("ASSENT_CHECKPOINT_URL", url)]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "configuration key `checkpoint_key` (from the configuration): is required when checkpoint_url is set (checkpoints are signed with it)"
        );
        let not_pem = dir.path().join("ca.pem");
        std::fs::write(&not_pem, "no certificates here").unwrap();
        let not_pem = not_pem.display().to_string();
        let error = load(&[
            ("ASSENT_CHECKPOINT_KEY", &key),
            ("ASSENT_CHECKPOINT_URL", url),
            ("ASSENT_CHECKPOINT_URL_CA", &not_pem),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            error.starts_with("configuration key `checkpoint_url_ca`")
                && error.contains("no PEM certificate"),
            "{error}"
        );
        crate::tls::load_or_generate(dir.path(), "127.0.0.1:0".parse().unwrap()).unwrap();
        let authorities = dir
            .path()
            .join("tls")
            .join("cert.pem")
            .display()
            .to_string();
        let config = load(&[
            ("ASSENT_CHECKPOINT_KEY", &key),
            ("ASSENT_CHECKPOINT_URL", url),
            ("ASSENT_CHECKPOINT_URL_CA", &authorities),
        ])
        .unwrap();
        assert_eq!(
            config
                .checkpoints
                .unwrap()
                .url_authorities
                .map(|p| p.display().to_string()),
            Some(authorities.clone())
        );
        let error = load(&[
            ("ASSENT_CHECKPOINT_KEY", &key),
            ("ASSENT_CHECKPOINT_URL_CA", &authorities),
        ])
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "configuration key `checkpoint_url` (from the configuration): is required when checkpoint_url_ca is set (the certificate authorities are those of the checkpoint URL's server)"
        );
    }

    #[test]
    fn a_dkim_key_needs_its_selector_and_signs_for_the_from_domain() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dkim.pem");
        let key = crate::checkpoint::CheckpointKey::generate();
        std::fs::write(&path, key.private_pem()).unwrap();
        let path_text = path.display().to_string();
        let config = Config::load(
            None,
            &env(&[
                ("ASSENT_DKIM_KEY", &path_text),
                ("ASSENT_DKIM_SELECTOR", "mail2026"),
                ("ASSENT_MAIL_FROM", "news@Harbour-Heating.example"),
            ]),
        )
        .unwrap();
        let dkim = config.mail.dkim.expect("a DKIM key");
        assert_eq!(
            (dkim.selector.as_str(), dkim.domain.as_str()),
            ("mail2026", "harbour-heating.example")
        );
        assert!(dkim.dns_record().starts_with("v=DKIM1; k=ed25519; p="));
        assert!(
            !format!("{dkim:?}").contains(&dkim.public),
            "Debug shows the selector and domain only"
        );
        let alone = Config::load(None, &env(&[("ASSENT_DKIM_KEY", &path_text)])).unwrap_err();
        assert_eq!(
            alone.to_string(),
            "configuration key `dkim_selector` (from the configuration): is required when dkim_key is set (receivers find the public key by its selector)"
        );
        std::fs::write(&path, "not a key").unwrap();
        let bad = Config::load(
            None,
            &env(&[
                ("ASSENT_DKIM_KEY", &path_text),
                ("ASSENT_DKIM_SELECTOR", "mail2026"),
            ]),
        )
        .unwrap_err();
        assert!(
            bad.to_string()
                .contains("is not a PKCS#8 PEM Ed25519 private key"),
            "{bad}"
        );
        assert!(Config::load(None, &env(&[("ASSENT_DKIM_SELECTOR", "mail 2026")])).is_err());
    }

    #[test]
    fn without_a_relay_mail_goes_to_the_maildir_from_a_local_address() {
        let config = Config::load(None, &HashMap::new()).unwrap();
        assert_eq!(config.mail.relay, None);
        assert_eq!(config.mail.identity.from, DEFAULT_MAIL_FROM);
        assert_eq!(config.mail.identity.organisation, None);
        let error = Config::load(
            None,
            &env(&[
                ("ASSENT_MAIL_USERNAME", "assent"),
                ("ASSENT_MAIL_PASSWORD", "relay-secret-77"),
            ]),
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "configuration key `mail_relay` (from the configuration): is required when mail_username is set (it only applies to a relay)"
        );
    }

    #[test]
    fn a_relay_is_read_whole_and_its_password_never_echoed() {
        let config = Config::load(
            None,
            &env(&[
                ("ASSENT_MAIL_RELAY", "smtp.harbour-heating.example:587"),
                ("ASSENT_MAIL_USERNAME", "assent"),
                ("ASSENT_MAIL_PASSWORD", " relay-secret-77"),
                ("ASSENT_MAIL_FROM", "news@harbour-heating.example"),
                ("ASSENT_MAIL_REPLY_TO", "hello@harbour-heating.example"),
                ("ASSENT_ORGANISATION_NAME", "Harbour Heating Ltd"),
                (
                    "ASSENT_ORGANISATION_POSTAL_ADDRESS",
                    "1 Quay Street, Bristol BS1 4DJ",
                ),
                ("ASSENT_MAIL_CONNECTIONS", "8"),
            ]),
        )
        .unwrap();
        let relay = config.mail.relay.clone().unwrap();
        assert_eq!(
            (relay.host.as_str(), relay.port),
            ("smtp.harbour-heating.example", 587)
        );
        assert_eq!(relay.security, crate::mail::Security::StartTls);
        assert_eq!(relay.hello_name, "harbour-heating.example");
        assert_eq!(relay.connections, 8);
        assert_eq!(relay.timeout, std::time::Duration::from_secs(30));
        let (user, password) = relay.credentials.unwrap();
        assert_eq!(
            (user.as_str(), password.expose()),
            ("assent", " relay-secret-77")
        );
        assert_eq!(
            config.mail.identity.organisation.as_deref(),
            Some("Harbour Heating Ltd")
        );
        assert!(!format!("{config:?}").contains("relay-secret-77"));

        let with = |pairs: &[(&str, &str)]| {
            let mut all = vec![
                ("ASSENT_MAIL_RELAY", "smtp.harbour-heating.example:587"),
                ("ASSENT_MAIL_FROM", "news@harbour-heating.example"),
            ];
            all.extend_from_slice(pairs);
            Config::load(None, &env(&all))
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        assert_eq!(
            with(&[("ASSENT_MAIL_FROM", "news at harbour")]),
            Err("configuration key `mail_from` (from environment variable ASSENT_MAIL_FROM): \"news at harbour\" is not an email address".into())
        );
        assert_eq!(
            with(&[("ASSENT_MAIL_RELAY", "smtp.harbour-heating.example")]),
            Err("configuration key `mail_relay` (from environment variable ASSENT_MAIL_RELAY): \"smtp.harbour-heating.example\" is not a host and port such as smtp.example.org:587".into())
        );
        assert_eq!(with(&[("ASSENT_MAIL_RELAY", "[::1]:25")]), Ok(()));
        assert!(with(&[("ASSENT_MAIL_SECURITY", "ssl")])
            .unwrap_err()
            .contains("is not one of: starttls, tls, plain"));
        assert_eq!(
            with(&[("ASSENT_MAIL_USERNAME", "assent")]),
            Err("configuration key `mail_password` (from the configuration): is required when mail_username is set (the relay's login needs both)".into())
        );
        let plain = with(&[
            ("ASSENT_MAIL_SECURITY", "plain"),
            ("ASSENT_MAIL_USERNAME", "assent"),
            ("ASSENT_MAIL_PASSWORD", "relay-secret-77"),
        ])
        .unwrap_err();
        assert!(
            plain.contains("would cross the network in plain"),
            "{plain}"
        );
        assert!(!plain.contains("relay-secret-77"));
        let error = Config::load(
            None,
            &env(&[("ASSENT_MAIL_RELAY", "smtp.harbour-heating.example:587")]),
        )
        .unwrap_err();
        assert!(error
            .to_string()
            .starts_with("configuration key `mail_from`"));
    }

    #[test]
    fn a_database_url_is_never_in_debug_output() {
        let config = Config::load(
            None,
            &env(&[(
                "ASSENT_DATABASE_URL",
                "postgres://assent:hunter2-secret@db.example:5432/assent",
            )]),
        )
        .unwrap();
        let shown = format!("{config:?} {:?}", config.database());
        assert!(!shown.contains("hunter2-secret"), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
        match config.database() {
            DatabaseLocation::Postgres(url) => assert!(url.expose().contains("hunter2-secret")),
            other => panic!("PostgreSQL expected, got {other:?}"),
        }
    }

    #[test]
    fn the_example_file_is_valid_and_matches_the_defaults() {
        let example =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../assent.example.toml");
        assert_eq!(
            Config::load(Some(&example), &HashMap::new()).unwrap(),
            Config::default()
        );
    }

    #[test]
    fn a_rate_limit_must_let_a_batch_be_handed_over_well_inside_its_lease() {
        // 50 a batch at 1 a second is 50 s: more than half of a 60 s lease.
        let slow = env(&[
            ("ASSENT_SMS_PER_SECOND", "1"),
            ("ASSENT_SEND_LEASE_SECONDS", "60"),
        ]);
        let error = Config::load(None, &slow).unwrap_err().to_string();
        assert!(
            error.contains("`sms_per_second`") && error.contains("50 s"),
            "{error}"
        );
        let fits = env(&[
            ("ASSENT_SMS_PER_SECOND", "1"),
            ("ASSENT_SEND_BATCH", "20"),
            ("ASSENT_SEND_LEASE_SECONDS", "60"),
        ]);
        assert_eq!(Config::load(None, &fits).unwrap().sms.per_second, Some(1));
        // Gateway settings without a gateway are refused, not ignored.
        let stray = env(&[("ASSENT_SMS_CONNECTIONS", "8")]);
        assert!(Config::load(None, &stray)
            .unwrap_err()
            .to_string()
            .contains("`sms_gateway_url`"));
    }

    #[test]
    fn unknown_keys_in_the_file_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("assent.toml");
        std::fs::write(&file, "bnid = \"0.0.0.0:9443\"\n").unwrap();
        assert!(matches!(
            Config::load(Some(&file), &HashMap::new()),
            Err(ConfigError::UnknownKey { .. })
        ));
    }

    #[test]
    fn a_certificate_needs_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        std::fs::write(&cert, "x").unwrap();
        let error =
            Config::load(None, &env(&[("ASSENT_TLS_CERT", cert.to_str().unwrap())])).unwrap_err();
        assert!(error.to_string().contains("`tls_key`"));
    }

    #[test]
    fn the_absolute_lifetime_cannot_be_shorter_than_the_idle_timeout() {
        let error = Config::load(
            None,
            &env(&[
                ("ASSENT_SESSION_IDLE_MINUTES", "120"),
                ("ASSENT_SESSION_ABSOLUTE_HOURS", "1"),
            ]),
        )
        .unwrap_err();
        assert!(error.to_string().contains("session_absolute_hours"));
    }
}
