//! The Assent desktop app: a Tauri 2 thin client. The web front end (`../ui`) only calls the
//! commands in [`commands`]; only this Rust side talks to the server, over HTTPS with the server's
//! certificate pinned.
//!
//! Architecture invariant: the app keeps no CRM data on disk. The session token is in the OS
//! keyring ([`token`]), the certificate pin in the known-servers file ([`pin`]); the webview's
//! data directory is private, in memory where the OS allows, and deleted on exit ([`privacy`]).

pub mod client;
mod commands;
pub mod desktop;
pub mod error;
pub mod evidence;
pub mod pin;
pub mod privacy;
pub mod token;

use std::sync::Arc;

use tauri::{Manager, RunEvent, WebviewUrl, WebviewWindowBuilder};

use crate::desktop::Desktop;
use crate::evidence::EvidencePages;
use crate::pin::PinStore;
use crate::privacy::PrivateDir;
use crate::token::KeyringTokenStore;

/// The label of the app's main window; the others are evidence viewers.
pub const MAIN_WINDOW: &str = "main";

/// How every window's webview is made: incognito (but for the automation build) and with its data
/// in the private directory.
pub struct WebviewSettings {
    data_directory: std::path::PathBuf,
}

impl WebviewSettings {
    pub fn window<'a, M: Manager<tauri::Wry>>(
        &self,
        manager: &'a M,
        label: &str,
        url: WebviewUrl,
    ) -> WebviewWindowBuilder<'a, tauri::Wry, M> {
        WebviewWindowBuilder::new(manager, label, url)
            .incognito(!cfg!(feature = "automation"))
            .data_directory(self.data_directory.clone())
    }
}

fn fail(what: &str, error: impl std::fmt::Display) -> ! {
    eprintln!("assent-desktop: {what}: {error}");
    std::process::exit(1)
}

/// SIGTERM and SIGINT (a logout script, a shutdown, Ctrl-C) end the app the way closing its window
/// does, so the exit clean-up runs; otherwise they would kill it with its private directory left
/// until the next start.
fn exit_on_signals(handle: tauri::AppHandle) {
    #[cfg(unix)]
    tauri::async_runtime::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut terminate), Ok(mut interrupt)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            eprintln!("assent-desktop: cannot listen for SIGTERM and SIGINT");
            return;
        };
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
        handle.exit(0);
    });
}

pub fn run() {
    // Mesa otherwise keeps a shader cache under the home directory. Set before any thread starts
    // (the webview's processes inherit the environment).
    std::env::set_var("MESA_SHADER_CACHE_DISABLE", "true");
    // Forms and tables need no GPU compositing; without it WebKit's processes use about 120 MB
    // less (docs/BENCHMARKS.md).
    std::env::set_var("WEBKIT_DISABLE_COMPOSITING_MODE", "1");
    let mut private = PrivateDir::create_in(&privacy::base_directory())
        .unwrap_or_else(|e| fail("cannot create the webview's private directory", e));
    let pins = PinStore::default_location()
        .map(PinStore::new)
        .unwrap_or_else(|| {
            fail(
                "cannot find a place for the known-servers file",
                "neither XDG_CONFIG_HOME nor HOME is set",
            )
        });
    let desktop = Desktop::new(pins, Arc::new(KeyringTokenStore::new()));
    let webview = WebviewSettings {
        data_directory: private.path().to_owned(),
    };
    let app = tauri::Builder::default()
        .manage(desktop)
        .manage(EvidencePages::default())
        .register_uri_scheme_protocol(evidence::SCHEME, |context, request| {
            context
                .app_handle()
                .state::<EvidencePages>()
                .respond(request.uri().path())
        })
        .invoke_handler(tauri::generate_handler![
            commands::known_servers,
            commands::connect,
            commands::trust,
            commands::login,
            commands::logout,
            commands::list_contacts,
            commands::get_contact,
            commands::create_contact,
            commands::update_contact,
            commands::contact_history,
            commands::contact_ledger,
            commands::list_consent_wordings,
            commands::record_event,
            commands::decide,
            commands::list_companies,
            commands::create_company,
            commands::update_company,
            commands::list_users,
            commands::create_user,
            commands::update_user,
            commands::user_sessions,
            commands::revoke_session,
            commands::revoke_device,
            commands::get_policy,
            commands::policy_history,
            commands::update_policy,
            commands::open_evidence_pack,
            commands::contact_communications,
            commands::log_communication,
            commands::list_topics,
            commands::list_filters,
            commands::list_data_requests,
            commands::list_campaigns,
            commands::get_campaign,
            commands::create_campaign,
            commands::edit_campaign,
            commands::preview_campaign,
            commands::test_send_campaign,
            commands::campaign_step,
            commands::approve_campaign,
            commands::reject_campaign,
            commands::campaign_progress,
            commands::indeterminate_recipients,
            commands::resend_indeterminate,
        ])
        .setup(move |app| {
            exit_on_signals(app.handle().clone());
            let handle = app.handle().clone();
            app.state::<Desktop>()
                .on_session_end(Box::new(move || commands::forget_windows(&handle)));
            webview
                .window(app, MAIN_WINDOW, WebviewUrl::App("index.html".into()))
                .title("Assent")
                .inner_size(1280.0, 800.0)
                .min_inner_size(1024.0, 640.0)
                .build()?;
            app.manage(webview);
            Ok(())
        })
        .build(tauri::generate_context!())
        .unwrap_or_else(|e| fail("cannot start", e));
    app.run(move |_, event| {
        if let RunEvent::Exit = event {
            if let Err(e) = private.remove() {
                eprintln!("assent-desktop: could not delete the webview's private directory: {e}");
            }
        }
    });
}
