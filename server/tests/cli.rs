//! The `assent-server` binary as an operator uses it: configuration errors, `create-user`,
//! `serve`, `seed`, `audit verify`, `audit checkpoint` and `audit keygen`, on a SQLite data
//! directory of its own.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_assent-server");
const PASSWORD: &str = "plum-orbit-canal-97";

fn command(data_dir: &Path) -> Command {
    let mut command = Command::new(BIN);
    command
        .env_clear()
        .env("ASSENT_DATA_DIR", data_dir)
        .env("ASSENT_BIND", "127.0.0.1:0")
        .env("ASSENT_PUBLIC_BIND", "127.0.0.1:0");
    command
}

fn run_with_stdin(mut command: Command, stdin: &str) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let written = child
        .stdin
        .take()
        .expect("stdin was piped above")
        .write_all(stdin.as_bytes());
    // A command refused before it reads stdin (a usage error) may exit first: the pipe is then
    // closed, which is that command's behaviour, not a failure of the test's plumbing.
    if let Err(error) = written {
        assert_eq!(
            error.kind(),
            std::io::ErrorKind::BrokenPipe,
            "write stdin: {error}"
        );
    }
    child.wait_with_output().expect("the binary ends")
}

/// Creates a sales user with [`PASSWORD`] at the command line, as an operator does.
fn create_sales_user(data_dir: &Path, email: &str) {
    let mut create = command(data_dir);
    create.args(["create-user", "--role", "sales", email]);
    assert!(run_with_stdin(create, &format!("{PASSWORD}\n"))
        .status
        .success());
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_bad_configuration_value_stops_the_start_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let output = command(dir.path())
        .env("ASSENT_BIND", "everywhere")
        .arg("serve")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert_eq!(
        text(&output.stderr).trim(),
        "assent-server: configuration key `bind` (from environment variable ASSENT_BIND): \"everywhere\" is not an address and port such as 127.0.0.1:8443"
    );
}

#[test]
fn create_user_reads_the_password_from_stdin_and_refuses_a_weak_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut weak = command(dir.path());
    weak.args(["create-user", "--role", "admin", "admin@example.org"]);
    let output = run_with_stdin(weak, "password1234\n");
    assert!(!output.status.success());
    assert!(text(&output.stderr).contains("password is one of the most commonly used passwords"));

    let mut strong = command(dir.path());
    strong.args([
        "create-user",
        "--role",
        "admin",
        "--role",
        "dpo",
        "admin@example.org",
    ]);
    let output = run_with_stdin(strong, &format!("{PASSWORD}\n"));
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("with roles: admin, dpo"));

    let count = command(dir.path()).arg("user-count").output().unwrap();
    assert_eq!(text(&count.stdout).trim(), "1");

    let mut bad_role = command(dir.path());
    bad_role.args(["create-user", "--role", "root", "x@example.org"]);
    let output = run_with_stdin(bad_role, &format!("{PASSWORD}\n"));
    assert_eq!(output.status.code(), Some(2), "a usage error");
}

#[test]
fn serve_prints_its_address_and_fingerprint_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = command(dir.path())
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let address = lines.next().unwrap().unwrap();
    assert!(
        address.starts_with("Assent is listening on https://127.0.0.1:"),
        "{address}"
    );
    let public = lines.next().unwrap().unwrap();
    assert!(
        public.starts_with("Public pages (unsubscribe links) on https://127.0.0.1:"),
        "{public}"
    );
    assert_ne!(
        address.rsplit(':').next(),
        public.rsplit(':').next(),
        "two listeners"
    );
    assert_eq!(lines.next().unwrap().unwrap(), "Database: sqlite");
    let fingerprint = lines.next().unwrap().unwrap();
    let hex = fingerprint
        .strip_prefix("Certificate SHA-256 fingerprint: ")
        .expect("a fingerprint line");
    assert_eq!(hex.split(':').count(), 32);
    assert!(lines.next().unwrap().unwrap().contains("no users yet"));
    assert!(dir.path().join("tls/cert.pem").is_file() && dir.path().join("assent.db").is_file());

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "a graceful stop exits 0");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the server stops on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert_eq!(rest.last().map(String::as_str), Some("Assent stopped."));

    // The second start reuses the certificate: the fingerprint a client pinned stays valid.
    let mut again = command(dir.path())
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(again.stdout.take().unwrap()).lines();
    lines.next();
    lines.next();
    lines.next();
    assert_eq!(lines.next().unwrap().unwrap(), fingerprint);
    again.kill().unwrap();
    again.wait().unwrap();
}

#[test]
fn audit_verify_passes_and_then_catches_a_row_altered_in_sql() {
    let dir = tempfile::tempdir().unwrap();
    create_sales_user(dir.path(), "jane@example.org");

    let output = command(dir.path())
        .args(["audit", "verify"])
        .output()
        .unwrap();
    assert!(output.status.success());
    assert_eq!(
        text(&output.stdout),
        "The audit trail is intact: 1 records, every link verified.\n\
         The consent ledgers are intact: 0 events, every link verified.\n\
         The communication log is intact: 0 warrants, every link verified.\n"
    );

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let url = format!("sqlite://{}", dir.path().join("assent.db").display());
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        sqlx::query("DROP TRIGGER audit_records_no_update")
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query("UPDATE audit_records SET action = 'user_read' WHERE chain_id = 1 AND seq = 1")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    });
    let output = command(dir.path())
        .args(["audit", "verify"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stdout).starts_with(
        "The audit trail is BROKEN in chain 1 at record 1: its contents do not match its hash"
    ));
}

/// `audit keygen` writing a key pair to `private` and `public`.
fn keygen(private: &Path, public: &Path) -> Output {
    Command::new(BIN)
        .env_clear()
        .args(["audit", "keygen", "--private"])
        .arg(private)
        .arg("--public")
        .arg(public)
        .output()
        .unwrap()
}

#[test]
fn a_checkpoint_from_the_command_line_is_checked_and_a_cut_off_end_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let (private, public) = (
        keys.path().join("checkpoint.pem"),
        keys.path().join("checkpoint.pub.pem"),
    );
    let made = keygen(&private, &public);
    assert!(made.status.success(), "{}", text(&made.stderr));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&private).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the private key is its owner's only");
    }
    // A public key that cannot be written leaves no private key behind.
    let lonely = keys.path().join("lonely.pem");
    let failed = keygen(
        &lonely,
        &keys.path().join("no-such-directory/lonely.pub.pem"),
    );
    assert_eq!(failed.status.code(), Some(1));
    assert!(
        text(&failed.stderr).contains("the private key was not kept"),
        "{}",
        text(&failed.stderr)
    );
    assert!(!lonely.exists());
    let again = keygen(&private, &public);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        text(&again.stderr).contains("cannot create"),
        "an existing key is never overwritten"
    );

    create_sales_user(dir.path(), "jane@example.org");
    create_sales_user(dir.path(), "sam@example.org");
    let taken = command(dir.path())
        .args(["audit", "checkpoint", "--key"])
        .arg(&private)
        .output()
        .unwrap();
    assert!(taken.status.success(), "{}", text(&taken.stderr));
    let file = keys.path().join("checkpoints.jsonl");
    std::fs::write(&file, &taken.stdout).unwrap();
    let verify = || {
        command(dir.path())
            .args(["audit", "verify", "--checkpoint"])
            .arg(&file)
            .arg("--public-key")
            .arg(&public)
            .output()
            .unwrap()
    };
    let intact = verify();
    assert!(intact.status.success(), "{}", text(&intact.stdout));
    assert!(text(&intact.stdout).contains("The database extends the checkpoint of"));

    // A server killed while appending leaves a torn last line: the one before it is checked.
    let whole = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, format!("{whole}{}", &whole[..40])).unwrap();
    let torn = verify();
    assert!(torn.status.success(), "{}", text(&torn.stderr));
    assert!(text(&torn.stderr).contains("the last line of the checkpoint file is incomplete"));
    // A whole last line that is not a checkpoint is refused, not passed over.
    std::fs::write(&file, format!("{whole}{}\n", &whole[..40])).unwrap();
    assert_eq!(verify().status.code(), Some(1));
    std::fs::write(&file, &whole).unwrap();

    // The second user's record goes, and the chain's head is set to the first.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let url = format!("sqlite://{}", dir.path().join("assent.db").display());
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        for sql in [
            "DROP TRIGGER audit_records_no_delete",
            "DROP TRIGGER audit_objects_no_delete",
            "DELETE FROM audit_objects WHERE seq = 2",
            "DELETE FROM audit_records WHERE seq = 2",
            "UPDATE audit_chains SET last_seq = 1, last_hash = (SELECT hash FROM audit_records WHERE seq = 1) WHERE id = 1",
        ] {
            sqlx::query(sql).execute(&pool).await.unwrap();
        }
        pool.close().await;
    });
    let cut = verify();
    assert_eq!(cut.status.code(), Some(1));
    let out = text(&cut.stdout);
    assert!(
        out.contains("The audit trail is intact: 1 records"),
        "{out}"
    );
    assert!(
        out.contains("does NOT extend the checkpoint")
            && out.contains("  - chain 1: record 2 is missing"),
        "{out}"
    );

    // A checkpoint altered in the file, or checked with another key, is refused as such.
    let other = keys.path().join("other.pub.pem");
    let other_private = keys.path().join("other.pem");
    assert!(keygen(&other_private, &other).status.success());
    let wrong_key = command(dir.path())
        .args(["audit", "verify", "--checkpoint"])
        .arg(&file)
        .arg("--public-key")
        .arg(&other)
        .output()
        .unwrap();
    assert_eq!(wrong_key.status.code(), Some(1));
    assert!(
        text(&wrong_key.stderr).contains("signature does not verify"),
        "{}",
        text(&wrong_key.stderr)
    );
    // A whole checkpoint of another key appended without a newline is refused, not passed over.
    let foreign = command(dir.path())
        .args(["audit", "checkpoint", "--key"])
        .arg(&other_private)
        .output()
        .unwrap();
    assert!(foreign.status.success());
    let whole = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        format!("{whole}{}", text(&foreign.stdout).trim_end()),
    )
    .unwrap();
    let appended = verify();
    assert_eq!(appended.status.code(), Some(1));
    assert!(
        text(&appended.stderr).contains("signature does not verify"),
        "{}",
        text(&appended.stderr)
    );
    std::fs::write(&file, &whole).unwrap();
    let without_key = command(dir.path())
        .args(["audit", "verify", "--checkpoint"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(without_key.status.code(), Some(1));
    assert!(text(&without_key.stderr).contains("--public-key"));
}

/// Starts `serve` writing checkpoints signed with `key` to `file` (its log piped), with the
/// further settings `more`, and waits until the file's text is `ready`.
fn serve_checkpointing(
    data_dir: &Path,
    key: &Path,
    file: &Path,
    more: &[(&str, String)],
    ready: impl Fn(&str) -> bool,
) -> std::process::Child {
    let child = command(data_dir)
        .env("ASSENT_CHECKPOINT_KEY", key)
        .env("ASSENT_CHECKPOINT_FILE", file)
        .envs(more.iter().map(|(name, value)| (name, value)))
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(file).is_ok_and(|t| ready(&t)) {
        assert!(Instant::now() < deadline, "the checkpoint was not written");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

#[test]
fn the_server_writes_a_signed_checkpoint_at_start_to_its_log_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let (private, public) = (
        dir.path().join("checkpoint.pem"),
        dir.path().join("checkpoint.pub.pem"),
    );
    assert!(keygen(&private, &public).status.success());
    create_sales_user(dir.path(), "jane@example.org");
    let file = dir.path().join("checkpoints.jsonl");
    let mut child =
        serve_checkpointing(dir.path(), &private, &file, &[], |t| t.lines().count() > 0);
    stop(&mut child);
    let mut log = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut log).unwrap();
    let line = std::fs::read_to_string(&file).unwrap();
    let key = assent_server::checkpoint::PublicKey::read(&public).unwrap();
    let statement = key.open(line.lines().next().unwrap()).unwrap();
    assert_eq!(statement.audit.seq_of(1), 1, "the user's creation");
    assert!(log.contains("audit checkpoint"), "{log}");
    let verify = command(dir.path())
        .env("ASSENT_CHECKPOINT_KEY", &private)
        .args(["audit", "verify", "--checkpoint"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(verify.status.success(), "{}", text(&verify.stdout));

    // A crash cut the last line short: the next start ends it before appending its own.
    let whole = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, format!("{whole}{}", &whole[..40])).unwrap();
    let mut again = serve_checkpointing(dir.path(), &private, &file, &[], |t| {
        t.ends_with('\n') && t.lines().count() >= 3
    });
    stop(&mut again);
    let text_now = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = text_now.lines().collect();
    assert_eq!(lines.len(), 3, "{text_now}");
    assert_eq!(lines[1], &whole[..40], "the torn line, ended");
    key.open(lines[2])
        .expect("the new checkpoint is a line of its own");
}

/// An HTTPS server on loopback, its certificate in `dir/tls/cert.pem`, that keeps the bodies
/// POSTed to /checkpoints (answering 201), after answering the first with 503 when `refuse_first`.
fn checkpoint_receiver(
    dir: &Path,
    refuse_first: bool,
) -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) {
    use axum_server::tls_rustls::RustlsConfig;
    assent_server::tls::install_crypto_provider();
    let identity =
        assent_server::tls::load_or_generate(dir, "127.0.0.1:0".parse().unwrap()).unwrap();
    let config = assent_server::tls::server_config(identity).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let address = listener.local_addr().unwrap();
    let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = received.clone();
    let refused_once = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(!refuse_first));
    let receive = move |body: String| {
        let (kept, refused_once) = (kept.clone(), refused_once.clone());
        async move {
            if !refused_once.swap(true, std::sync::atomic::Ordering::SeqCst) {
                return axum::http::StatusCode::SERVICE_UNAVAILABLE;
            }
            kept.lock().unwrap().push(body);
            axum::http::StatusCode::CREATED
        }
    };
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async move {
            // The test's own receiver, not a route of Assent's API (which registers through
            // routes!() so that its description has every route).
            #[allow(clippy::disallowed_methods)]
            let app = axum::Router::new().route("/checkpoints", axum::routing::post(receive));
            axum_server::from_tcp_rustls(listener, RustlsConfig::from_config(config))
                .serve(app.into_make_service())
                .await
                .unwrap();
        });
    });
    (address, received)
}

#[test]
fn the_server_posts_each_checkpoint_to_its_url_trying_again_when_refused() {
    let dir = tempfile::tempdir().unwrap();
    let private = dir.path().join("checkpoint.pem");
    assert!(keygen(&private, &dir.path().join("checkpoint.pub.pem"))
        .status
        .success());
    create_sales_user(dir.path(), "jane@example.org");
    let receiver_dir = tempfile::tempdir().unwrap();
    let (address, received) = checkpoint_receiver(receiver_dir.path(), true);
    let authorities = receiver_dir.path().join("tls").join("cert.pem");
    let file = dir.path().join("checkpoints.jsonl");
    let url = format!("https://{address}/checkpoints?token=collector-token-7f3a");
    let more = [
        ("ASSENT_CHECKPOINT_URL", url),
        (
            "ASSENT_CHECKPOINT_URL_CA",
            authorities.display().to_string(),
        ),
    ];
    let mut child = serve_checkpointing(dir.path(), &private, &file, &more, |t| {
        t.lines().count() > 0
    });
    // The first POST is refused; the second, 5 seconds later, is kept.
    let deadline = Instant::now() + Duration::from_secs(30);
    while received.lock().unwrap().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the checkpoint was not posted again"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    stop(&mut child);
    let mut log = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut log).unwrap();
    let line = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        received.lock().unwrap().as_slice(),
        [line.trim_end().to_owned()],
        "the line the file holds, posted once it was accepted"
    );
    // "answered 503", not a bare 503, which a log line's timestamp may hold.
    assert!(
        log.contains("trying again") && log.contains("answered 503"),
        "{log}"
    );
    assert!(
        !log.contains("collector-token-7f3a"),
        "the URL's token is not logged: {log}"
    );

    // A server whose certificate is not among the configured authorities gets nothing.
    let stranger_dir = tempfile::tempdir().unwrap();
    let (stranger, stranger_received) = checkpoint_receiver(stranger_dir.path(), false);
    let more = [
        (
            "ASSENT_CHECKPOINT_URL",
            format!("https://{stranger}/checkpoints"),
        ),
        (
            "ASSENT_CHECKPOINT_URL_CA",
            authorities.display().to_string(),
        ),
    ];
    let lines_before = std::fs::read_to_string(&file).unwrap().lines().count();
    let mut child = serve_checkpointing(dir.path(), &private, &file, &more, |t| {
        t.lines().count() > lines_before
    });
    std::thread::sleep(Duration::from_secs(1));
    stop(&mut child);
    let mut log = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut log).unwrap();
    assert!(
        stranger_received.lock().unwrap().is_empty(),
        "it would keep every post it is sent"
    );
    assert!(
        log.contains("trying again") && log.contains("certificate"),
        "the TLS refusal, in words: {log}"
    );
    assert!(!log.contains("answered 503"), "{log}");
}

#[test]
fn seed_needs_an_owner_then_writes_verifiable_ledgers_the_same_for_the_same_seed() {
    let dir = tempfile::tempdir().unwrap();
    let seed = |count: &str| {
        command(dir.path())
            .args(["seed", "--contacts", count, "--seed", "7"])
            .output()
            .unwrap()
    };
    let refused = seed("10");
    assert_eq!(refused.status.code(), Some(1));
    assert!(text(&refused.stderr).contains("create a user first"));

    create_sales_user(dir.path(), "jane@example.org");
    // 2,500 contacts: three batches, the last one partial.
    let first = seed("2500");
    assert!(first.status.success(), "{}", text(&first.stderr));
    let events = |output: &Output| -> u64 {
        let out = text(&output.stdout);
        let rest = out
            .strip_prefix("Created 2500 synthetic contacts with ")
            .unwrap_or_else(|| panic!("unexpected output: {out}"));
        rest.split(' ').next().unwrap().parse().unwrap()
    };
    let first_events = events(&first);
    assert!(
        first_events > 2500 * 5,
        "about ten events a contact: {first_events}"
    );
    let again = seed("2500");
    assert_eq!(
        events(&again),
        first_events,
        "the same seed makes the same ledgers"
    );

    let verify = command(dir.path())
        .args(["audit", "verify"])
        .output()
        .unwrap();
    assert!(verify.status.success());
    assert_eq!(
        text(&verify.stdout),
        format!(
            "The audit trail is intact: 7 records, every link verified.\n\
             The consent ledgers are intact: {} events, every link verified.\n\
             The communication log is intact: 0 warrants, every link verified.\n",
            2 * first_events
        )
    );
}

/// Starts `serve` on `data_dir` with debug logging to `server.log` there; returns the process, the
/// address it listens on and the log's path.
/// The server, logging to a file at debug level: the child, the staff API's address, the public
/// pages' address and the log's path.
fn serve_logged(data_dir: &Path) -> (std::process::Child, String, String, std::path::PathBuf) {
    let log_path = data_dir.join("server.log");
    let log_file = std::fs::File::create(&log_path).unwrap();
    let mut child = command(data_dir)
        .env("ASSENT_LOG_LEVEL", "debug")
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(log_file)
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
    // The rest of what it prints is read on, or its next line would meet a closed pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (child, address, public, log_path)
}

/// A client that trusts only the certificate the server generated in `data_dir`.
fn pinned_client(data_dir: &Path) -> reqwest::Client {
    assent_server::tls::install_crypto_provider();
    let pem = std::fs::read(data_dir.join("tls/cert.pem")).unwrap();
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap()
}

/// Stops a server as an operator does, with SIGTERM, and waits for it.
fn stop(child: &mut std::process::Child) {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
}

/// Starts `serve` with debug logging, logs in, creates and searches a contact whose every field
/// is a unique marker, stops the server, and looks for the markers in everything it logged.
#[test]
fn the_server_logs_no_personal_data_even_at_debug_level() {
    let dir = tempfile::tempdir().unwrap();
    let mut create = command(dir.path());
    create.args([
        "create-user",
        "--role",
        "sales",
        "--name",
        "Marker Userxq",
        "userxq@markers.example",
    ]);
    assert!(run_with_stdin(create, &format!("{PASSWORD}\n"))
        .status
        .success());

    let (mut child, address, public, log_path) = serve_logged(dir.path());
    // An unsubscribe token is a credential: the path that holds it is never logged.
    let link_token = format!("{:Z>43}", "ZQlinkToken");

    let markers = [
        "Zorblatt",
        "Quindlewhistle",
        "zq.marker@markers.example",
        "7400999111",
        "ZQ marker note",
        "userxq@markers.example",
    ];
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let token = runtime.block_on(async {
        let client = pinned_client(dir.path());
        let login: serde_json::Value = client
            .post(format!("{address}/api/v1/sessions"))
            .json(&serde_json::json!({"email": "userxq@markers.example", "password": PASSWORD, "device_name": "ZQ marker laptop"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = login["token"].as_str().expect("a token").to_owned();
        let created = client
            .post(format!("{address}/api/v1/contacts"))
            .bearer_auth(&token)
            .json(&serde_json::json!({
                "first_name": "Zorblatt", "last_name": "Quindlewhistle",
                "emails": ["zq.marker@markers.example"], "phones": ["07400 999111"], "notes": "ZQ marker note"
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), reqwest::StatusCode::CREATED);
        let found = client
            .get(format!("{address}/api/v1/contacts?q=Quindlewhistle"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(found.status(), reqwest::StatusCode::OK);
        let wrong = client
            .post(format!("{address}/api/v1/sessions"))
            .json(&serde_json::json!({"email": "userxq@markers.example", "password": "Zorblatt-wrong-pw", "device_name": "x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), reqwest::StatusCode::UNAUTHORIZED);
        let page = client
            .get(format!("{public}/u/{link_token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), reqwest::StatusCode::NOT_FOUND);
        let forwarded = client
            .post(format!("{public}/unsubscribe/mail"))
            .body(format!(
                "From: zq.marker@markers.example\r\nSubject: Unsubscribe {link_token}\r\n\r\n"
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(forwarded.status(), reqwest::StatusCode::NOT_FOUND);
        token
    });
    stop(&mut child);

    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.contains("served") && log.contains("DEBUG"),
        "the server did log its requests"
    );
    for marker in
        markers
            .iter()
            .copied()
            .chain([token.as_str(), "Zorblatt-wrong-pw", link_token.as_str()])
    {
        assert!(
            !log.contains(marker),
            "{marker:?} appears in the server log"
        );
    }
}

#[test]
fn policy_test_reports_each_scenario_errors_by_file_and_line_and_closes_with_the_tally() {
    let dir = tempfile::tempdir().unwrap();
    let pass = r#"{"id":"post-ok","now":"2025-09-01T09:00:00Z","subject":{"kind":"individual"},"events":[],"message":{"kind":"marketing","channel":"post","topic":"sofas"},"expect":{"allowed":true,"basis":"legitimate_interest"}}"#;
    let fail = r#"{"id":"post-wrong","now":"2025-09-01T09:00:00Z","subject":{"kind":"individual"},"events":[],"message":{"kind":"marketing","channel":"post","topic":"sofas"},"expect":{"allowed":false,"reason":"no_consent"}}"#;
    std::fs::write(dir.path().join("a.json"), pass).unwrap();
    std::fs::write(
        dir.path().join("b.jsonl"),
        format!("{pass}\n\n{{not json\n{fail}\n"),
    )
    .unwrap();
    std::fs::write(dir.path().join("ignored.txt"), "not a scenario").unwrap();
    let missing = dir.path().join("missing.json");

    let output = Command::new(BIN)
        .arg("policy-test")
        .arg(dir.path())
        .arg(&missing)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let report = text(&output.stdout);
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(lines[0], "PASS post-ok");
    assert_eq!(lines[1], "PASS post-ok");
    assert!(
        lines[2].starts_with(&format!(
            "ERROR {}:3: ",
            dir.path().join("b.jsonl").display()
        )),
        "{}",
        lines[2]
    );
    assert_eq!(lines[3], "FAIL post-wrong: expected not allowed (no_consent), got allowed (legitimate_interest) citing []");
    assert!(
        lines[4].starts_with(&format!("ERROR {}: ", missing.display())),
        "{}",
        lines[4]
    );
    assert_eq!(lines[5], "2 passed, 3 failed");

    let quiet = Command::new(BIN)
        .args(["policy-test", "--quiet"])
        .arg(dir.path().join("a.json"))
        .output()
        .unwrap();
    assert!(quiet.status.success());
    assert_eq!(text(&quiet.stdout), "1 passed, 0 failed\n");
}

/// A stored value that no longer reads back answers 500 with an incident id, and the log names the
/// table and the row but never quotes the value: here a ledger event altered in the database to
/// hold a person's name where its type should be.
#[test]
fn a_500_from_corrupt_stored_data_logs_no_personal_data() {
    let dir = tempfile::tempdir().unwrap();
    create_sales_user(dir.path(), "jane@example.org");
    let (mut child, address, _, log_path) = serve_logged(dir.path());
    let marker = "Zorblatt Quindlewhistle";
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (status, body) = runtime.block_on(async {
        let client = pinned_client(dir.path());
        let login: serde_json::Value = client
            .post(format!("{address}/api/v1/sessions"))
            .json(&serde_json::json!({"email": "jane@example.org", "password": PASSWORD, "device_name": "laptop"}))
            .send().await.unwrap().json().await.unwrap();
        let token = login["token"].as_str().unwrap().to_owned();
        let contact: serde_json::Value = client
            .post(format!("{address}/api/v1/contacts"))
            .bearer_auth(&token)
            .json(&serde_json::json!({"first_name": "Jane", "last_name": "Doe"}))
            .send().await.unwrap().json().await.unwrap();
        let ledger = format!("{address}/api/v1/contacts/{}/ledger", contact["id"].as_str().unwrap());
        let recorded = client
            .post(&ledger)
            .bearer_auth(&token)
            .json(&serde_json::json!({"at": "2025-01-01T00:00:00Z", "type": "tps_check", "registered": false}))
            .send().await.unwrap();
        assert_eq!(recorded.status(), reqwest::StatusCode::CREATED);
        // Someone with access to the database file alters the event.
        let db = sqlx::SqlitePool::connect(&format!("sqlite://{}", dir.path().join("assent.db").display())).await.unwrap();
        sqlx::query("DROP TRIGGER ledger_events_no_update").execute(&db).await.unwrap();
        sqlx::query("UPDATE ledger_events SET event = $1")
            .bind(format!("{{\"type\":\"{marker}\"}}"))
            .execute(&db).await.unwrap();
        db.close().await;
        let read = client.get(&ledger).bearer_auth(&token).send().await.unwrap();
        (read.status(), read.text().await.unwrap())
    });
    stop(&mut child);
    assert_eq!(status, reqwest::StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert!(body.contains("incident"), "{body}");
    assert!(!body.contains("Zorblatt"), "{body}");
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.contains("ledger_events") && log.contains("does not parse"),
        "the log says what broke: {log}"
    );
    assert!(
        !log.contains("Zorblatt"),
        "the stored value appears in the server log: {log}"
    );
}

/// Starts `serve` on `data_dir` with `env` besides; returns the process and its address.
fn serve_with(data_dir: &Path, env: &[(&str, &str)]) -> (std::process::Child, String) {
    let mut serve = command(data_dir);
    // ASSENT_DATABASE_URL, when given, comes in `env`.
    serve.envs(env.iter().copied()).arg("serve");
    let mut child = serve
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
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

/// One JSON request as `token`; the answer's status and body.
async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> (reqwest::StatusCode, serde_json::Value) {
    let mut request = client.request(method, url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let reply = request.send().await.unwrap();
    let status = reply.status();
    (status, reply.json().await.unwrap_or_default())
}

/// The Message-IDs of the messages in the maildir `data_dir/mail`.
fn maildir_message_ids(data_dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(data_dir.join("mail/new")) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let text = std::fs::read_to_string(e.path()).ok()?;
            text.lines()
                .find(|l| l.starts_with("Message-ID: "))
                .map(str::to_owned)
        })
        .collect()
}

/// The send pipeline's promise under SIGKILL: the server is killed at random moments while a
/// campaign sends, and restarted each time. Afterwards no Message-ID was delivered twice, every
/// recipient ended sent, failed, indeterminate or not sent, every `sent` row's message was
/// delivered, indeterminate rows are no more than the batches in flight at the kills, and the
/// audit trail verifies. `ASSENT_CRASH_KILLS` sets the number of kills (3 by default;
/// `scripts/bench-crash` runs 20).
#[test]
fn a_send_killed_at_random_moments_loses_nothing_and_sends_nothing_twice_on_sqlite() {
    send_killed_at_random_moments(None);
}

/// The same on PostgreSQL (a database of its own on `ASSENT_TEST_PG_URL`, which `scripts/test`
/// sets; skipped without it).
#[test]
fn a_send_killed_at_random_moments_loses_nothing_and_sends_nothing_twice_on_postgres() {
    let Ok(base) = std::env::var("ASSENT_TEST_PG_URL") else {
        eprintln!("ASSENT_TEST_PG_URL is not set: the PostgreSQL run is skipped");
        return;
    };
    use sqlx::Connection;
    let name = format!("assent_crash_{}", uuid::Uuid::now_v7().simple());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let admin = |sql: String| {
        let base = base.clone();
        runtime.block_on(async move {
            let mut conn = sqlx::PgConnection::connect(&base).await.unwrap();
            sqlx::query(&sql).execute(&mut conn).await.unwrap();
        })
    };
    admin(format!("CREATE DATABASE \"{name}\""));
    let url = format!(
        "{}/{name}",
        base.rsplit_once('/').map_or(base.as_str(), |(b, _)| b)
    );
    send_killed_at_random_moments(Some(&url));
    admin(format!("DROP DATABASE \"{name}\" WITH (FORCE)"));
}

fn send_killed_at_random_moments(database_url: Option<&str>) {
    use rand::Rng;
    let kills: usize = std::env::var("ASSENT_CRASH_KILLS")
        .ok()
        .and_then(|k| k.parse().ok())
        .unwrap_or(3);
    let contacts = 4000;
    let batch = 10;
    let dir = tempfile::tempdir().unwrap();
    let command = |data_dir: &Path| {
        let mut command = command(data_dir);
        if let Some(url) = database_url {
            command.env("ASSENT_DATABASE_URL", url);
        }
        command
    };
    for (email, roles) in [
        (
            "ada@harbour-heating.example",
            &["admin", "dpo", "sales"][..],
        ),
        ("mia@harbour-heating.example", &["manager"][..]),
    ] {
        let mut create = command(dir.path());
        create.arg("create-user");
        for role in roles {
            create.args(["--role", role]);
        }
        create.arg(email);
        assert!(run_with_stdin(create, &format!("{PASSWORD}\n"))
            .status
            .success());
    }
    let seeded = command(dir.path())
        .args(["seed", "--contacts", &contacts.to_string()])
        .output()
        .unwrap();
    assert!(seeded.status.success(), "{}", text(&seeded.stderr));
    let batch_text = batch.to_string();
    let mut env = vec![
        ("ASSENT_SEND_BATCH", batch_text.as_str()),
        ("ASSENT_SEND_LEASE_SECONDS", "1"),
        ("ASSENT_ORGANISATION_NAME", "Harbour Heating Ltd"),
        (
            "ASSENT_ORGANISATION_POSTAL_ADDRESS",
            "1 Quay Street, Bristol BS1 4DJ",
        ),
    ];
    if let Some(url) = database_url {
        env.push(("ASSENT_DATABASE_URL", url));
    }
    let (mut child, mut address) = serve_with(dir.path(), &env);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = pinned_client(dir.path());
    use reqwest::Method;
    let (ada, mia, campaign_id) = runtime.block_on(async {
        let login = |email: &'static str| {
            let (client, address) = (&client, &address);
            async move {
                let (_, body) = call(client, Method::POST, format!("{address}/api/v1/sessions"), None,
                    Some(serde_json::json!({"email": email, "password": PASSWORD, "device_name": "crash test"}))).await;
                body["token"].as_str().unwrap_or_else(|| panic!("a token: {body}")).to_owned()
            }
        };
        let ada = login("ada@harbour-heating.example").await;
        let mia = login("mia@harbour-heating.example").await;
        let (status, body) = call(&client, Method::PUT, format!("{address}/api/v1/topics"), Some(&ada), Some(serde_json::json!({"topics": [
            {"key": "boilers", "name": "Boilers", "description": "New boilers, fitted and serviced."}]}))).await;
        assert!(status.is_success(), "{body}");
        let (status, campaign) = call(&client, Method::POST, format!("{address}/api/v1/campaigns"), Some(&ada), Some(serde_json::json!({
            "name": "Winter boiler check",
            "message": {"kind": "marketing", "channel": "email", "topic": "boilers"},
            "subject": "Your boiler before winter",
            "body": "Dear {{first_name|customer}},\n\nBook your boiler check.\n\n[Unsubscribe]({{unsubscribe_url}})",
            "audience": "everyone"}))).await;
        assert!(status.is_success(), "{campaign}");
        let id = campaign["id"].as_str().unwrap().to_owned();
        let url = |step: &str| format!("{address}/api/v1/campaigns/{id}/{step}");
        let (status, submitted) = call(&client, Method::POST, url("submit"), Some(&ada), Some(serde_json::json!({"version": 1}))).await;
        assert!(status.is_success(), "{submitted}");
        let (_, preview) = call(&client, Method::GET, url("preview"), Some(&mia), None).await;
        let (status, approved) = call(&client, Method::POST, url("approve"), Some(&mia), Some(serde_json::json!({
            "version": submitted["version"], "content_hash": preview["content_hash"], "audience_hash": preview["audience_hash"]}))).await;
        assert!(status.is_success(), "{approved}");
        let (status, sending) = call(&client, Method::POST, url("send"), Some(&ada), Some(serde_json::json!({"version": approved["version"]}))).await;
        assert!(status.is_success(), "{sending}");
        (ada, mia, id)
    });
    let _ = mia;
    // Stopped as an operator stops it, mid-send: the worker finishes its batch, so after the
    // lease nothing is indeterminate.
    std::thread::sleep(Duration::from_millis(150));
    stop(&mut child);
    (child, address) = serve_with(dir.path(), &env);
    std::thread::sleep(Duration::from_millis(1500));
    let (_, after_stop) = runtime.block_on(call(
        &client,
        Method::GET,
        format!("{address}/api/v1/campaigns/{campaign_id}/progress"),
        Some(&ada),
        None,
    ));
    assert_eq!(
        after_stop["indeterminate"], 0,
        "a graceful stop leaves nothing indeterminate: {after_stop}"
    );
    let mut rng = rand::thread_rng();
    let mut mid_send = 0;
    for _ in 0..kills {
        std::thread::sleep(Duration::from_millis(rng.gen_range(20..300)));
        let (_, before) = runtime.block_on(call(
            &client,
            Method::GET,
            format!("{address}/api/v1/campaigns/{campaign_id}/progress"),
            Some(&ada),
            None,
        ));
        if before["state"] == "sending" {
            mid_send += 1;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        (child, address) = serve_with(dir.path(), &env);
    }
    assert!(
        mid_send > 0,
        "no kill came while the campaign was sending: make it larger"
    );
    let progress = runtime.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let (status, progress) = call(
                &client,
                Method::GET,
                format!("{address}/api/v1/campaigns/{campaign_id}/progress"),
                Some(&ada),
                None,
            )
            .await;
            assert!(status.is_success(), "{progress}");
            if progress["state"] == "sent" {
                return progress;
            }
            assert!(
                Instant::now() < deadline,
                "the campaign did not finish: {progress}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    stop(&mut child);
    let count = |key: &str| progress[key].as_u64().unwrap();
    assert_eq!(count("total"), contacts, "{progress}");
    assert_eq!(count("queued") + count("in_flight"), 0, "{progress}");
    assert!(count("sent") > 0, "{progress}");
    assert!(
        count("indeterminate") <= (kills * batch) as u64,
        "at most a batch in flight at each kill: {progress}"
    );
    let ids = maildir_message_ids(dir.path());
    eprintln!(
        "after {kills} kills ({mid_send} while sending): {progress}, {} messages in the maildir",
        ids.len()
    );
    let unique: std::collections::HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "a Message-ID was delivered twice");
    assert!(
        ids.len() as u64 >= count("sent")
            && ids.len() as u64 <= count("sent") + count("indeterminate"),
        "every sent message was delivered, and only sent or indeterminate ones: {} in the maildir, {progress}",
        ids.len()
    );
    let verify = command(dir.path())
        .args(["audit", "verify"])
        .output()
        .unwrap();
    assert!(verify.status.success(), "{}", text(&verify.stdout));
}
