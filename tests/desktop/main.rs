//! The desktop app end to end: the real app (the automation build, driven through tauri-driver and
//! WebKitWebDriver) against a real server on a fresh database, then the stolen-laptop scan of
//! everything written to the disk during the run, for the automation build and for the
//! production build.
//!
//! `scripts/test` runs this inside Xvfb and a D-Bus session with an unlocked GNOME Keyring, with
//! `tauri-driver` on the PATH and the two builds named by `ASSENT_E2E_APP` (automation) and
//! `ASSENT_E2E_PRODUCTION_APP`. It is not part of `cargo test --tests` (`test = false`).

mod keyring;
mod scan;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use assent_server::config::Config;
use assent_server::startup::{Application, ShutdownHandle};
use assent_server::store::Db;
use assent_shared::api::{ContactInput, NewUser, User};
use assent_shared::domain::Role;
use fantoccini::{Client, Locator};

const PASSWORD: &str = "plum-orbit-canal-97";
const DEVICE: &str = "Laptop 7";

/// Values that appear nowhere but in this run's server data, so that finding one in a file
/// means the app (or its webview) wrote CRM data to the disk.
struct Markers {
    first_name: String,
    last_name: String,
    email: String,
    notes: String,
    wording: String,
}

impl Markers {
    fn new() -> Self {
        let tag = uuid::Uuid::new_v4().simple().to_string()[..10].to_owned();
        Markers {
            first_name: format!("Qzfirst{tag}"),
            last_name: format!("Qzlast{tag}"),
            email: format!("qzmail{tag}@example.org"),
            notes: format!("Qznote{tag} prefers calls after six"),
            wording: format!("Qzwording{tag}: email me about boilers."),
        }
    }

    fn all(&self) -> Vec<&str> {
        vec![
            &self.first_name,
            &self.last_name,
            &self.email,
            &self.notes,
            &self.wording,
        ]
    }
}

struct Server {
    address: String,
    fingerprint: String,
    db: Db,
    handle: ShutdownHandle,
}

/// Starts the real server on `bind` with its data (and a certificate of its own) in `data_dir`.
async fn start_server(bind: &str, data_dir: &Path) -> (Server, SocketAddr) {
    let env: HashMap<String, String> = [
        ("ASSENT_BIND".to_owned(), bind.to_owned()),
        ("ASSENT_DATA_DIR".to_owned(), data_dir.display().to_string()),
    ]
    .into();
    let config = Config::load(None, &env).expect("the test configuration is valid");
    let app = Application::build(&config)
        .await
        .expect("the server starts");
    let addr = app.local_addr();
    let server = Server {
        address: format!("https://127.0.0.1:{}", addr.port()),
        fingerprint: app.fingerprint().to_owned(),
        db: app.db().clone(),
        handle: app.handle(),
    };
    tokio::spawn(app.run_until_stopped());
    (server, addr)
}

async fn create_user(db: &Db, email: &str, roles: Vec<Role>) -> User {
    let new = NewUser {
        email: email.into(),
        display_name: email.into(),
        roles,
        password: PASSWORD.into(),
    };
    assent_server::api::users::create_user(db, &new, None)
        .await
        .expect("the user is created")
}

/// Seeds the contacts the app will show: one carrying every marker, and others around it.
async fn seed(server: &Server, owner: &User, markers: &Markers) {
    let mut tx = server.db.begin().await.unwrap();
    let marked = ContactInput {
        first_name: Some(markers.first_name.clone()),
        last_name: Some(markers.last_name.clone()),
        emails: vec![markers.email.clone()],
        notes: Some(markers.notes.clone()),
        ..ContactInput::default()
    };
    let mut inputs = vec![marked];
    for n in 1..=12 {
        inputs.push(ContactInput {
            first_name: Some("Sample".into()),
            last_name: Some(format!("Person {n:02}")),
            emails: vec![format!("sample{n}@example.net")],
            ..ContactInput::default()
        });
    }
    for input in inputs {
        let valid = input.validate().expect("valid seed contact");
        let now = assent_server::store::now();
        assent_server::store::contacts::insert(
            &mut tx,
            uuid::Uuid::now_v7(),
            &valid,
            owner.id,
            owner.id,
            now,
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
}

/// tauri-driver on 127.0.0.1:4444, which starts WebKitWebDriver itself.
struct Driver(Child);

impl Driver {
    fn start() -> Driver {
        let child = Command::new("tauri-driver")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tauri-driver is on the PATH (cargo install tauri-driver --locked; scripts/test does)");
        let started = Instant::now();
        while std::net::TcpStream::connect("127.0.0.1:4444").is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "tauri-driver did not start listening"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Driver(child)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn required_path(variable: &str) -> PathBuf {
    let path = PathBuf::from(
        std::env::var_os(variable)
            .unwrap_or_else(|| panic!("{variable} names the app binary to test")),
    );
    assert!(
        path.is_file(),
        "{variable}={} is not a file",
        path.display()
    );
    path
}

/// Polls until `css` matches an element whose text contains `needle`; returns the text.
async fn wait_for_text(client: &Client, css: &str, needle: &str) -> String {
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

/// Polls until exactly `count` elements match `css`.
async fn wait_for_count(client: &Client, css: &str, count: usize) {
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

async fn fill(client: &Client, css: &str, text: &str) {
    let field = client
        .wait()
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"));
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

async fn click_button(client: &Client, label: &str) {
    let xpath = format!("//button[contains(normalize-space(.), '{label}')]");
    client
        .wait()
        .for_element(Locator::XPath(&xpath))
        .await
        .unwrap_or_else(|e| panic!("button {label:?}: {e}"))
        .click()
        .await
        .unwrap();
}

/// Saves a screenshot of the screen for the README, after a pause so the last change is painted.
/// Taken from the X server: WebDriver's own screenshot never answers when WebKit's compositing is
/// off, as the app runs it.
async fn screenshot(dir: &Path, name: &str) {
    tokio::time::sleep(Duration::from_millis(400)).await;
    std::fs::create_dir_all(dir).unwrap();
    let status = Command::new("import")
        .args(["-window", "root"])
        .arg(dir.join(format!("{name}.png")))
        .status()
        .expect("ImageMagick's import runs (scripts/test installs it)");
    assert!(status.success(), "import could not take a screenshot");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_desktop_app_end_to_end_leaves_no_crm_data_on_the_disk() {
    // A WebDriver command that never answers would otherwise hang the whole test run.
    tokio::time::timeout(Duration::from_secs(300), end_to_end())
        .await
        .expect("the end-to-end run finished within 5 minutes");
}

async fn end_to_end() {
    assent_server::tls::install_crypto_provider();
    let automation_app = required_path("ASSENT_E2E_APP");
    let production_app = required_path("ASSENT_E2E_PRODUCTION_APP");
    let screenshots = std::env::var_os("ASSENT_E2E_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots"));
    assert!(
        std::env::var_os("DISPLAY").is_some(),
        "run under Xvfb (scripts/test does)"
    );

    // Everything the test itself writes (the servers' databases, logs) lives here and is left
    // out of the scan; the app's own files go wherever it puts them.
    let workspace = tempfile::Builder::new()
        .prefix("assent-e2e-")
        .tempdir()
        .unwrap();
    let since = scan::Marker::create(workspace.path());
    let markers = Markers::new();
    // The scan's self-check: a marker written outside the workspace during the run, as UTF-16,
    // must be found, or the scan proves nothing (a tmpfs, a wrong `find`).
    let canary_marker = format!("Qzcanary{}", uuid::Uuid::new_v4().simple());
    let canary = PathBuf::from("/var/tmp").join(format!(
        "assent-scan-canary-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let utf16: Vec<u8> = canary_marker
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    std::fs::write(&canary, utf16).unwrap();

    let (server, addr) = start_server("127.0.0.1:0", &workspace.path().join("server-a")).await;
    let sales = create_user(&server.db, "sales@example.org", vec![Role::Sales]).await;
    let admin = create_user(
        &server.db,
        "admin@example.org",
        vec![Role::Admin, Role::Dpo],
    )
    .await;
    seed(&server, &sales, &markers).await;

    let driver = Driver::start();
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "tauri:options".into(),
        serde_json::json!({ "application": automation_app }),
    );
    let client = fantoccini::ClientBuilder::rustls()
        .expect("a WebDriver client")
        .capabilities(capabilities)
        .connect("http://127.0.0.1:4444")
        .await
        .expect("a WebDriver session with the app");

    // Connect: the fingerprint shown is the server's; trust it.
    fill(
        &client,
        "#server",
        server.address.trim_start_matches("https://"),
    )
    .await;
    click_button(&client, "Connect").await;
    let shown = wait_for_text(&client, "[data-testid=fingerprint]", ":").await;
    assert_eq!(shown.trim(), server.fingerprint);
    screenshot(&screenshots, "connect-fingerprint").await;
    click_button(&client, "They match").await;

    // Log in.
    fill(&client, "#email", "sales@example.org").await;
    fill(&client, "#password", PASSWORD).await;
    fill(&client, "#device", DEVICE).await;
    screenshot(&screenshots, "login").await;
    click_button(&client, "Log in").await;
    wait_for_text(&client, "[data-testid=signed-in-as]", "sales@example.org").await;

    // Search, and open the contact.
    wait_for_text(&client, "table.list tbody", "Sample").await;
    screenshot(&screenshots, "contacts").await;
    fill(&client, "input[type=search]", &markers.last_name).await;
    wait_for_count(&client, "table.list tbody tr", 1).await;
    wait_for_text(&client, "table.list tbody", &markers.last_name).await;
    click_button(&client, &markers.first_name).await;
    wait_for_text(&client, "#contact-name", &markers.last_name).await;

    // Record a consent, then ask "may I send".
    fill(&client, "#record-topic", "boilers").await;
    fill(&client, "#record-wording", &markers.wording).await;
    fill(&client, "#record-reference", "Form 2026/117").await;
    click_button(&client, "Record").await;
    wait_for_text(&client, ".timeline", &markers.wording).await;
    fill(&client, "#decide-topic", "boilers").await;
    click_button(&client, "Decide").await;
    let decision = wait_for_text(&client, "[data-testid=decision]", "Allowed").await;
    assert!(decision.contains("basis: consent"), "{decision}");
    let cited = client
        .find_all(Locator::Css(".timeline li.evidence"))
        .await
        .unwrap();
    assert_eq!(cited.len(), 1, "the consent is highlighted as the evidence");
    screenshot(&screenshots, "contact-decision").await;

    // The evidence pack opens in a viewer window of its own.
    let main_window = client.window().await.unwrap();
    click_button(&client, "Evidence pack").await;
    let started = Instant::now();
    let viewer = loop {
        let windows = client.windows().await.unwrap();
        if let Some(viewer) = windows.into_iter().find(|w| *w != main_window) {
            break viewer;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no evidence pack window opened"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    client.switch_to_window(viewer).await.unwrap();
    wait_for_text(&client, "body", &markers.wording).await;
    screenshot(&screenshots, "evidence-pack").await;
    client.close_window().await.unwrap();
    client.switch_to_window(main_window).await.unwrap();

    click_button(&client, "Companies").await;
    wait_for_text(&client, "#companies-heading", "Companies").await;
    screenshot(&screenshots, "companies").await;

    // The laptop is reported stolen: the administrator revokes its sessions. The next request
    // of the app finds its session ended and it returns to the login screen, saying why.
    let revoked = {
        let mut tx = server.db.begin().await.unwrap();
        let now = assent_server::store::now();
        let ids = assent_server::store::sessions::revoke(
            &mut tx,
            sales.id,
            Some(DEVICE),
            None,
            admin.id,
            now,
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        ids
    };
    assert_eq!(revoked.len(), 1);
    client
        .find(Locator::XPath(
            "//nav//button[normalize-space(.)='Contacts']",
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_text(&client, "[role=status]", "revoked").await;
    client
        .find(Locator::Css("#password"))
        .await
        .expect("back at the login screen");
    screenshot(&screenshots, "session-revoked").await;

    // The administrator and data protection lead's screens, in the same app.
    fill(&client, "#email", "admin@example.org").await;
    fill(&client, "#password", PASSWORD).await;
    fill(&client, "#device", "Admin desk").await;
    click_button(&client, "Log in").await;
    click_button(&client, "Users and devices").await;
    wait_for_text(&client, "#users-heading", "Users and devices").await;
    wait_for_text(&client, "table.list tbody", "sales@example.org").await;
    click_button(&client, "Sessions").await;
    wait_for_text(&client, "#sessions-heading", "Sessions of").await;
    screenshot(&screenshots, "users-and-devices").await;
    click_button(&client, "Policy").await;
    wait_for_text(&client, "#history-heading", "History").await;
    screenshot(&screenshots, "policy").await;
    click_button(&client, "Log out").await;
    client
        .wait()
        .for_element(Locator::Css("#password"))
        .await
        .expect("back at the login screen");

    // The server comes back at the same address with another certificate: refused, naming both.
    server.handle.shutdown();
    let (replaced, _) = start_server(&addr.to_string(), &workspace.path().join("server-b")).await;
    assert_ne!(replaced.fingerprint, server.fingerprint);
    click_button(&client, "Use another server").await;
    fill(&client, "#server", &server.address).await;
    click_button(&client, "Connect").await;
    wait_for_text(&client, "[role=alert]", "certificate has changed").await;
    assert_eq!(
        client
            .find(Locator::Css("[data-testid=expected]"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        server.fingerprint
    );
    assert_eq!(
        client
            .find(Locator::Css("[data-testid=presented]"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        replaced.fingerprint
    );
    screenshot(&screenshots, "certificate-changed").await;

    // Close the app as a user does: its window.
    client.close_window().await.ok();
    client.close().await.ok();
    drop(driver);
    scan::wait_for_exit("assent-desktop", Duration::from_secs(15));

    // The production build (incognito): started, shown, and closed as a logout would close it.
    let mut production = Command::new(&production_app)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        production.try_wait().unwrap().is_none(),
        "the production build keeps running"
    );
    Command::new("kill")
        .arg("-TERM")
        .arg(production.id().to_string())
        .status()
        .unwrap();
    let status = scan::wait_for_child(&mut production, Duration::from_secs(15));
    assert!(
        status.success(),
        "the production build exits cleanly on SIGTERM: {status}"
    );
    replaced.handle.shutdown();

    // The stolen-laptop scan.
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap();
    let mut searched = markers.all();
    searched.push(&canary_marker);
    let mut report = scan::scan(&since, &[workspace.path(), &checkout], &searched);
    std::fs::remove_file(&canary).unwrap();
    assert!(
        report
            .marker_hits
            .contains(&(canary.clone(), canary_marker.clone())),
        "the scan's self-check failed: it did not find the canary it wrote\n{}",
        report.describe()
    );
    report.forget(&canary);
    println!("{}", report.describe());
    assert!(
        report.marker_hits.is_empty(),
        "CRM data reached the disk:\n{}",
        report.describe()
    );
    let home = PathBuf::from(std::env::var_os("HOME").expect("HOME is set"));
    let unexpected = report.unexpected_under(&home);
    assert!(
        unexpected.is_empty(),
        "the app left files in the home directory: {unexpected:#?}"
    );
}
