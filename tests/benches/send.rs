//! W3 (issue 11): a 100,000-recipient email campaign to Postfix's smtp-sink on loopback, every
//! recipient decided again and given a warrant, on SQLite and on PostgreSQL, with DKIM off and
//! with Ed25519 DKIM on, beside what Postfix's own `smtp-source` pushes into the same kind of sink
//! in the same run (the machine's ceiling). The server is the release binary, run as an operator
//! runs it; its peak memory (VmHWM) is read from /proc. Run by `scripts/bench-send`, which builds
//! it; figures in docs/BENCHMARKS.md.
//!
//! W5, last on each store: a marketing send like the first, during which 1,000 recipients the
//! first send allowed click the one-click unsubscribe (RFC 8058's POST, 16 at a time, spread over
//! the send). It reports their latency, and counts the messages that reached the sink (which keeps
//! each message in this run) for a person whose decision began after their opt-out's 200: the
//! target is 0.
//!
//! Settings (environment): ASSENT_SERVER_BIN (the release server), ASSENT_BENCH_RECIPIENTS
//! (100000), ASSENT_BENCH_STORES ("sqlite postgres"), ASSENT_BENCH_PG
//! (postgres://postgres@127.0.0.1:5432), ASSENT_BENCH_BATCH (500), ASSENT_BENCH_CONNECTIONS (8),
//! ASSENT_BENCH_UNSUBSCRIBES (1000; 0 leaves W5 out), ASSENT_BENCH_FLOOD (0: bad-token requests a
//! second against the public listener during W5, issue 12's flood figure),
//! ASSENT_BENCH_FLOOD_NEW_CONNECTIONS (1: a new TLS connection per flood request), ASSENT_BENCH_W3_RUNS ("1 2 3 4": which of
//! the W3 runs, by number: marketing, service, service with DKIM, marketing with DKIM; W5 takes
//! its recipients from the first marketing run, so it needs 1 or 4).

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use assent_server::mail::sink::SmtpSink;
use serde_json::{json, Value};

const PASSWORD: &str = "plum-orbit-canal-97";

fn setting(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// What one measured send did.
struct Run {
    campaign: uuid::Uuid,
    recipients: u64,
    sent: u64,
    not_sent: u64,
    seconds: f64,
    peak_rss_mb: f64,
    /// W5's figures, when the run had unsubscribes.
    unsubscribes: Option<Unsubscribes>,
    /// The flood of bad tokens beside them, when there was one.
    flood: Option<Flood>,
}

/// W5: the one-click unsubscribes posted during a send.
struct Unsubscribes {
    /// Each POST's time to its 200, in milliseconds, sorted.
    latencies_ms: Vec<f64>,
    /// Decided (and sent) before their opt-out committed.
    sent_before: u64,
    /// Not sent: their decision saw the opt-out.
    stopped: u64,
    /// Sent although their decision began after their opt-out's 200: must be 0.
    sent_after: u64,
}

/// The store the server runs on, opened by the driver to read what the API does not show (the
/// recipients' tokens, the warrants' times).
enum Store {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

macro_rules! on_store {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store {
            Store::Sqlite($pool) => $body,
            Store::Postgres($pool) => $body,
        }
    };
}

impl Store {
    async fn open(data_dir: &Path, database_url: Option<&str>) -> Store {
        match database_url {
            Some(url) => Store::Postgres(sqlx::PgPool::connect(url).await.unwrap()),
            None => Store::Sqlite(
                sqlx::sqlite::SqlitePoolOptions::new()
                    .connect_with(
                        sqlx::sqlite::SqliteConnectOptions::new()
                            .filename(data_dir.join("assent.db"))
                            .read_only(true),
                    )
                    .await
                    .unwrap(),
            ),
        }
    }

    /// The contacts the engine allowed in `campaign`, with when it decided them.
    async fn allowed(
        &self,
        campaign: uuid::Uuid,
    ) -> HashMap<uuid::Uuid, chrono::DateTime<chrono::Utc>> {
        let sql = "SELECT contact_id, decided_at FROM warrants WHERE campaign_id = $1 AND allowed";
        let rows: Vec<(uuid::Uuid, chrono::DateTime<chrono::Utc>)> = on_store!(self, pool => {
            sqlx::query_as(sql).bind(campaign).fetch_all(pool).await.unwrap()
        });
        rows.into_iter().collect()
    }

    /// The outbox rows of `campaign` (contact, unsubscribe token), in the order they are claimed.
    async fn tokens(&self, campaign: uuid::Uuid) -> Vec<(uuid::Uuid, String)> {
        let sql = "SELECT contact_id, token FROM outbox WHERE campaign_id = $1 ORDER BY next_attempt_at, id";
        on_store!(self, pool => {
            sqlx::query_as(sql).bind(campaign).fetch_all(pool).await.unwrap()
        })
    }
}

/// What the W5 run is given: the contacts to unsubscribe are drawn from those the engine allowed
/// in an earlier send of the same campaign to the same ledgers.
struct W5<'a> {
    allowed_before: &'a HashSet<uuid::Uuid>,
    count: usize,
    database_url: Option<&'a str>,
    /// How long the clicks are spread over: most of the earlier send's duration, so that they
    /// fall while it runs, some before and some after their recipient is decided.
    spread: Duration,
    /// Bad-token requests a second to flood the public listener with meanwhile (0: none).
    flood: u32,
    /// Whether each flood request makes a new connection (a TLS handshake each), rather than
    /// reusing kept-alive ones.
    flood_new_connections: bool,
}

/// What a flood of bad tokens did: requests answered, by status, over how long.
#[derive(Default)]
struct Flood {
    answered: u64,
    not_found: u64,
    throttled: u64,
    other: u64,
    seconds: f64,
}

/// Floods `public` with GETs of unsubscribe links whose tokens look right but are no one's, at
/// `rate` a second (a bounded generator: 64 workers, each on its own slots, a slot missed is
/// skipped), until `stop` turns.
async fn flood(
    public: String,
    pem: Vec<u8>,
    rate: u32,
    new_connections: bool,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Flood {
    const WORKERS: u32 = 64;
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap());
    if new_connections {
        builder = builder.pool_max_idle_per_host(0);
    }
    let client = builder.build().unwrap();
    let started = Instant::now();
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let (client, public, stop) = (client.clone(), public.clone(), stop.clone());
            tokio::spawn(async move {
                let mut tally = Flood::default();
                let every = Duration::from_secs_f64(f64::from(WORKERS) / f64::from(rate.max(1)));
                let mut slots = tokio::time::interval_at(
                    tokio::time::Instant::now() + every * w / WORKERS,
                    every,
                );
                slots.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                while !*stop.borrow() {
                    slots.tick().await;
                    // 43 characters of the token alphabet: looked up, found to be no one's.
                    let token = format!(
                        "{}{}",
                        uuid::Uuid::new_v4().simple(),
                        &uuid::Uuid::new_v4().simple().to_string()[..11]
                    );
                    match client.get(format!("{public}/u/{token}")).send().await {
                        Ok(reply) => {
                            tally.answered += 1;
                            match reply.status().as_u16() {
                                404 => tally.not_found += 1,
                                429 => tally.throttled += 1,
                                _ => tally.other += 1,
                            }
                            let _ = reply.bytes().await;
                        }
                        Err(_) => tally.other += 1,
                    }
                }
                tally
            })
        })
        .collect();
    let mut total = Flood::default();
    for worker in workers {
        let tally = worker.await.unwrap();
        total.answered += tally.answered;
        total.not_found += tally.not_found;
        total.throttled += tally.throttled;
        total.other += tally.other;
    }
    total.seconds = started.elapsed().as_secs_f64();
    total
}

/// The machine's ceiling: `smtp-source` pushing `messages` of `size` bytes over `sessions`
/// parallel sessions into a sink that keeps nothing; messages per second.
fn ceiling(messages: u64, size: u64, sessions: u32) -> f64 {
    let sink = SmtpSink::start_with(&[], false, 256);
    let started = Instant::now();
    let status = Command::new("/usr/sbin/smtp-source")
        .args(["-s", &sessions.to_string(), "-m", &messages.to_string()])
        .args([
            "-l",
            &size.to_string(),
            "-f",
            "news@harbour-heating.example",
        ])
        .args(["-t", "jane.doe@example.org"])
        .arg(format!("127.0.0.1:{}", sink.port))
        .status()
        .expect("smtp-source runs (Debian's postfix package)");
    assert!(status.success());
    messages as f64 / started.elapsed().as_secs_f64()
}

fn server(bin: &Path, data_dir: &Path, env: &[(String, String)]) -> Command {
    let mut command = Command::new(bin);
    command
        .env_clear()
        .env("ASSENT_DATA_DIR", data_dir)
        .env("ASSENT_BIND", "127.0.0.1:0")
        .env("ASSENT_PUBLIC_BIND", "127.0.0.1:0")
        .env("ASSENT_LOG_LEVEL", "warn")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    command
}

fn create_user(bin: &Path, data_dir: &Path, env: &[(String, String)], email: &str, roles: &[&str]) {
    let mut command = server(bin, data_dir, env);
    command.arg("create-user");
    for role in roles {
        command.args(["--role", role]);
    }
    let mut child = command
        .arg(email)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{PASSWORD}\n").as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "create-user {email}");
}

/// Starts the server; it, its staff API's address and its public pages' address.
fn serve(bin: &Path, data_dir: &Path, env: &[(String, String)]) -> (Child, String, String) {
    let mut child = server(bin, data_dir, env)
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let address = lines
        .next()
        .unwrap()
        .unwrap()
        .replace("Assent is listening on ", "");
    let public = lines
        .next()
        .unwrap()
        .unwrap()
        .replace("Public pages (unsubscribe links) on ", "");
    std::thread::spawn(move || lines.for_each(drop));
    (child, address, public)
}

fn peak_rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: Option<&str>,
    body: Option<Value>,
) -> Value {
    let mut request = client.request(method, url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("the server answers");
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{status}: {body}");
    body
}

/// Sends one campaign of `message` to everyone through a fresh sink; what it took.
fn measure(
    bin: &Path,
    data_dir: &Path,
    env: &[(String, String)],
    message: Value,
    body: &str,
    w5: Option<W5<'_>>,
) -> Run {
    // W5 counts the messages that reached the sink, so its sink keeps them.
    let sink = SmtpSink::start_with(&[], w5.is_some(), 256);
    let mut env = env.to_vec();
    env.push((
        "ASSENT_MAIL_RELAY".into(),
        format!("127.0.0.1:{}", sink.port),
    ));
    let (mut child, address, public) = serve(bin, data_dir, &env);
    let pid = child.id();
    let pem = std::fs::read(data_dir.join("tls/cert.pem")).unwrap();
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let run = runtime.block_on(async {
        use reqwest::Method;
        let login = |email: &'static str| {
            let (client, address) = (&client, &address);
            async move {
                let body = call(client, Method::POST, format!("{address}/api/v1/sessions"), None,
                    Some(json!({"email": email, "password": PASSWORD, "device_name": "send benchmark"}))).await;
                body["token"].as_str().unwrap().to_owned()
            }
        };
        let ada = login("ada@harbour-heating.example").await;
        let mia = login("mia@harbour-heating.example").await;
        call(&client, Method::PUT, format!("{address}/api/v1/topics"), Some(&ada), Some(json!({"topics": [
            {"key": "boilers", "name": "Boilers", "description": "New boilers, fitted and serviced."}]}))).await;
        let campaign = call(&client, Method::POST, format!("{address}/api/v1/campaigns"), Some(&ada), Some(json!({
            "name": "Winter boiler check", "message": message,
            "subject": "Your boiler before winter", "body": body, "audience": "everyone"}))).await;
        let id = campaign["id"].as_str().unwrap().to_owned();
        let url = |step: &str| format!("{address}/api/v1/campaigns/{id}/{step}");
        let submitted = call(&client, Method::POST, url("submit"), Some(&ada), Some(json!({"version": campaign["version"]}))).await;
        let preview = call(&client, Method::GET, url("preview"), Some(&mia), None).await;
        let approved = call(&client, Method::POST, url("approve"), Some(&mia), Some(json!({
            "version": submitted["version"], "content_hash": preview["content_hash"], "audience_hash": preview["audience_hash"]}))).await;
        let campaign: uuid::Uuid = id.parse().unwrap();
        let started = Instant::now();
        call(&client, Method::POST, url("send"), Some(&ada), Some(json!({"version": approved["version"]}))).await;
        let store = match &w5 {
            Some(w5) => Some(Store::open(data_dir, w5.database_url).await),
            None => None,
        };
        let (stop_flood, flood_stops) = tokio::sync::watch::channel(false);
        let flooding = match &w5 {
            Some(w5) if w5.flood > 0 => Some(tokio::spawn(flood(public.clone(), pem.clone(), w5.flood, w5.flood_new_connections, flood_stops))),
            _ => None,
        };
        let clicks = match (&w5, &store) {
            (Some(w5), Some(store)) => Some(unsubscribe_during(&client, &public, store, campaign, w5).await),
            _ => None,
        };
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let progress = call(&client, Method::GET, url("progress"), Some(&ada), None).await;
            if progress["state"] == "sent" {
                let count = |k: &str| progress[k].as_u64().unwrap_or(0);
                let seconds = started.elapsed().as_secs_f64();
                let unsubscribes = match (clicks, &store) {
                    (Some(clicks), Some(store)) => Some(judge(clicks, store, campaign, &sink).await),
                    _ => None,
                };
                let _ = stop_flood.send(true);
                let flood = match flooding {
                    Some(task) => Some(task.await.unwrap()),
                    None => None,
                };
                return Run {
                    campaign,
                    recipients: count("total"),
                    sent: count("sent"),
                    not_sent: count("not_sent"),
                    seconds,
                    peak_rss_mb: peak_rss_mb(pid),
                    unsubscribes,
                    flood,
                };
            }
        }
    });
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = child.wait();
    drop(sink);
    run
}

/// A click still running: the contact, and the task that answers with its latency and when its
/// 200 came.
type Click = (
    uuid::Uuid,
    tokio::task::JoinHandle<(f64, chrono::DateTime<chrono::Utc>)>,
);

/// Posts the one-click unsubscribe of `w5.count` recipients of `campaign` whom the engine allowed
/// before, spread over the send in the order their rows are claimed, 16 at a time.
async fn unsubscribe_during(
    client: &reqwest::Client,
    public: &str,
    store: &Store,
    campaign: uuid::Uuid,
    w5: &W5<'_>,
) -> Vec<Click> {
    let rows: Vec<(uuid::Uuid, String)> = store
        .tokens(campaign)
        .await
        .into_iter()
        .filter(|(contact, _)| w5.allowed_before.contains(contact))
        .collect();
    let step = (rows.len() / w5.count.max(1)).max(1);
    let gap = w5.spread / w5.count.max(1) as u32;
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(16));
    rows.into_iter()
        .step_by(step)
        .take(w5.count)
        .enumerate()
        .map(|(i, (contact, token))| {
            let (client, gate) = (client.clone(), gate.clone());
            let url = format!("{public}/u/{token}");
            let task = tokio::spawn(async move {
                // Spread over the send, in the order the rows are claimed.
                tokio::time::sleep(gap * i as u32).await;
                let _slot = gate.acquire().await.unwrap();
                let sent = Instant::now();
                let reply = client
                    .post(&url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body("List-Unsubscribe=One-Click")
                    .send()
                    .await
                    .expect("the public pages answer");
                assert!(
                    reply.status().is_success(),
                    "one-click unsubscribe: {}",
                    reply.status()
                );
                (sent.elapsed().as_secs_f64() * 1000.0, chrono::Utc::now())
            });
            (contact, task)
        })
        .collect()
}

/// Waits for the clicks and judges them against the warrants and the messages the sink kept.
async fn judge(
    clicks: Vec<Click>,
    store: &Store,
    campaign: uuid::Uuid,
    sink: &SmtpSink,
) -> Unsubscribes {
    let decided = store.allowed(campaign).await;
    let reached: HashSet<String> = sink
        .received()
        .iter()
        .filter_map(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("Message-ID: <"))
                .map(|id| id.to_owned())
        })
        .collect();
    let mut latencies_ms = Vec::with_capacity(clicks.len());
    let (mut sent_before, mut stopped, mut sent_after) = (0, 0, 0);
    for (contact, task) in clicks {
        let (latency, answered) = task.await.expect("a click");
        latencies_ms.push(latency);
        let message_id = format!("{}.{}@", campaign.simple(), contact.simple());
        let in_sink = reached.iter().any(|id| id.starts_with(&message_id));
        match (in_sink, decided.get(&contact)) {
            (false, _) => stopped += 1,
            (true, Some(at)) if *at < answered => sent_before += 1,
            (true, decided_at) => {
                eprintln!("W5: sent after the opt-out: contact {contact}, decided {decided_at:?}, opt-out answered {answered}");
                sent_after += 1
            }
        }
    }
    latencies_ms.sort_by(f64::total_cmp);
    Unsubscribes {
        latencies_ms,
        sent_before,
        stopped,
        sent_after,
    }
}

fn main() {
    let bin =
        std::path::PathBuf::from(setting("ASSENT_SERVER_BIN", "target/release/assent-server"));
    assert!(
        bin.exists(),
        "{} is missing: scripts/bench-send builds it",
        bin.display()
    );
    let recipients: u64 = setting("ASSENT_BENCH_RECIPIENTS", "100000")
        .parse()
        .unwrap();
    let stores = setting("ASSENT_BENCH_STORES", "sqlite postgres");
    let pg = setting("ASSENT_BENCH_PG", "postgres://postgres@127.0.0.1:5432");
    let batch = setting("ASSENT_BENCH_BATCH", "500");
    let connections = setting("ASSENT_BENCH_CONNECTIONS", "8");
    let unsubscribes: usize = setting("ASSENT_BENCH_UNSUBSCRIBES", "1000")
        .parse()
        .unwrap();
    let flood_rate: u32 = setting("ASSENT_BENCH_FLOOD", "0").parse().unwrap();
    let flood_new_connections = setting("ASSENT_BENCH_FLOOD_NEW_CONNECTIONS", "0") == "1";
    let mut flood_lines = Vec::new();
    let w3_runs: Vec<usize> = setting("ASSENT_BENCH_W3_RUNS", "1 2 3 4")
        .split_whitespace()
        .map(|n| {
            n.parse()
                .expect("ASSENT_BENCH_W3_RUNS lists run numbers, 1 to 4")
        })
        .collect();
    let mut w5_lines = Vec::new();
    let key_dir = tempfile::tempdir().unwrap();
    let key_path = key_dir.path().join("dkim.pem");
    let key = assent_server::checkpoint::CheckpointKey::generate();
    std::fs::write(&key_path, key.private_pem()).unwrap();

    let size = 2600;
    let sessions: u32 = connections.parse().unwrap();
    let ceiling_rate = ceiling(recipients, size, sessions);
    println!("smtp-source ceiling: {recipients} messages of {size} bytes over {sessions} sessions: {ceiling_rate:.0} messages/s");
    println!("| store | campaign | DKIM | recipients | sent | not sent | seconds | recipients/s | messages/s | of the ceiling | peak RSS MB |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for store in stores.split_whitespace() {
        let data = tempfile::tempdir().unwrap();
        let mut env: Vec<(String, String)> = vec![
            (
                "ASSENT_ORGANISATION_NAME".into(),
                "Harbour Heating Ltd".into(),
            ),
            (
                "ASSENT_ORGANISATION_POSTAL_ADDRESS".into(),
                "1 Quay Street, Bristol BS1 4DJ".into(),
            ),
            (
                "ASSENT_MAIL_FROM".into(),
                "news@harbour-heating.example".into(),
            ),
            ("ASSENT_MAIL_SECURITY".into(), "plain".into()),
            ("ASSENT_MAIL_CONNECTIONS".into(), connections.clone()),
            ("ASSENT_SEND_BATCH".into(), batch.clone()),
        ];
        let mut database = None;
        let mut database_url: Option<String> = None;
        if store == "postgres" {
            let name = format!("assent_bench_send_{}", uuid::Uuid::now_v7().simple());
            let admin = Command::new("psql")
                .args([
                    &format!("{pg}/postgres"),
                    "-qc",
                    &format!("CREATE DATABASE {name}"),
                ])
                .status()
                .expect("psql runs");
            assert!(admin.success());
            env.push(("ASSENT_DATABASE_URL".into(), format!("{pg}/{name}")));
            database_url = Some(format!("{pg}/{name}"));
            database = Some(name);
        }
        create_user(
            &bin,
            data.path(),
            &env,
            "ada@harbour-heating.example",
            &["admin", "dpo", "sales"],
        );
        create_user(
            &bin,
            data.path(),
            &env,
            "mia@harbour-heating.example",
            &["manager"],
        );
        let seeded = Instant::now();
        let status = server(&bin, data.path(), &env)
            .args(["seed", "--contacts", &recipients.to_string()])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "seed");
        eprintln!(
            "{store}: seeded {recipients} contacts in {:.0} s",
            seeded.elapsed().as_secs_f64()
        );
        let marketing = json!({"kind": "marketing", "channel": "email", "topic": "boilers"});
        let service = json!({"kind": "service", "channel": "email"});
        let marketing_body = "Dear {{first_name|customer}},\n\nYour **boiler** is due its check before winter. [Book a visit](https://harbour-heating.example/book).\n\n[Unsubscribe]({{unsubscribe_url}})";
        let service_body = "Dear {{first_name|customer}},\n\nYour boiler check is booked for Tuesday between 8am and noon. Reply to this email to change it.";
        let dkim = [
            ("ASSENT_DKIM_KEY".to_owned(), key_path.display().to_string()),
            ("ASSENT_DKIM_SELECTOR".to_owned(), "mail2026".to_owned()),
        ];
        let with_dkim: Vec<(String, String)> =
            env.iter().cloned().chain(dkim.iter().cloned()).collect();
        let mut first_marketing = None;
        for (label, message, body, dkim_on) in [
            (
                "marketing (seeded ledgers)",
                marketing.clone(),
                marketing_body,
                false,
            ),
            (
                "service (everyone allowed)",
                service.clone(),
                service_body,
                false,
            ),
            ("service (everyone allowed)", service, service_body, true),
            (
                "marketing (seeded ledgers)",
                marketing,
                marketing_body,
                true,
            ),
        ]
        .into_iter()
        .enumerate()
        .filter(|(i, _)| w3_runs.contains(&(i + 1)))
        .map(|(_, run)| run)
        {
            let marketing_run = label.starts_with("marketing");
            let run = measure(
                &bin,
                data.path(),
                if dkim_on { &with_dkim } else { &env },
                message,
                body,
                None,
            );
            if marketing_run && first_marketing.is_none() {
                first_marketing = Some((run.campaign, run.seconds));
            }
            let messages_rate = run.sent as f64 / run.seconds;
            println!(
                "| {store} | {label} | {} | {} | {} | {} | {:.1} | {:.0} | {:.0} | {:.0}% | {:.0} |",
                if dkim_on { "Ed25519" } else { "off" },
                run.recipients, run.sent, run.not_sent, run.seconds,
                run.recipients as f64 / run.seconds, messages_rate,
                100.0 * messages_rate / ceiling_rate, run.peak_rss_mb
            );
        }
        if let (Some((first, seconds)), true) = (first_marketing, unsubscribes > 0) {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            let allowed_before: HashSet<uuid::Uuid> = runtime.block_on(async {
                let store = Store::open(data.path(), database_url.as_deref()).await;
                store.allowed(first).await.into_keys().collect()
            });
            drop(runtime);
            let run = measure(
                &bin,
                data.path(),
                &env,
                json!({"kind": "marketing", "channel": "email", "topic": "boilers"}),
                marketing_body,
                Some(W5 {
                    allowed_before: &allowed_before,
                    count: unsubscribes,
                    database_url: database_url.as_deref(),
                    spread: Duration::from_secs_f64(seconds * 0.8),
                    flood: flood_rate,
                    flood_new_connections,
                }),
            );
            if let Some(u) = run.unsubscribes {
                let at = |q: f64| {
                    u.latencies_ms[((u.latencies_ms.len() as f64 - 1.0) * q).round() as usize]
                };
                if let Some(f) = &run.flood {
                    flood_lines.push(format!(
                        "| {store} | {} | {flood_rate} | {:.0} | {} | {} | {} | {:.1} | {:.1} | {:.1} | {} |",
                        if flood_new_connections { "a new TLS connection each" } else { "kept alive" },
                        f.answered as f64 / f.seconds,
                        f.not_found,
                        f.throttled,
                        f.other,
                        at(0.5),
                        at(0.99),
                        at(1.0),
                        u.latencies_ms.len(),
                    ));
                }
                w5_lines.push(format!(
                    "| {store} | {} | {:.1} | {:.1} | {:.1} | {} | {} | **{}** | {:.1} | {} |",
                    u.latencies_ms.len(),
                    at(0.5),
                    at(0.99),
                    at(1.0),
                    u.sent_before,
                    u.stopped,
                    u.sent_after,
                    run.seconds,
                    run.sent
                ));
            }
        }
        if let Some(name) = database {
            let _ = Command::new("psql")
                .args([
                    &format!("{pg}/postgres"),
                    "-qc",
                    &format!("DROP DATABASE {name} WITH (FORCE)"),
                ])
                .status();
        }
    }
    if !w5_lines.is_empty() {
        println!();
        println!(
            "W5: one-click unsubscribes during a marketing send (the sink keeps every message)"
        );
        println!("| store | unsubscribes | p50 ms | p99 ms | max ms | sent before their opt-out | stopped | sent after their opt-out's 200 | send seconds | sent |");
        println!("|---|---|---|---|---|---|---|---|---|---|");
        for line in &w5_lines {
            println!("{line}");
        }
    }
    if !flood_lines.is_empty() {
        println!();
        println!("The public listener flooded with bad tokens during W5 (every unsubscribe must still succeed)");
        println!("| store | connections | flood target/s | answered/s | 404 | 429 | failed | unsubscribe p50 ms | p99 ms | max ms | unsubscribes, all 200 |");
        println!("|---|---|---|---|---|---|---|---|---|---|---|");
        for line in &flood_lines {
            println!("{line}");
        }
    }
}
