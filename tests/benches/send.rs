//! W3 (issue 11): a 100,000-recipient email campaign to Postfix's smtp-sink on loopback, every
//! recipient decided again and given a warrant, on SQLite and on PostgreSQL, with DKIM off and
//! with Ed25519 DKIM on, beside what Postfix's own `smtp-source` pushes into the same kind of sink
//! in the same run (the machine's ceiling). The server is the release binary, run as an operator
//! runs it; its peak memory (VmHWM) is read from /proc. Run by `scripts/bench-send`, which builds
//! it; figures in docs/BENCHMARKS.md.
//!
//! Settings (environment): ASSENT_SERVER_BIN (the release server), ASSENT_BENCH_RECIPIENTS
//! (100000), ASSENT_BENCH_STORES ("sqlite postgres"), ASSENT_BENCH_PG
//! (postgres://postgres@127.0.0.1:5432), ASSENT_BENCH_BATCH (500), ASSENT_BENCH_CONNECTIONS (8).

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
    recipients: u64,
    sent: u64,
    not_sent: u64,
    seconds: f64,
    peak_rss_mb: f64,
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

/// Starts the server; it and its staff API's address.
fn serve(bin: &Path, data_dir: &Path, env: &[(String, String)]) -> (Child, String) {
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
    std::thread::spawn(move || lines.for_each(drop));
    (child, address)
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
) -> Run {
    let sink = SmtpSink::start_with(&[], false, 256);
    let mut env = env.to_vec();
    env.push((
        "ASSENT_MAIL_RELAY".into(),
        format!("127.0.0.1:{}", sink.port),
    ));
    let (mut child, address) = serve(bin, data_dir, &env);
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
        let started = Instant::now();
        call(&client, Method::POST, url("send"), Some(&ada), Some(json!({"version": approved["version"]}))).await;
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let progress = call(&client, Method::GET, url("progress"), Some(&ada), None).await;
            if progress["state"] == "sent" {
                let count = |k: &str| progress[k].as_u64().unwrap_or(0);
                return Run {
                    recipients: count("total"),
                    sent: count("sent"),
                    not_sent: count("not_sent"),
                    seconds: started.elapsed().as_secs_f64(),
                    peak_rss_mb: peak_rss_mb(pid),
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
        ] {
            let run = measure(
                &bin,
                data.path(),
                if dkim_on { &with_dkim } else { &env },
                message,
                body,
            );
            let messages_rate = run.sent as f64 / run.seconds;
            println!(
                "| {store} | {label} | {} | {} | {} | {} | {:.1} | {:.0} | {:.0} | {:.0}% | {:.0} |",
                if dkim_on { "Ed25519" } else { "off" },
                run.recipients, run.sent, run.not_sent, run.seconds,
                run.recipients as f64 / run.seconds, messages_rate,
                100.0 * messages_rate / ceiling_rate, run.peak_rss_mb
            );
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
}
