//! The desktop app's start-up and memory (issue 4 targets: ≤ 1 s to the first screen, ≤ 250 MB
//! resident for the app and its webview processes with a 50-contact list open). Figures only, no
//! assertions: they are recorded in docs/BENCHMARKS.md.
//!
//!     cargo build --release -p assent-desktop --features automation
//!     xvfb-run -a -s "-screen 0 1280x800x24" dbus-run-session -- bash -c \
//!       'echo -n pw | gnome-keyring-daemon --unlock --components=secrets; \
//!        ASSENT_BENCH_APP=$PWD/target/release/assent-desktop cargo bench -p assent-tests --bench desktop'
//!
//! The start time runs from asking tauri-driver for a session (which starts the app) to the
//! server-address field being on the screen, so it includes WebKitWebDriver's own start: an upper
//! bound for the app's.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use assent_server::config::Config;
use assent_server::startup::Application;
use assent_shared::api::{ContactInput, NewUser};
use assent_shared::domain::Role;
use fantoccini::{Client, Locator};

const PASSWORD: &str = "plum-orbit-canal-97";

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_driver() -> Driver {
    let child = Command::new("tauri-driver")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("tauri-driver is on the PATH");
    while std::net::TcpStream::connect("127.0.0.1:4444").is_err() {
        std::thread::sleep(Duration::from_millis(50));
    }
    Driver(child)
}

async fn session(app: &PathBuf) -> Client {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "tauri:options".into(),
        serde_json::json!({ "application": app }),
    );
    fantoccini::ClientBuilder::rustls()
        .expect("a WebDriver client")
        .capabilities(capabilities)
        .connect("http://127.0.0.1:4444")
        .await
        .expect("a WebDriver session with the app")
}

/// Every process whose parent chain reaches `root`, and `root` itself.
fn process_tree(root: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // The fields after the command name, which is in parentheses and may hold spaces.
            let rest = &stat[stat.rfind(')')? + 2..];
            let ppid = rest.split(' ').nth(1)?.parse().ok()?;
            Some((pid, ppid))
        })
        .collect();
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(
            parents
                .iter()
                .filter(|(_, p)| *p == parent)
                .map(|(pid, _)| *pid),
        );
        i += 1;
    }
    tree
}

/// (resident, proportional) kilobytes of a process, from smaps_rollup.
fn memory_kb(pid: u32) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0)
    };
    (field("Rss:"), field("Pss:"))
}

fn app_pid() -> u32 {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .find(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "assent-desktop")
        })
        .expect("the app is running")
}

async fn wait_for(client: &Client, css: &str) {
    let found = client
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css(css))
        .await;
    if let Err(e) = found {
        let text = match client.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        panic!("`{css}` did not appear ({e}); the screen says: {text}");
    }
}

#[tokio::main]
async fn main() {
    assent_server::tls::install_crypto_provider();
    let app = PathBuf::from(
        std::env::var_os("ASSENT_BENCH_APP").expect("ASSENT_BENCH_APP names the automation build"),
    );
    let data_dir = tempfile::tempdir().unwrap();
    let env: HashMap<String, String> = [
        ("ASSENT_BIND".to_owned(), "127.0.0.1:0".to_owned()),
        (
            "ASSENT_DATA_DIR".to_owned(),
            data_dir.path().display().to_string(),
        ),
        ("ASSENT_LOG_LEVEL".to_owned(), "warn".to_owned()),
    ]
    .into();
    let config = Config::load(None, &env).unwrap();
    let server = Application::build(&config).await.unwrap();
    let address = format!("https://127.0.0.1:{}", server.local_addr().port());
    let db = server.db().clone();
    let new = NewUser {
        email: "bench@example.org".into(),
        display_name: "Bench".into(),
        roles: vec![Role::Sales],
        password: PASSWORD.into(),
    };
    let user = assent_server::api::users::create_user(&db, &new, None)
        .await
        .unwrap();
    let mut tx = db.begin().await.unwrap();
    for n in 0..60 {
        let input = ContactInput {
            first_name: Some("Bench".into()),
            last_name: Some(format!("Contact {n:03}")),
            emails: vec![format!("bench{n}@example.net")],
            ..ContactInput::default()
        };
        let valid = input.validate().unwrap();
        assent_server::store::contacts::insert(
            &mut tx,
            uuid::Uuid::now_v7(),
            &valid,
            user.id,
            user.id,
            assent_server::store::now(),
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    tokio::spawn(server.run_until_stopped());

    let _driver = start_driver();
    let mut starts = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let client = session(&app).await;
        wait_for(&client, "#server").await;
        starts.push(started.elapsed());
        client.close().await.ok();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    starts.sort();
    println!(
        "start to the first screen: median {:.0} ms, min {:.0} ms, max {:.0} ms (5 runs)",
        starts[2].as_secs_f64() * 1000.0,
        starts[0].as_secs_f64() * 1000.0,
        starts[4].as_secs_f64() * 1000.0
    );

    let client = session(&app).await;
    wait_for(&client, "#server").await;
    let server_field = client.find(Locator::Css("#server")).await.unwrap();
    server_field.clear().await.unwrap();
    client
        .find(Locator::Css("#server"))
        .await
        .unwrap()
        .send_keys(&address)
        .await
        .unwrap();
    client
        .find(Locator::XPath("//button[normalize-space(.)='Connect']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    if let Ok(trust) = client
        .wait()
        .at_most(Duration::from_secs(5))
        .for_element(Locator::XPath("//button[contains(., 'They match')]"))
        .await
    {
        trust.click().await.unwrap();
    }
    wait_for(&client, "#email").await;
    client
        .find(Locator::Css("#email"))
        .await
        .unwrap()
        .send_keys("bench@example.org")
        .await
        .unwrap();
    client
        .find(Locator::Css("#password"))
        .await
        .unwrap()
        .send_keys(PASSWORD)
        .await
        .unwrap();
    client
        .find(Locator::Css("#device"))
        .await
        .unwrap()
        .send_keys("Bench")
        .await
        .unwrap();
    client
        .find(Locator::XPath("//button[normalize-space(.)='Log in']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let started = Instant::now();
    loop {
        let rows = client
            .find_all(Locator::Css("table.list tbody tr"))
            .await
            .map(|r| r.len())
            .unwrap_or(0);
        if rows == 50 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the 50-contact page did not appear"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let tree = process_tree(app_pid());
    let (rss, pss) = tree
        .iter()
        .map(|pid| memory_kb(*pid))
        .fold((0, 0), |(r, p), (a, b)| (r + a, p + b));
    println!(
        "with a 50-contact list open: {} processes, resident {:.0} MB in all (proportional share {:.0} MB)",
        tree.len(),
        rss as f64 / 1024.0,
        pss as f64 / 1024.0
    );
    client.close().await.ok();
}
