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
mod x11;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use assent_shared::api::{CompanyInput, ContactInput, PostalAddress};
use assent_shared::domain::{Role, SubscriberKind};
use assent_tests::webdriver::{
    click, click_button, fill, wait_for_count, wait_for_script, wait_for_text,
};
use assent_tests::{
    create_named_user, seed_companies, seed_contacts, seed_topics, start_server, Driver, PASSWORD,
};
use fantoccini::Locator;
use uuid::Uuid;

const DEVICE: &str = "Laptop 7";

/// Values that appear nowhere but in this run's server data, so that finding one in a file
/// written during the run means the app (or its webview) wrote CRM data to the disk. They read
/// as a real customer's (the screenshots show them) yet are unlikely in any other file.
struct Markers {
    first_name: String,
    last_name: String,
    email: String,
    notes: String,
    wording: String,
}

impl Markers {
    fn new() -> Self {
        Markers {
            first_name: "Imogen".into(),
            last_name: "Ashdown-Okafor".into(),
            email: "imogen.ashdown-okafor@example.co.uk".into(),
            notes: "Prefers calls after six; boiler service due in March".into(),
            wording: "Yes, Northfield Heating may email me about boiler offers.".into(),
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

/// The sales user the app logs in as, and the administrator and data protection lead.
const SALES: (&str, &str) = ("sam.patel@northfield-heating.example", "Sam Patel");
const ADMIN: (&str, &str) = ("alex.morgan@northfield-heating.example", "Alex Morgan");
const MANAGER: (&str, &str) = ("mia.thornton@northfield-heating.example", "Mia Thornton");

/// The campaign the sales user writes and the manager approves.
const CAMPAIGN: &str = "Winter boiler check";

/// The companies the app will show: (name, company number, town, postcode).
const COMPANIES: [(&str, &str, &str, &str); 4] = [
    ("Harbour Mutual Housing", "04123456", "Bristol", "BS1 6QH"),
    ("Alpine Trails Ltd", "SC654321", "Aviemore", "PH22 1RH"),
    ("Kestrel Property Services", "09876543", "Leeds", "LS1 4DY"),
    ("Meadowbank Care Homes", "07654321", "Norwich", "NR2 1TF"),
];

fn company_inputs() -> Vec<CompanyInput> {
    COMPANIES
        .iter()
        .map(|(name, number, town, postcode)| CompanyInput {
            name: (*name).into(),
            registration_number: Some((*number).into()),
            address: Some(PostalAddress {
                lines: Vec::new(),
                town: Some((*town).into()),
                postcode: Some((*postcode).into()),
                country: None,
            }),
            generic_email: None,
            generic_phone: None,
            version: None,
        })
        .collect()
}

/// The contacts the app will show: one carrying every marker, and others around it, some at
/// the seeded companies (`companies`, in the order of [`COMPANIES`]).
fn seed_inputs(markers: &Markers, companies: &[Uuid]) -> Vec<ContactInput> {
    let marked = ContactInput {
        first_name: Some(markers.first_name.clone()),
        last_name: Some(markers.last_name.clone()),
        emails: vec![markers.email.clone()],
        notes: Some(markers.notes.clone()),
        ..ContactInput::default()
    };
    // (first name, last name, index into `companies`, job title)
    let others: [(&str, &str, Option<usize>, Option<&str>); 12] = [
        ("Oliver", "Bennett", Some(0), Some("Asset Manager")),
        ("Priya", "Raman", None, None),
        ("Tomasz", "Nowak", Some(2), Some("Facilities Lead")),
        ("Aisha", "Khan", None, None),
        ("George", "Whitfield", Some(1), Some("Operations Director")),
        ("Chloe", "Davies", None, None),
        ("Samuel", "Osei", Some(3), Some("Estates Manager")),
        ("Fiona", "MacLeod", Some(1), Some("Office Manager")),
        ("Daniel", "Hughes", None, None),
        ("Grace", "Li", Some(0), Some("Procurement Officer")),
        ("Rhys", "Morgan", None, None),
        ("Hannah", "Schofield", Some(2), Some("Property Manager")),
    ];
    let others = others.iter().map(|(first, last, company, title)| {
        let domain = if company.is_some() {
            "example.com"
        } else {
            "example.net"
        };
        ContactInput {
            first_name: Some((*first).into()),
            last_name: Some((*last).into()),
            emails: vec![format!(
                "{}.{}@{domain}",
                first.to_lowercase(),
                last.to_lowercase()
            )],
            company_id: company.map(|index| companies[index]),
            subscriber_kind: company.map(|_| SubscriberKind::Corporate),
            job_title: title.map(Into::into),
            ..ContactInput::default()
        }
    });
    std::iter::once(marked).chain(others).collect()
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

/// Finds the marked contact by searching the contacts list for their last name, and opens them.
async fn open_contact(client: &fantoccini::Client, markers: &Markers) {
    fill(client, "input[type=search]", &markers.last_name).await;
    wait_for_count(client, "table.list tbody tr", 1).await;
    wait_for_text(client, "table.list tbody", &markers.last_name).await;
    click_button(client, &markers.first_name).await;
    wait_for_text(client, "#contact-name", &markers.last_name).await;
}

/// Clicks the navigation bar's button labelled exactly `label`.
async fn click_nav(client: &fantoccini::Client, label: &str) {
    click_labelled(client, "//nav", label).await;
}

/// Clicks the button labelled exactly `label` (where another's label contains it).
async fn click_exact(client: &fantoccini::Client, label: &str) {
    click_labelled(client, "", label).await;
}

/// Clicks the button labelled exactly `label` under the elements `within` (XPath) finds.
async fn click_labelled(client: &fantoccini::Client, within: &str, label: &str) {
    let xpath = format!("{within}//button[normalize-space(.)='{label}']");
    click(client, Locator::XPath(&xpath)).await;
}

/// The text of the element at `css`, once there is one.
async fn text_of(client: &fantoccini::Client, css: &str) -> String {
    client
        .wait()
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .unwrap()
        .trim()
        .to_owned()
}

/// Picks `value` in the list at `css`. Set through the page rather than clicked: WebKitGTK opens
/// a native pop-up for a list, which WebDriver cannot reach and which then holds the input.
async fn select(client: &fantoccini::Client, css: &str, value: &str) {
    let picked = client
        .execute(
            "const list = document.querySelector(arguments[0]); list.value = arguments[1]; \
             list.dispatchEvent(new Event('change', { bubbles: true })); return list.value;",
            vec![css.into(), value.into()],
        )
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"));
    assert_eq!(picked, serde_json::json!(value), "{css} offers {value}");
}

/// Clicks the element at `css` (a radio button, a check box), as a person picks it.
async fn choose(client: &fantoccini::Client, css: &str) {
    click(client, Locator::Css(css)).await;
}

/// Polls until the app has exactly `count` windows; returns them.
async fn wait_for_windows(
    client: &fantoccini::Client,
    count: usize,
) -> Vec<fantoccini::wd::WindowHandle> {
    let started = Instant::now();
    loop {
        let windows = client.windows().await.unwrap();
        if windows.len() == count {
            return windows;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{} windows, not {count}",
            windows.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Saves a screenshot of the screen for the README once the picture has settled: the screen as
/// the X server holds it, taken until two captures in a row are the same, since a capture can
/// catch the window half repainted. Taken from the X server because WebDriver's own screenshot
/// never answers when WebKit's compositing is off, as the app runs it.
async fn screenshot(dir: &Path, name: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(format!("{name}.png"));
    let capture = || {
        let output = Command::new("import")
            .args(["-window", "root", "ppm:-"])
            .stderr(Stdio::inherit())
            .output()
            .expect("ImageMagick's import runs (scripts/test installs it)");
        assert!(
            output.status.success(),
            "import could not take a screenshot"
        );
        output.stdout
    };
    let mut previous = Vec::new();
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let pixels = capture();
        if pixels == previous {
            break;
        }
        previous = pixels;
    }
    let mut convert = Command::new("convert")
        .args(["ppm:-"])
        .arg(&path)
        .stdin(Stdio::piped())
        .spawn()
        .expect("ImageMagick's convert runs");
    let mut stdin = convert.stdin.take().expect("stdin was piped");
    stdin.write_all(&previous).unwrap();
    drop(stdin);
    let status = convert.wait().unwrap();
    assert!(
        status.success(),
        "convert could not save {}",
        path.display()
    );
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
    let canary_marker = format!("Qzcanary{}", Uuid::new_v4().simple());
    let canary =
        PathBuf::from("/var/tmp").join(format!("assent-scan-canary-{}", Uuid::new_v4().simple()));
    let utf16: Vec<u8> = canary_marker
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    std::fs::write(&canary, utf16).unwrap();

    let server_a = workspace.path().join("server-a").display().to_string();
    // The sender's identity, which marketing must carry; mail goes to the catch-all maildir.
    let server = start_server(&[
        ("ASSENT_DATA_DIR", &server_a),
        ("ASSENT_ORGANISATION_NAME", "Northfield Heating Ltd"),
        (
            "ASSENT_ORGANISATION_POSTAL_ADDRESS",
            "14 Mill Lane, Leeds LS2 7EW",
        ),
        ("ASSENT_MAIL_FROM", "hello@northfield-heating.example"),
    ])
    .await;
    let sales = create_named_user(&server.db, SALES.0, SALES.1, &[Role::Sales]).await;
    let admin = create_named_user(&server.db, ADMIN.0, ADMIN.1, &[Role::Admin, Role::Dpo]).await;
    create_named_user(&server.db, MANAGER.0, MANAGER.1, &[Role::Manager]).await;
    seed_topics(
        &server.db,
        &admin,
        &[
            ("boilers", "Boilers", "New boilers, fitted and serviced."),
            (
                "heat-pumps",
                "Heat pumps",
                "Air and ground source heat pumps.",
            ),
        ],
    )
    .await;
    let companies = seed_companies(&server.db, &sales, &company_inputs()).await;
    seed_contacts(&server.db, &sales, &seed_inputs(&markers, &companies)).await;

    let driver = Driver::start();
    let client = driver.session(&automation_app).await;

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
    fill(&client, "#email", SALES.0).await;
    fill(&client, "#password", PASSWORD).await;
    fill(&client, "#device", DEVICE).await;
    screenshot(&screenshots, "login").await;
    click_button(&client, "Log in").await;
    wait_for_text(&client, "[data-testid=signed-in-as]", SALES.1).await;

    wait_for_text(&client, "table.list tbody", "Bennett").await;
    screenshot(&screenshots, "contacts").await;
    click_button(&client, "Companies").await;
    wait_for_text(&client, "#companies-heading", "Companies").await;
    wait_for_text(&client, "table.list tbody", COMPANIES[0].0).await;
    screenshot(&screenshots, "companies").await;

    // Search, and open the contact.
    click_nav(&client, "Contacts").await;
    wait_for_text(&client, "table.list tbody", "Bennett").await;
    open_contact(&client, &markers).await;

    // Edit: a bad phone number is refused beside its field and nothing is saved; a good change
    // is saved and shows in the contact's history.
    click_button(&client, "Edit").await;
    fill(&client, "#phones", "not a phone").await;
    click_button(&client, "Save").await;
    wait_for_count(&client, "#phones[aria-invalid=true]", 1).await;
    wait_for_text(&client, ".field-error", "is not a phone number").await;
    fill(&client, "#phones", "").await;
    fill(&client, "#job-title", "Head of Estates").await;
    click_button(&client, "Save").await;
    let changes = wait_for_text(
        &client,
        "[aria-labelledby=changes-heading]",
        "Head of Estates",
    )
    .await;
    assert!(changes.contains("Job title"), "{changes}");
    assert!(!changes.contains("not a phone"), "{changes}");

    // Record a consent, then ask "may I send".
    fill(&client, "#record-topic", "boilers").await;
    fill(&client, "#record-wording", &markers.wording).await;
    fill(&client, "#record-reference", "Form 2026/117").await;
    click_button(&client, "Record").await;
    wait_for_text(&client, ".timeline", &markers.wording).await;
    // The wording is now a recorded version, offered to the next consent to cite exactly.
    wait_for_text(&client, "#record-wording-choice", &markers.wording).await;
    fill(&client, "#decide-topic", "boilers").await;
    click_button(&client, "Decide").await;
    let decision = wait_for_text(&client, "[data-testid=decision]", "Allowed").await;
    assert!(decision.contains("basis: consent"), "{decision}");
    let cited = client
        .find_all(Locator::Css(".timeline li.evidence"))
        .await
        .unwrap();
    assert_eq!(cited.len(), 1, "the consent is highlighted as the evidence");
    client
        .execute("window.scrollTo(0, 0); return true;", vec![])
        .await
        .unwrap();
    screenshot(&screenshots, "contact-decision").await;

    // The evidence pack opens in a viewer window of its own.
    let main_window = client.window().await.unwrap();
    click_button(&client, "Evidence pack").await;
    let viewer = wait_for_windows(&client, 2)
        .await
        .into_iter()
        .find(|w| *w != main_window)
        .expect("a window besides the main one");
    client.switch_to_window(viewer).await.unwrap();
    wait_for_text(&client, "body", &markers.wording).await;
    screenshot(&screenshots, "evidence-pack").await;
    // Closed with its close button, as a person does; the window goes, and WebDriver's with it.
    tokio::task::spawn_blocking(|| x11::close_window_titled("Evidence pack"))
        .await
        .unwrap();
    assert_eq!(client.windows().await.unwrap(), vec![main_window.clone()]);
    client.switch_to_window(main_window.clone()).await.unwrap();
    // A marketing email to the contacts a search finds: the preview names who is left out and
    // why, and its author submits it for a manager's approval.
    click_nav(&client, "Campaigns").await;
    wait_for_text(&client, "#campaigns-heading", "Campaigns").await;
    click_button(&client, "New campaign").await;
    fill(&client, "#campaign-name", CAMPAIGN).await;
    select(&client, "#campaign-topic", "boilers").await;
    fill(
        &client,
        "#campaign-subject",
        "{{first_name|Hello}}, is your boiler ready for winter?",
    )
    .await;
    fill(
        &client,
        "#campaign-body",
        "Dear {{first_name|customer}},\u{e007}\u{e007}Book your **annual boiler check** before the cold sets in.\u{e007}\u{e007}[Unsubscribe]({{unsubscribe_url}})",
    )
    .await;
    choose(&client, "input[name=audience][value=search]").await;
    fill(&client, "#campaign-search", "example").await;
    click_button(&client, "Save draft").await;
    // Rhys consented to nothing and is no business contact: left out, by name, with the reason.
    wait_for_text(&client, "[data-testid=preview]", "Rhys Morgan").await;
    wait_for_text(&client, "[data-testid=preview]", "no consent").await;
    wait_for_text(&client, "[data-testid=sample]", "Dear ").await;
    let would_get_it: usize = text_of(&client, "[data-testid=would-get-it]")
        .await
        .parse()
        .expect("a count");
    assert!(
        (1..13).contains(&would_get_it),
        "Imogen (who consented) would get it, Rhys would not: {would_get_it} of 13"
    );
    screenshot(&screenshots, "campaign-preview").await;
    // The exact message, to the author's own address first.
    click_button(&client, "Send me a test").await;
    wait_for_text(
        &client,
        "[data-testid=test-send]",
        &format!("A test went to {}", SALES.0),
    )
    .await;
    click_button(&client, "Submit for approval").await;
    wait_for_text(
        &client,
        "[data-testid=campaign-state]",
        "Waiting for approval",
    )
    .await;
    // Its author is offered no approval.
    assert!(client
        .find(Locator::XPath("//button[normalize-space(.)='Approve']"))
        .await
        .is_err());

    // Back to the contact, whose evidence pack opens again.
    click_nav(&client, "Contacts").await;
    open_contact(&client, &markers).await;
    // Opened again and left open: the end of the session below must close it.
    click_button(&client, "Evidence pack").await;
    wait_for_windows(&client, 2).await;

    // The laptop is reported stolen: the administrator revokes its sessions. The next request
    // of the app finds its session ended and it returns to the login screen, saying why.
    let revoked = {
        let mut tx = server.db.begin().await.unwrap();
        let now = assent_server::clock::now();
        let ids = assent_server::store::sessions::revoke(
            &mut tx,
            sales.id,
            assent_server::store::sessions::Revoke::Device(DEVICE),
            admin.id,
            now,
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        ids
    };
    assert_eq!(revoked.len(), 1);
    click_nav(&client, "Contacts").await;
    wait_for_text(&client, "[role=status]", "revoked").await;
    client
        .find(Locator::Css("#password"))
        .await
        .expect("back at the login screen");
    assert_eq!(
        wait_for_windows(&client, 1).await,
        vec![main_window.clone()],
        "the evidence viewer closed when the session ended"
    );
    screenshot(&screenshots, "session-revoked").await;

    // A manager sees what waits for their approval first; approves it against the preview they
    // were shown, sends it, and watches it go.
    fill(&client, "#email", MANAGER.0).await;
    fill(&client, "#password", PASSWORD).await;
    fill(&client, "#device", "Manager desk").await;
    click_button(&client, "Log in").await;
    wait_for_text(&client, "#campaigns-heading", "Waiting for your approval").await;
    wait_for_text(&client, "table.list tbody", CAMPAIGN).await;
    screenshot(&screenshots, "approvals").await;
    click_button(&client, CAMPAIGN).await;
    wait_for_text(&client, "[data-testid=preview]", "would get it").await;
    click_exact(&client, "Approve").await;
    wait_for_text(&client, "[data-testid=campaign-state]", "Approved").await;
    click_button(&client, "Send now").await;
    wait_for_text(&client, "[data-testid=campaign-state]", "Sent").await;
    // Each member decided again at send: the ledgers have not changed since the preview.
    assert_eq!(text_of(&client, "[data-testid=total]").await, "13");
    assert_eq!(
        text_of(&client, "[data-testid=sent]").await,
        would_get_it.to_string()
    );
    assert_eq!(
        text_of(&client, "[data-testid=not-sent]").await,
        (13 - would_get_it).to_string()
    );
    client
        .execute("window.scrollTo(0, 0); return true;", vec![])
        .await
        .unwrap();
    screenshot(&screenshots, "campaign-progress").await;
    let delivered = std::fs::read_dir(Path::new(&server_a).join("mail/new"))
        .expect("the catch-all maildir")
        .count();
    assert_eq!(
        delivered,
        would_get_it + 1,
        "the author's test and exactly the allowed recipients' messages went out"
    );

    // The contact's communication log: the warrant of that message, and a call logged on it.
    click_nav(&client, "Contacts").await;
    open_contact(&client, &markers).await;
    let log = wait_for_text(&client, "[data-testid=communications]", CAMPAIGN).await;
    assert!(log.contains("Allowed (basis: consent)"), "{log}");
    assert!(log.contains(&format!("Sent to {}", markers.email)), "{log}");
    fill(&client, "#log-contact-point", "0117 496 0123").await;
    fill(
        &client,
        "#log-summary",
        "Booked the boiler check for 14 January",
    )
    .await;
    click_button(&client, "Log it").await;
    wait_for_text(
        &client,
        "[data-testid=communications]",
        "Phone call (logged)",
    )
    .await;
    client
        .execute(
            "document.getElementById('communications-heading').scrollIntoView(); return true;",
            vec![],
        )
        .await
        .unwrap();
    screenshot(&screenshots, "contact-communications").await;
    click_button(&client, "Log out").await;
    client
        .wait()
        .for_element(Locator::Css("#password"))
        .await
        .expect("back at the login screen");

    // The administrator and data protection lead's screens, in the same app.
    fill(&client, "#email", ADMIN.0).await;
    fill(&client, "#password", PASSWORD).await;
    fill(&client, "#device", "Admin desk").await;
    click_button(&client, "Log in").await;
    click_button(&client, "Users and devices").await;
    wait_for_text(&client, "#users-heading", "Users and devices").await;
    wait_for_text(&client, "table.list tbody", SALES.0).await;
    click_button(&client, "Sessions").await;
    wait_for_text(&client, "#sessions-heading", "Sessions of").await;
    screenshot(&screenshots, "users-and-devices").await;
    click_button(&client, "Policy").await;
    wait_for_text(&client, "#history-heading", "History").await;
    screenshot(&screenshots, "policy").await;
    // Logging out clears the browsing data: a value put in the page's storage is gone after.
    const PROBE: &str = "return window.localStorage.getItem('assent-e2e-probe');";
    client
        .execute(
            "window.localStorage.setItem('assent-e2e-probe', 'kept'); return true;",
            vec![],
        )
        .await
        .unwrap();
    wait_for_script(&client, PROBE, serde_json::json!("kept")).await;
    click_button(&client, "Log out").await;
    client
        .wait()
        .for_element(Locator::Css("#password"))
        .await
        .expect("back at the login screen");
    wait_for_script(&client, PROBE, serde_json::Value::Null).await;

    // The server comes back at the same address with another certificate: refused, naming both.
    server.handle.shutdown();
    let server_b = workspace.path().join("server-b").display().to_string();
    let same_address = server.local_addr.to_string();
    let replaced = start_server(&[
        ("ASSENT_BIND", &same_address),
        ("ASSENT_DATA_DIR", &server_b),
    ])
    .await;
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
    scan::wait_for_exit(&automation_app, Duration::from_secs(15));

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
    let mut unexpected = report.unexpected_under(&home);
    // scripts/test gives the run a configuration directory of its own: only the pin belongs there.
    if let Some(config) = std::env::var_os("XDG_CONFIG_HOME").map(PathBuf::from) {
        let pin = config.join("assent/known-servers");
        unexpected.extend(
            report
                .changed
                .iter()
                .filter(|p| p.starts_with(&config) && **p != pin)
                .cloned(),
        );
    }
    assert!(
        unexpected.is_empty(),
        "the app left files in the home directory: {unexpected:#?}"
    );
}
