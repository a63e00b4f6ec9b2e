//! Builds the running server: store, TLS identity, listener, router. `Application::build` binds
//! the listener before returning, so a test can start the real server on port 0 and ask its
//! address.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum_server::tls_rustls::RustlsConfig;
pub use axum_server::Handle as ShutdownHandle;
use axum_server::Handle;

use crate::api::{self, AppState};
use crate::auth::throttle::{LoginThrottle, ThrottleLimits};
use crate::checkpoint::CheckpointKey;
use crate::config::{Checkpoints, Config};
use crate::store::{Db, StoreError};
use crate::tls::{self, TlsError};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot open the database: {0}")]
    Store(#[from] StoreError),
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    #[error("checkpoints: {0}")]
    Checkpoint(#[from] crate::checkpoint::CheckpointError),
    #[error("checkpoint URL: {0}")]
    CheckpointUrl(#[from] crate::outbound::OutboundError),
    #[error("mail: {0}")]
    Mail(#[from] crate::mail::MailError),
    #[error("cannot listen on {bind}: {source}")]
    Bind {
        bind: SocketAddr,
        source: std::io::Error,
    },
}

pub struct Application {
    worker: crate::service::sending::Worker,
    listener: std::net::TcpListener,
    local_addr: SocketAddr,
    public_listener: std::net::TcpListener,
    public_addr: SocketAddr,
    public: crate::public::PublicState,
    fingerprint: String,
    certificate_pem: String,
    rustls: Arc<rustls::ServerConfig>,
    state: AppState,
    handle: Handle,
    checkpoints: Option<Checkpointer>,
}

/// What the periodic checkpoints need: where and how often, the key, and the URL's client.
struct Checkpointer {
    settings: Checkpoints,
    key: CheckpointKey,
    post_to: Option<(reqwest::Client, reqwest::Url)>,
}

impl Application {
    pub async fn build(config: &Config) -> Result<Application, StartError> {
        tls::install_crypto_provider();
        std::fs::create_dir_all(&config.data_dir).map_err(|source| StartError::DataDir {
            path: config.data_dir.display().to_string(),
            source,
        })?;
        let checkpoints = match &config.checkpoints {
            Some(settings) => Some(Checkpointer {
                settings: settings.clone(),
                key: CheckpointKey::read(&settings.key)?,
                post_to: checkpoint_client(settings)?,
            }),
            None => None,
        };
        let outlet = crate::mail::Outlet::open(&config.mail, &config.data_dir)?;
        let sms_outlet = crate::sms::SmsOutlet::open(&config.sms, &config.data_dir)?;
        let db = Db::connect_with(&config.database(), config.sqlite_synchronous).await?;
        let identity = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => tls::load(cert, key)?,
            _ => tls::load_or_generate(&config.data_dir, config.bind)?,
        };
        let fingerprint = identity.fingerprint();
        let certificate_pem = identity.leaf_pem();
        let rustls = tls::server_config(identity)?;
        let (listener, local_addr) = listen(config.bind)?;
        let (public_listener, public_addr) = listen(config.public_bind)?;
        let state = AppState {
            db,
            sessions: config.sessions,
            throttle: Arc::new(LoginThrottle::new(ThrottleLimits::default())),
            mail: Arc::new(crate::api::Mail {
                outlet,
                settings: config.mail.clone(),
                sms_outlet,
                sms: config.sms.clone(),
            }),
            marketing_phrases: Arc::new(config.marketing_phrases.clone()),
            signups: Arc::new(crate::service::signups::Settings {
                confirm_for: chrono::Duration::days(config.signup_confirm_days),
                mail_interval: chrono::Duration::minutes(config.signup_mail_interval_minutes),
                message_id_domain: config.mail.identity.message_id_domain().to_owned(),
                public_url: config.public_url.clone(),
            }),
        };
        let public = crate::public::PublicState {
            db: state.db.clone(),
            organisation: config.mail.identity.organisation.clone(),
            public_url: config.public_url.clone(),
            unsubscribe_mailto: config.mail.unsubscribe_mailto.clone(),
            return_path: config.mail.return_path.clone(),
            reports_secret: config.mail.reports_secret.clone(),
            sms_auth_token: config.sms.gateway.as_ref().map(|g| g.auth_token.clone()),
            proxies: Arc::new(config.trusted_proxies.clone()),
            bad_tokens: Arc::new(crate::public::bad_token_throttle()),
            signups: state.signups.clone(),
            signup_throttle: Arc::new(LoginThrottle::per_address(
                crate::public::SIGNUP_WINDOW,
                config.signups_per_address,
            )),
            forms: Arc::new(crate::public::forms::FormKey::new(
                crate::store::keys::get_or_make(
                    &state.db,
                    crate::public::forms::KEY_NAME,
                    crate::clock::now(),
                )
                .await?,
            )),
        };
        let worker = crate::service::sending::Worker {
            name: format!("{}-{}", std::process::id(), uuid::Uuid::now_v7().simple()),
            batch: config.send_batch,
            lease: chrono::Duration::from_std(config.send_lease)
                .unwrap_or(chrono::Duration::minutes(2)),
            public_url: config.public_url.clone(),
            idle: Duration::from_millis(500),
            mail_pace: config
                .mail
                .per_second
                .map(|n| Arc::new(crate::service::sending::Pace::per_second(n))),
            sms_pace: config
                .sms
                .per_second
                .map(|n| Arc::new(crate::service::sending::Pace::per_second(n))),
        };
        Ok(Application {
            worker,
            listener,
            local_addr,
            public_listener,
            public_addr,
            public,
            fingerprint,
            certificate_pem,
            rustls,
            state,
            handle: Handle::new(),
            checkpoints,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Where the public pages are served.
    pub fn public_addr(&self) -> SocketAddr {
        self.public_addr
    }

    /// The SHA-256 fingerprint of the certificate the server presents.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The certificate the server presents, as PEM (for a client that pins it).
    pub fn certificate_pem(&self) -> &str {
        &self.certificate_pem
    }

    pub fn db(&self) -> &Db {
        &self.state.db
    }

    /// A handle that stops the server gracefully when asked.
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// Serves until the handle is told to shut down; in-flight requests get 10 seconds.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.state.mail.outlet.announce();
        self.state.mail.sms_outlet.announce();
        let app = api::app(self.state.clone());
        let (stop_sending, stopping) = tokio::sync::watch::channel(false);
        let mut sender = tokio::spawn(crate::service::sending::run(
            self.state.db.clone(),
            self.state.mail.clone(),
            self.state.marketing_phrases.clone(),
            self.worker,
            stopping,
        ));
        let checkpointer = self.checkpoints.map(|checkpointer| {
            tokio::spawn(write_checkpoints(self.state.db.clone(), checkpointer))
        });
        let public = crate::public::app(self.public);
        let tls = RustlsConfig::from_config(self.rustls);
        // Both listeners stop with the one handle; each serves only its own routes.
        let staff = axum_server::from_tcp_rustls(self.listener, tls.clone())
            .handle(self.handle.clone())
            .serve(app.into_make_service_with_connect_info::<SocketAddr>());
        let public = axum_server::from_tcp_rustls(self.public_listener, tls)
            .handle(self.handle)
            .serve(public.into_make_service_with_connect_info::<SocketAddr>());
        let (staff, public) = tokio::join!(staff, public);
        let result = staff.and(public);
        if let Some(task) = checkpointer {
            task.abort();
        }
        // The worker finishes the batch it is handing over and claims no more; one still running
        // after 10 seconds is stopped, and its rows become indeterminate when their lease ends.
        let _ = stop_sending.send(true);
        if tokio::time::timeout(Duration::from_secs(10), &mut sender)
            .await
            .is_err()
        {
            tracing::warn!(
                "the send worker did not finish its batch in time: its rows will be indeterminate"
            );
            sender.abort();
            // Cancelled, it drops the step it was handing over, which aborts that task too.
            let _ = sender.await;
        }
        self.state.mail.outlet.close().await;
        self.state.db.close().await;
        result
    }
}

/// A listener on `bind`, ready for the async server, and the address it got.
fn listen(bind: SocketAddr) -> Result<(std::net::TcpListener, SocketAddr), StartError> {
    let failed = |source| StartError::Bind { bind, source };
    let listener = std::net::TcpListener::bind(bind).map_err(failed)?;
    listener.set_nonblocking(true).map_err(failed)?;
    let address = listener.local_addr().map_err(failed)?;
    Ok((listener, address))
}

/// The client and URL checkpoints are POSTed to, when one is configured.
fn checkpoint_client(
    settings: &Checkpoints,
) -> Result<Option<(reqwest::Client, reqwest::Url)>, StartError> {
    let Some(url) = &settings.url else {
        return Ok(None);
    };
    // The configuration checked it is an https:// URL; the message does not echo it.
    let url = reqwest::Url::parse(url.expose()).map_err(|_| {
        crate::outbound::OutboundError::Client("the checkpoint URL is not a URL".into())
    })?;
    let authorities = settings.url_authorities.as_deref();
    let client = crate::outbound::client(authorities, Duration::from_secs(10))?;
    Ok(Some((client, url)))
}

/// Writes a checkpoint at start and then every `settings.every`: to the log, appended to the
/// checkpoint file as a line (flushed to disk), and POSTed to the checkpoint URL. A checkpoint
/// that cannot be taken or written is logged and the next one is tried on time; each one names
/// every head, so the next stands in for one that could not be sent.
async fn write_checkpoints(db: Db, checkpointer: Checkpointer) {
    let Checkpointer {
        settings,
        key,
        post_to,
    } = checkpointer;
    let mut ticks = tokio::time::interval(settings.every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The post of the last checkpoint, while it is still being tried: a newer one supersedes it.
    let mut posting: Option<tokio::task::JoinHandle<()>> = None;
    loop {
        ticks.tick().await;
        match crate::service::audit::checkpoint(&db, &key, crate::clock::now()).await {
            Ok(line) => {
                tracing::info!(target: "assent::checkpoint", checkpoint = %line, "audit checkpoint");
                if let Some(file) = &settings.file {
                    if let Err(e) = append_line(file, &line) {
                        tracing::error!(file = %file.display(), error = %e, "cannot write the audit checkpoint to its file");
                    }
                }
                if let Some((client, url)) = &post_to {
                    if let Some(previous) = posting.take() {
                        previous.abort();
                    }
                    let (client, url) = (client.clone(), url.clone());
                    posting = Some(tokio::spawn(async move {
                        post_checkpoint(&client, &url, line).await
                    }));
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot take an audit checkpoint"),
        }
    }
}

/// POSTs a checkpoint line to the checkpoint URL, trying again after 5 and 30 seconds (unless the
/// next checkpoint comes first and takes its place); logs (without the URL, which may hold a
/// token) what could not be sent.
async fn post_checkpoint(client: &reqwest::Client, url: &reqwest::Url, line: String) {
    let waits = [
        Duration::ZERO,
        Duration::from_secs(5),
        Duration::from_secs(30),
    ];
    for (attempt, wait) in waits.into_iter().enumerate() {
        tokio::time::sleep(wait).await;
        match crate::outbound::post_json(client, url, line.clone()).await {
            Ok(()) => return,
            Err(e) if attempt + 1 < waits.len() => {
                tracing::warn!(error = %e, "the audit checkpoint was not accepted by the checkpoint URL; trying again");
            }
            Err(e) => {
                tracing::error!(error = %e, "the audit checkpoint was not accepted by the checkpoint URL; the next one will carry its heads");
            }
        }
    }
}

/// Appends `line` to the checkpoint file. A last line that a crash cut short is ended first, so
/// that this checkpoint is a line of its own (`audit verify` passes over a torn last line, but
/// would refuse a checkpoint run together with one).
fn append_line(path: &std::path::Path, line: &str) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(path)?;
    let mut text = format!("{line}\n");
    let length = file.metadata()?.len();
    if length > 0 {
        let mut last = [0_u8; 1];
        file.seek(SeekFrom::Start(length - 1))?;
        file.read_exact(&mut last)?;
        if last[0] != b'\n' {
            text.insert(0, '\n');
        }
    }
    // In append mode every write goes to the end, wherever the read left the position.
    file.write_all(text.as_bytes())?;
    file.sync_data()
}

/// Asks `handle` to stop gracefully on SIGINT or SIGTERM. The handlers are in place when this
/// returns, so a signal sent right after start-up is not lost (nor kills the process outright).
pub fn stop_on_signals(handle: Handle) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        tokio::spawn(async move {
            tokio::select! {
                _ = interrupt.recv() => {},
                _ = terminate.recv() => {},
            }
            tracing::info!("stopping: finishing requests in flight");
            handle.graceful_shutdown(Some(Duration::from_secs(10)));
        });
    }
    #[cfg(not(unix))]
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        handle.graceful_shutdown(Some(Duration::from_secs(10)));
    });
    Ok(())
}
