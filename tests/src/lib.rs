//! What the workspace's integration tests and benchmarks share: the real server started in the
//! background, users and contacts created directly in its store, and tauri-driver for driving
//! the desktop app. The tests themselves are in `api/`, `desktop_core.rs`, `desktop/` and
//! `benches/`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use assent_server::config::Config;
use assent_server::service::Actor;
use assent_server::startup::{Application, ShutdownHandle};
use assent_server::store::Db;
use assent_shared::api::{ActorRef, CompanyInput, ContactInput, NewUser, User};
use assent_shared::domain::{Role, SystemJob};
use uuid::Uuid;

/// A password that passes the policy.
pub const PASSWORD: &str = "plum-orbit-canal-97";

/// The real server, serving in the background.
pub struct RunningServer {
    /// `https://127.0.0.1:PORT`.
    pub address: String,
    pub local_addr: SocketAddr,
    /// The public pages' listener, `https://127.0.0.1:PORT`.
    pub public_address: String,
    /// The SHA-256 fingerprint of its certificate, as it prints it.
    pub fingerprint: String,
    pub certificate_pem: String,
    pub db: Db,
    pub handle: ShutdownHandle,
}

/// Starts the real server with these settings (`ASSENT_*` variables; `ASSENT_BIND` defaults to a
/// free port on 127.0.0.1) and serves in the background.
pub async fn start_server(settings: &[(&str, &str)]) -> RunningServer {
    assent_server::tls::install_crypto_provider();
    let mut env: HashMap<String, String> = [
        ("ASSENT_BIND".to_owned(), "127.0.0.1:0".to_owned()),
        ("ASSENT_PUBLIC_BIND".to_owned(), "127.0.0.1:0".to_owned()),
    ]
    .into();
    env.extend(
        settings
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let config = Config::load(None, &env).expect("the test configuration is valid");
    let app = Application::build(&config)
        .await
        .expect("the server starts");
    let local_addr = app.local_addr();
    let server = RunningServer {
        address: format!("https://127.0.0.1:{}", local_addr.port()),
        local_addr,
        public_address: format!("https://127.0.0.1:{}", app.public_addr().port()),
        fingerprint: app.fingerprint().to_owned(),
        certificate_pem: app.certificate_pem().to_owned(),
        db: app.db().clone(),
        handle: app.handle(),
    };
    tokio::spawn(app.run_until_stopped());
    server
}

/// Creates a user directly in the store (as `create-user` does), named after their email, with
/// [`PASSWORD`].
pub async fn create_user(db: &Db, email: &str, roles: &[Role]) -> User {
    create_named_user(db, email, email, roles).await
}

/// Creates a user called `name` directly in the store, with [`PASSWORD`].
pub async fn create_named_user(db: &Db, email: &str, name: &str, roles: &[Role]) -> User {
    let new = NewUser {
        email: email.into(),
        display_name: name.into(),
        roles: roles.to_vec(),
        password: PASSWORD.into(),
    };
    let actor = Actor::System(SystemJob::CommandLine);
    assent_server::service::users::create(db, &actor, &new)
        .await
        .expect("the user is created")
}

/// Creates companies owned by `owner` directly in the store; returns their ids.
pub async fn seed_companies(db: &Db, owner: &User, inputs: &[CompanyInput]) -> Vec<Uuid> {
    let mut tx = db.begin().await.unwrap();
    let mut ids = Vec::new();
    for input in inputs {
        let valid = input.validate().expect("a valid seed company");
        let id = Uuid::now_v7();
        let by = ActorRef::Staff { id: owner.id };
        let now = assent_server::clock::now();
        assent_server::store::companies::insert(&mut tx, id, &valid, Some(owner.id), by, now)
            .await
            .unwrap();
        ids.push(id);
    }
    tx.commit().await.unwrap();
    ids
}

/// Creates contacts owned by `owner` directly in the store; returns their ids.
pub async fn seed_contacts(db: &Db, owner: &User, inputs: &[ContactInput]) -> Vec<Uuid> {
    let valid: Vec<_> = inputs
        .iter()
        .map(|input| input.validate().expect("a valid seed contact"))
        .collect();
    let new: Vec<_> = valid
        .iter()
        .map(|contact| assent_server::store::contacts::NewContact {
            id: Uuid::now_v7(),
            contact,
            owner_id: Some(owner.id),
            active: true,
        })
        .collect();
    let mut tx = db.begin().await.unwrap();
    assent_server::store::contacts::insert_many(
        &mut tx,
        &new,
        ActorRef::Staff { id: owner.id },
        assent_server::clock::now(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    new.iter().map(|n| n.id).collect()
}

/// Writes the topic catalogue (`(key, name, description)` each) as `admin`, directly through the
/// service (acting in a session no request used).
pub async fn seed_topics(db: &Db, admin: &User, topics: &[(&str, &str, &str)]) {
    let actor = Actor::Staff(assent_server::service::Staff {
        user: admin.clone(),
        session_id: Uuid::now_v7(),
        device_name: "seed".into(),
    });
    let change = assent_shared::api::TopicCatalogueChange {
        topics: topics
            .iter()
            .map(|(key, name, description)| assent_shared::api::TopicEntry {
                key: (*key).into(),
                name: (*name).into(),
                description: (*description).into(),
                retired: false,
            })
            .collect(),
        similar: Vec::new(),
        note: None,
    };
    assent_server::service::topics::change(db, &actor, &change)
        .await
        .expect("the topic catalogue is written");
}

/// A port on 127.0.0.1 that nothing listens on (bound, then freed).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port on 127.0.0.1")
}

/// tauri-driver on ports of its own (so a driver left by an earlier run is never used), which
/// starts WebKitWebDriver itself; killed when dropped.
pub struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    pub fn start() -> Driver {
        let port = free_port();
        let mut command = Command::new("tauri-driver");
        command.args([
            "--port",
            &port.to_string(),
            "--native-port",
            &free_port().to_string(),
        ]);
        let child = spawn_listening(
            command,
            port,
            "tauri-driver is on the PATH (cargo install tauri-driver --locked; scripts/test does)",
        );
        Driver { child, port }
    }

    /// A WebDriver session with the app at `application`, which this starts.
    pub async fn session(&self, application: &Path) -> fantoccini::Client {
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "tauri:options".into(),
            serde_json::json!({ "application": application }),
        );
        fantoccini::ClientBuilder::rustls()
            .expect("a WebDriver client")
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a WebDriver session with the app")
    }
}

/// Starts `command`, a server that is to listen on `port` of 127.0.0.1, and waits until it does;
/// `missing` says how to install it when it cannot be started.
fn spawn_listening(mut command: Command, port: u16, missing: &str) -> Child {
    let program = command.get_program().to_string_lossy().into_owned();
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} does not start ({e}): {missing}"));
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{program} ended before it listened: {status}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{program} did not start listening"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

/// Headless Chromium through chromedriver (Debian's `chromium` and `chromium-driver`), as a
/// person's browser opens the public pages; a profile of its own, removed with it.
pub struct Chromium {
    child: Child,
    port: u16,
    profile: tempfile::TempDir,
}

impl Chromium {
    pub fn start() -> Chromium {
        let port = free_port();
        let mut command = Command::new("chromedriver");
        command.arg(format!("--port={port}"));
        // A group of its own, so that the browsers it starts end with it, even after a panic.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = spawn_listening(
            command,
            port,
            "chromedriver is on the PATH (Debian's chromium-driver; scripts/test installs it)",
        );
        let profile = tempfile::Builder::new()
            .prefix("assent-chromium-")
            .tempdir()
            .expect("a profile directory");
        Chromium {
            child,
            port,
            profile,
        }
    }

    /// A browser session. The servers' certificates are self-signed: accepted, as a person who
    /// trusted them would.
    pub async fn session(&self) -> fantoccini::Client {
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("acceptInsecureCerts".into(), true.into());
        capabilities.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--window-size=900,760",
                    format!("--user-data-dir={}", self.profile.path().display()),
                ],
            }),
        );
        fantoccini::ClientBuilder::rustls()
            .expect("a WebDriver client")
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a WebDriver session with Chromium")
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The processes running the program at `executable` (by `/proc/PID/exe`, not by name, which the
/// kernel cuts to 15 characters).
pub fn processes_of(executable: &Path) -> Vec<u32> {
    let wanted: PathBuf = executable
        .canonicalize()
        .unwrap_or_else(|_| executable.to_owned());
    std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                .filter(|pid| {
                    std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|exe| exe == wanted)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Steps of a WebDriver session that wait, within limits, for the app to catch up.
pub mod webdriver {
    use std::time::{Duration, Instant};

    use fantoccini::key::Key;
    use fantoccini::{Client, Locator};

    /// Polls until `css` matches an element whose text contains `needle`; returns the text.
    pub async fn wait_for_text(client: &Client, css: &str, needle: &str) -> String {
        let started = Instant::now();
        loop {
            if let Ok(element) = client.find(Locator::Css(css)).await {
                if let Ok(text) = element.text().await {
                    if text.contains(needle) {
                        return text;
                    }
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "no `{css}` containing {needle:?} appeared"
            );
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// Polls until `script` (the body of a function, run in the page) returns `expected`.
    pub async fn wait_for_script(client: &Client, script: &str, expected: serde_json::Value) {
        let started = Instant::now();
        loop {
            let answer = client.execute(script, vec![]).await;
            if answer.as_ref().is_ok_and(|value| *value == expected) {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "`{script}` did not come to return {expected}; last: {answer:?}"
            );
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// Polls until exactly `count` elements match `css`.
    pub async fn wait_for_count(client: &Client, css: &str, count: usize) {
        let started = Instant::now();
        loop {
            let found = client
                .find_all(Locator::Css(css))
                .await
                .map(|all| all.len())
                .unwrap_or(0);
            if found == count {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "`{css}` matched {found}, not {count}"
            );
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// Replaces the value of the field at `css` with `text` (empty: clears it).
    pub async fn fill(client: &Client, css: &str, text: &str) {
        let field = client
            .wait()
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"));
        if text.is_empty() {
            // WebKit's clear fires no `input` event, so a bound value would not change: select
            // everything (Ctrl+A, then release) and delete it as a person would.
            field
                .send_keys(&format!("{}a{}{}", Key::Control, Key::Null, Key::Backspace))
                .await
                .unwrap();
        } else {
            field.clear().await.unwrap();
            field.send_keys(text).await.unwrap();
        }
    }

    pub async fn click_button(client: &Client, label: &str) {
        let xpath = format!("//button[contains(normalize-space(.), '{label}')]");
        click(client, Locator::XPath(&xpath)).await;
    }

    /// Waits for the element `locator` finds, brings it to the middle of the window and clicks
    /// it. A click at the window's very edge can miss it: the window may reach past the screen.
    pub async fn click(client: &Client, locator: Locator<'_>) {
        let element = client
            .wait()
            .for_element(locator)
            .await
            .unwrap_or_else(|e| panic!("{locator:?}: {e}"));
        let reference = serde_json::to_value(&element).expect("an element reference");
        client
            .execute(
                "arguments[0].scrollIntoView({ block: 'center' }); return true;",
                vec![reference],
            )
            .await
            .unwrap();
        element.click().await.unwrap();
    }
}
