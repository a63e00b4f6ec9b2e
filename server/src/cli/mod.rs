//! The `assent-server` command line: `serve`, `create-user`, `user-count`, `seed`, `policy-test`,
//! `bench`, and `audit verify | checkpoint | keygen`.

mod policy_test;

use std::collections::HashMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use assent_shared::api::NewUser;
use assent_shared::domain::Role;
use clap::{Parser, Subcommand};

use assent_shared::domain::SystemJob;

use crate::checkpoint::{CheckpointError, CheckpointKey, PublicKey, Statement};
use crate::config::Config;
use crate::service::{self, Actor, ServiceError};
use crate::startup::{self, Application};
use crate::store::{audit::Verification, Db};

#[derive(Parser)]
#[command(name = "assent-server", version, about = "The Assent CRM server")]
struct Cli {
    /// A TOML configuration file (also ASSENT_CONFIG). Environment variables ASSENT_* override it.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the HTTPS server.
    Serve,
    /// Create a user. The password is read from a prompt, or from the first line of standard
    /// input when it is not a terminal.
    CreateUser {
        /// A role: sales, manager, admin or dpo. Repeat for several.
        #[arg(long = "role", required = true, value_parser = parse_role)]
        roles: Vec<Role>,
        /// The name shown for the user (default: the part of the address before the @).
        #[arg(long)]
        name: Option<String>,
        /// The user's email address, used to log in.
        email: String,
    },
    /// Print how many users exist (0 before the first administrator is created).
    UserCount,
    /// Create COUNT synthetic contacts ("Synthetic Person 17") with seeded, realistic consent
    /// ledgers (about ten events each), owned by the first user: data for trying Assent out and
    /// for benchmarks, written a thousand contacts a transaction with one audit record each.
    /// Never run it on a production database.
    Seed {
        #[arg(long)]
        contacts: u64,
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// Run compliance scenarios (SCENARIOS.md) through the decision engine: files, or directories
    /// of *.json and *.jsonl files. Exits non-zero if any fails or cannot be read.
    PolicyTest {
        /// Print only failures and the closing line.
        #[arg(long)]
        quiet: bool,
        #[arg(required = true, value_name = "FILE|DIR")]
        paths: Vec<PathBuf>,
    },
    /// Benchmarks (run them on a release build: `cargo run --release -p assent-server -- bench ...`).
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
    /// Work with the audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Decisions per second of the pure engine on one thread, over seeded realistic ledgers.
    Engine {
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// Write COUNT generated scenarios as JSON Lines, for timing `policy-test`. Their expectations
    /// are the engine's own answers: a load, not a test of correctness.
    Scenarios {
        count: usize,
        out: PathBuf,
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Walk the hash chains of the audit trail and of every consent ledger, and name the first
    /// broken link, if any. With --checkpoint, also prove that the database still extends the
    /// last checkpoint in FILE, and name what is missing or rewritten.
    Verify {
        /// A file of checkpoint lines (the server's checkpoint_file, or saved output of `audit
        /// checkpoint`); the last line is checked.
        #[arg(long, value_name = "FILE")]
        checkpoint: Option<PathBuf>,
        /// The public key (SPKI PEM) the checkpoint is checked with (default: the public half
        /// of the configured checkpoint_key). An auditor passes the copy they keep.
        #[arg(long, value_name = "FILE", requires = "checkpoint")]
        public_key: Option<PathBuf>,
    },
    /// Print a signed checkpoint of where every chain stands (one line of JSON).
    Checkpoint {
        /// The private key (PKCS#8 PEM) to sign with (default: the configured checkpoint_key).
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
    },
    /// Make a new checkpoint key pair: the private key (written readable by its owner only)
    /// and the public key that checks its checkpoints. Neither file may exist yet.
    Keygen {
        #[arg(long, value_name = "FILE")]
        private: PathBuf,
        #[arg(long, value_name = "FILE")]
        public: PathBuf,
    },
}

fn parse_role(text: &str) -> Result<Role, String> {
    text.parse::<Role>().map_err(|e| format!("{text:?} {e}"))
}

/// Runs the command line and returns the process exit code.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    // The engine needs no configuration, store or runtime.
    match &cli.command {
        Command::PolicyTest { quiet, paths } => return policy_test(paths, *quiet),
        Command::Bench { command } => return bench(command),
        Command::Audit {
            command: AuditCommand::Keygen { private, public },
        } => return report(keygen(private, public)),
        _ => {}
    }
    let env: HashMap<String, String> = std::env::vars().collect();
    let config_file = cli
        .config
        .clone()
        .or_else(|| env.get("ASSENT_CONFIG").map(PathBuf::from));
    let config = match Config::load(config_file.as_deref(), &env) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("assent-server: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("assent-server: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve => serve(config).await,
            Command::CreateUser { roles, name, email } => {
                create_user(&config, roles, name, email).await
            }
            Command::UserCount => user_count(&config).await,
            Command::Seed { contacts, seed } => seed_contacts(&config, contacts, seed).await,
            Command::PolicyTest { .. } | Command::Bench { .. } => {
                unreachable!("handled before the configuration is read")
            }
            Command::Audit {
                command:
                    AuditCommand::Verify {
                        checkpoint,
                        public_key,
                    },
            } => audit_verify(&config, checkpoint.as_deref(), public_key.as_deref()).await,
            Command::Audit {
                command: AuditCommand::Checkpoint { key },
            } => audit_checkpoint(&config, key.as_deref()).await,
            Command::Audit {
                command: AuditCommand::Keygen { .. },
            } => unreachable!("handled before the configuration is read"),
        }
    });
    report(result)
}

/// The exit code of a command's result, its error printed.
fn report(result: CommandResult) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("assent-server: {message}");
            ExitCode::FAILURE
        }
    }
}

type CommandResult = Result<ExitCode, String>;

async fn open_store(config: &Config) -> Result<Db, String> {
    std::fs::create_dir_all(&config.data_dir).map_err(|e| {
        format!(
            "cannot create the data directory {}: {e}",
            config.data_dir.display()
        )
    })?;
    Db::connect_with(&config.database(), config.sqlite_synchronous)
        .await
        .map_err(|e| format!("cannot open the database: {e}"))
}

async fn serve(config: Config) -> CommandResult {
    crate::telemetry::init(&config);
    let app = Application::build(&config)
        .await
        .map_err(|e| e.to_string())?;
    let users = service::users::count(app.db())
        .await
        .map_err(|e| e.to_string())?;
    // Before anything is printed: whoever reads the address may signal at once.
    startup::stop_on_signals(app.handle()).map_err(|e| format!("cannot handle signals: {e}"))?;
    println!("Assent is listening on https://{}", app.local_addr());
    println!(
        "Public pages (unsubscribe links) on https://{}",
        app.public_addr()
    );
    println!("Database: {}", app.db().backend_name());
    println!("Certificate SHA-256 fingerprint: {}", app.fingerprint());
    if users == 0 {
        println!("There are no users yet. Create the first administrator with:");
        println!("  assent-server create-user --role admin you@example.org");
    }
    app.run_until_stopped()
        .await
        .map_err(|e| format!("the server stopped: {e}"))?;
    println!("Assent stopped.");
    Ok(ExitCode::SUCCESS)
}

fn read_password() -> Result<String, String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password (at least 12 characters): ")
            .map_err(|e| e.to_string())?;
        let second =
            rpassword::prompt_password("The same password again: ").map_err(|e| e.to_string())?;
        if first != second {
            return Err("the two passwords differ; nothing was created".into());
        }
        Ok(first)
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    }
}

async fn create_user(
    config: &Config,
    roles: Vec<Role>,
    name: Option<String>,
    email: String,
) -> CommandResult {
    let display_name =
        name.unwrap_or_else(|| email.split('@').next().unwrap_or_default().to_owned());
    let password = read_password()?;
    let db = open_store(config).await?;
    let new = NewUser {
        email,
        display_name,
        roles,
        password,
    };
    match service::users::create(&db, &Actor::System(SystemJob::CommandLine), &new).await {
        Ok(user) => {
            let roles: Vec<&str> = user.roles.iter().map(|r| r.as_str()).collect();
            println!(
                "Created user {} ({}) with roles: {}",
                user.email,
                user.id,
                roles.join(", ")
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(ServiceError::Invalid(fields)) => {
            let reasons: Vec<String> = fields
                .0
                .iter()
                .map(|f| format!("{} {}", f.field, f.reason))
                .collect();
            Err(format!("nothing was created: {}", reasons.join("; ")))
        }
        Err(e) => Err(format!("nothing was created: {e}")),
    }
}

fn policy_test(paths: &[PathBuf], quiet: bool) -> ExitCode {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let result = policy_test::policy_test(paths, quiet, &mut out);
    let flushed = std::io::Write::flush(&mut out);
    match (result, flushed) {
        (Ok(tally), Ok(())) if tally.failed == 0 => ExitCode::SUCCESS,
        (Ok(_), Ok(())) => ExitCode::FAILURE,
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("assent-server: cannot write the report: {e}");
            ExitCode::FAILURE
        }
    }
}

fn bench(command: &BenchCommand) -> ExitCode {
    use assent_engine::synthetic::Generator;
    use assent_engine::{decide, CompiledPolicy};
    match command {
        BenchCommand::Engine { seconds, seed } => {
            let mut generator = Generator::new(*seed);
            let cases: Vec<_> = (0..10_000)
                .map(|_| (generator.subject(), generator.ledger(), generator.message()))
                .collect();
            let events: usize = cases.iter().map(|(_, ledger, _)| ledger.len()).sum();
            let policy = CompiledPolicy::default();
            let now = generator.now;
            let started = std::time::Instant::now();
            let mut decisions: u64 = 0;
            let mut allowed: u64 = 0;
            while started.elapsed().as_secs() < *seconds {
                for (subject, ledger, message) in &cases {
                    let decision =
                        decide(&policy, subject, ledger, message, std::hint::black_box(now));
                    allowed += u64::from(std::hint::black_box(decision).allowed);
                }
                decisions += cases.len() as u64;
            }
            let elapsed = started.elapsed().as_secs_f64();
            println!(
                "{decisions} decisions in {elapsed:.2} s on one thread: {:.0} decisions/s \
                 (mean ledger {:.1} events, {:.0}% allowed)",
                decisions as f64 / elapsed,
                events as f64 / cases.len() as f64,
                100.0 * allowed as f64 / decisions as f64
            );
            ExitCode::SUCCESS
        }
        BenchCommand::Scenarios { count, out, seed } => {
            let mut generator = Generator::new(*seed);
            let policy = CompiledPolicy::default();
            let file = match std::fs::File::create(out) {
                Ok(file) => file,
                Err(e) => {
                    eprintln!("assent-server: cannot create {}: {e}", out.display());
                    return ExitCode::FAILURE;
                }
            };
            let mut writer = std::io::BufWriter::new(file);
            for i in 0..*count {
                let (subject, ledger, message) =
                    (generator.subject(), generator.ledger(), generator.message());
                let decision = decide(&policy, &subject, &ledger, &message, generator.now);
                let expect = match (decision.basis, decision.reasons.iter().next()) {
                    (Some(basis), _) => serde_json::json!({"allowed": true, "basis": basis}),
                    (None, Some(reason)) => serde_json::json!({"allowed": false, "reason": reason}),
                    (None, None) => serde_json::json!({"allowed": decision.allowed}),
                };
                let line = serde_json::json!({
                    "id": format!("generated-{i}"), "now": generator.now, "subject": subject,
                    "events": ledger, "message": message, "expect": expect,
                });
                if let Err(e) = writeln!(writer, "{line}") {
                    eprintln!("assent-server: cannot write {}: {e}", out.display());
                    return ExitCode::FAILURE;
                }
            }
            if let Err(e) = std::io::Write::flush(&mut writer) {
                eprintln!("assent-server: cannot write {}: {e}", out.display());
                return ExitCode::FAILURE;
            }
            println!("Wrote {count} scenarios to {}", out.display());
            ExitCode::SUCCESS
        }
    }
}

async fn seed_contacts(config: &Config, count: u64, seed: u64) -> CommandResult {
    let db = open_store(config).await?;
    let started = std::time::Instant::now();
    let seeded = service::seed::synthetic(&db, count, seed, |done| {
        eprint!("\r{done} of {count} contacts");
    })
    .await
    .map_err(|e| e.to_string())?;
    eprintln!();
    println!(
        "Created {} synthetic contacts with {} ledger events in {:.1} s.",
        seeded.contacts,
        seeded.events,
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

async fn user_count(config: &Config) -> CommandResult {
    let db = open_store(config).await?;
    let count = service::users::count(&db)
        .await
        .map_err(|e| e.to_string())?;
    println!("{count}");
    Ok(ExitCode::SUCCESS)
}

async fn audit_verify(
    config: &Config,
    checkpoint: Option<&Path>,
    public_key: Option<&Path>,
) -> CommandResult {
    // The checkpoint is read and its signature checked before the walk, which may be long.
    let statement = match checkpoint {
        Some(file) => Some(open_checkpoint(config, file, public_key)?),
        None => None,
    };
    let db = open_store(config).await?;
    let integrity = service::audit::verify(&db)
        .await
        .map_err(|e| e.to_string())?;
    match &integrity.audit {
        Verification::Intact { records } => {
            println!("The audit trail is intact: {records} records, every link verified.");
        }
        Verification::Broken { chain, link } => {
            println!(
                "The audit trail is BROKEN in {chain} at record {}: {}",
                link.seq, link.problem
            );
        }
    }
    match &integrity.ledgers {
        Ok(events) => {
            println!("The consent ledgers are intact: {events} events, every link verified.")
        }
        Err(broken) => {
            println!(
                "The consent ledger of contact {} is BROKEN at event {}: {}",
                broken.contact_id, broken.link.seq, broken.link.problem
            );
        }
    }
    match &integrity.warrants {
        Ok(warrants) => {
            println!("The communication log is intact: {warrants} warrants, every link verified.")
        }
        Err(broken) => println!(
            "The communication log of campaign {} is BROKEN at warrant {}: {}",
            broken.campaign_id, broken.link.seq, broken.link.problem
        ),
    }
    let mut extends = true;
    if let Some(statement) = &statement {
        let departures = service::audit::departures(&db, statement)
            .await
            .map_err(|e| e.to_string())?;
        if departures.is_empty() {
            println!(
                "The database extends the checkpoint of {}: every chain still holds the records it held, and the consent ledgers it covers are unchanged.",
                statement.at.to_rfc3339()
            );
        } else {
            extends = false;
            println!(
                "The database does NOT extend the checkpoint of {}:",
                statement.at.to_rfc3339()
            );
            for departure in &departures {
                println!("  - {departure}");
            }
        }
    }
    Ok(if integrity.intact() && extends {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The last checkpoint line of `file`, its signature checked with `public_key` or the public half
/// of the configured key.
fn open_checkpoint(
    config: &Config,
    file: &Path,
    public_key: Option<&Path>,
) -> Result<Statement, String> {
    let public = match (public_key, &config.checkpoints) {
        (Some(path), _) => PublicKey::read(path).map_err(|e| e.to_string())?,
        (None, Some(checkpoints)) => CheckpointKey::read(&checkpoints.key)
            .map_err(|e| e.to_string())?
            .public(),
        (None, None) => {
            return Err(
                "give the public key to check the checkpoint with (--public-key FILE), or configure checkpoint_key"
                    .into(),
            )
        }
    };
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read the checkpoint file {}: {e}", file.display()))?;
    let statement = last_checkpoint(&text, &public)
        .map_err(|e| format!("the checkpoint file {}: {e}", file.display()))?;
    println!(
        "The checkpoint of {} is signed by key {}: the signature verifies.",
        statement.at.to_rfc3339(),
        public.fingerprint()
    );
    Ok(statement)
}

/// The last checkpoint of a checkpoint file's text, its signature checked with `public`. A last
/// line that a crash cut short (no newline after it, and not even JSON) is passed over, with a
/// warning, for the one before it: the server appends a line at a time, so only the last can be
/// torn (and it ends a torn line before it appends the next). Any other failure of the last line
/// (another key, a bad signature, an unknown format) is refused, newline or not.
fn last_checkpoint(text: &str, public: &PublicKey) -> Result<Statement, String> {
    let mut lines = text.lines().rev().filter(|line| !line.trim().is_empty());
    let last = lines.next().ok_or("it holds no checkpoint")?;
    let torn = !text.trim_end_matches([' ', '\t', '\r']).ends_with('\n');
    match public.open(last) {
        Ok(statement) => Ok(statement),
        Err(e @ CheckpointError::Malformed(_)) if torn => {
            let before = lines
                .next()
                .ok_or_else(|| format!("its only line is incomplete ({e})"))?;
            eprintln!(
                "assent-server: the last line of the checkpoint file is incomplete (a write cut short: {e}); checking the one before it"
            );
            public.open(before).map_err(|e| e.to_string())
        }
        Err(e) => Err(e.to_string()),
    }
}

async fn audit_checkpoint(config: &Config, key: Option<&Path>) -> CommandResult {
    let key = match (key, &config.checkpoints) {
        (Some(path), _) => CheckpointKey::read(path),
        (None, Some(checkpoints)) => CheckpointKey::read(&checkpoints.key),
        (None, None) => {
            return Err(
                "give the key to sign with (--key FILE), or configure checkpoint_key".into(),
            )
        }
    }
    .map_err(|e| e.to_string())?;
    let db = open_store(config).await?;
    let line = service::audit::checkpoint(&db, &key, crate::clock::now())
        .await
        .map_err(|e| e.to_string())?;
    println!("{line}");
    Ok(ExitCode::SUCCESS)
}

fn keygen(private: &Path, public: &Path) -> CommandResult {
    let key = CheckpointKey::generate();
    write_new_file(private, key.private_pem().as_bytes(), 0o600)?;
    if let Err(e) = write_new_file(public, key.public().pem().as_bytes(), 0o644) {
        // A private key whose public half was never written checks nothing: it is not kept.
        return Err(match std::fs::remove_file(private) {
            Ok(()) => format!("{e}; the private key was not kept"),
            Err(removed) => format!(
                "{e}; remove the private key {} too ({removed})",
                private.display()
            ),
        });
    }
    println!(
        "Wrote the checkpoint key {} to {} (keep it off the database's machine's backups) and its public key to {} (give a copy to whoever audits).",
        key.public().fingerprint(),
        private.display(),
        public.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Creates `path` with `mode` and `contents`; an existing file is an error, not overwritten.
fn write_new_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), String> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}
