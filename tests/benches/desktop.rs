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

use std::path::PathBuf;
use std::time::{Duration, Instant};

use assent_shared::api::ContactInput;
use assent_shared::domain::Role;
use assent_tests::webdriver::{click_button, fill, wait_for_count};
use assent_tests::{create_user, processes_of, seed_contacts, start_server, Driver, PASSWORD};
use fantoccini::Locator;

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

#[tokio::main]
async fn main() {
    let app = PathBuf::from(
        std::env::var_os("ASSENT_BENCH_APP").expect("ASSENT_BENCH_APP names the automation build"),
    );
    let data_dir = tempfile::tempdir().unwrap();
    let data = data_dir.path().display().to_string();
    let server = start_server(&[("ASSENT_DATA_DIR", &data), ("ASSENT_LOG_LEVEL", "warn")]).await;
    let user = create_user(&server.db, "bench@example.org", &[Role::Sales]).await;
    let contacts: Vec<ContactInput> = (0..60)
        .map(|n| ContactInput {
            first_name: Some("Bench".into()),
            last_name: Some(format!("Contact {n:03}")),
            emails: vec![format!("bench{n}@example.net")],
            ..ContactInput::default()
        })
        .collect();
    seed_contacts(&server.db, &user, &contacts).await;

    let driver = Driver::start();
    let mut starts = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let client = driver.session(&app).await;
        client
            .wait()
            .for_element(Locator::Css("#server"))
            .await
            .unwrap();
        starts.push(started.elapsed());
        client.close().await.ok();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    starts.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "start to the first screen: median {:.0} ms, min {:.0} ms, max {:.0} ms (5 runs)",
        ms(starts[2]),
        ms(starts[0]),
        ms(starts[4])
    );

    let client = driver.session(&app).await;
    fill(&client, "#server", &server.address).await;
    click_button(&client, "Connect").await;
    if let Ok(trust) = client
        .wait()
        .at_most(Duration::from_secs(5))
        .for_element(Locator::XPath("//button[contains(., 'They match')]"))
        .await
    {
        trust.click().await.unwrap();
    }
    fill(&client, "#email", "bench@example.org").await;
    fill(&client, "#password", PASSWORD).await;
    fill(&client, "#device", "Bench").await;
    click_button(&client, "Log in").await;
    wait_for_count(&client, "table.list tbody tr", 50).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let root = *processes_of(&app).first().expect("the app is running");
    let tree = process_tree(root);
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
