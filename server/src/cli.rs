//! The `assent-server` command line: `serve`, `create-user`, `user-count`, `audit verify`.

use std::collections::HashMap;
use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;

use assent_shared::api::NewUser;
use assent_shared::domain::Role;
use clap::{Parser, Subcommand};

use crate::api::error::Error as ApiFailure;
use crate::config::Config;
use crate::startup::{self, Application};
use crate::store::{self, audit::Verification, Db};

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
    /// Run compliance scenarios (SCENARIOS.md) through the decision engine: files, or directories
    /// of *.json and *.jsonl files. Exits non-zero if any fails or cannot be read.
    PolicyTest {
        /// Print only failures and the closing line.
        #[arg(long)]
        quiet: bool,
        #[arg(required = true, value_name = "FILE|DIR")]
        paths: Vec<PathBuf>,
    },
    /// Work with the audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Walk the hash chain of the audit trail and name the first broken link, if any.
    Verify,
}

fn parse_role(text: &str) -> Result<Role, String> {
    text.parse::<Role>().map_err(|e| format!("{text:?} {e}"))
}

/// Runs the command line and returns the process exit code.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    // The engine needs no configuration, store or runtime.
    if let Command::PolicyTest { quiet, paths } = &cli.command {
        return policy_test(paths, *quiet);
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
            Command::PolicyTest { .. } => unreachable!("handled before the configuration is read"),
            Command::Audit {
                command: AuditCommand::Verify,
            } => audit_verify(&config).await,
        }
    });
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
    Db::connect(&config.database())
        .await
        .map_err(|e| format!("cannot open the database: {e}"))
}

async fn serve(config: Config) -> CommandResult {
    crate::telemetry::init(&config);
    let app = Application::build(&config)
        .await
        .map_err(|e| e.to_string())?;
    let users = store::users::count(app.db())
        .await
        .map_err(|e| e.to_string())?;
    println!("Assent is listening on https://{}", app.local_addr());
    println!("Database: {}", app.db().backend_name());
    println!("Certificate SHA-256 fingerprint: {}", app.fingerprint());
    if users == 0 {
        println!("There are no users yet. Create the first administrator with:");
        println!("  assent-server create-user --role admin you@example.org");
    }
    startup::stop_on_signals(app.handle());
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
    match crate::api::users::create_user(&db, &new, None).await {
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
        Err(ApiFailure::Validation(fields)) => {
            let reasons: Vec<String> = fields
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
    let result = crate::engine::scenario::policy_test(paths, quiet, &mut out);
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

async fn user_count(config: &Config) -> CommandResult {
    let db = open_store(config).await?;
    let count = store::users::count(&db).await.map_err(|e| e.to_string())?;
    println!("{count}");
    Ok(ExitCode::SUCCESS)
}

async fn audit_verify(config: &Config) -> CommandResult {
    let db = open_store(config).await?;
    match store::audit::verify(&db).await.map_err(|e| e.to_string())? {
        Verification::Intact { records } => {
            println!("The audit trail is intact: {records} records, every link verified.");
            Ok(ExitCode::SUCCESS)
        }
        Verification::Broken(link) => {
            println!(
                "The audit trail is BROKEN at record {}: {}",
                link.seq, link.problem
            );
            Ok(ExitCode::FAILURE)
        }
    }
}
