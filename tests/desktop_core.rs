//! The desktop app's Tauri-free core against a real Assent server over HTTPS: trust on first use,
//! a changed certificate refused, the session kept in a token store and forgotten when the
//! server ends it, a server that is down. No window is needed.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use assent_desktop::desktop::{Connection, Desktop};
use assent_desktop::error::DesktopError;
use assent_desktop::pin::PinStore;
use assent_desktop::token::{MemoryTokenStore, TokenStore};
use assent_shared::api::{ContactInput, ContactPage, RevokeSessions, RevokedCount};
use assent_shared::domain::Role;
use assent_tests::{create_user, free_port, start_server, RunningServer, PASSWORD};
use reqwest::Method;

/// The real server with a salesperson and an administrator; its data lives as long as `TempDir`.
async fn server() -> (RunningServer, tempfile::TempDir) {
    let data_dir = tempfile::tempdir().unwrap();
    let server = start_server(&[("ASSENT_DATA_DIR", &data_dir.path().display().to_string())]).await;
    create_user(&server.db, "sales@example.org", &[Role::Sales]).await;
    create_user(&server.db, "admin@example.org", &[Role::Admin]).await;
    (server, data_dir)
}

fn desktop(pins: &tempfile::TempDir, tokens: Arc<MemoryTokenStore>) -> Desktop {
    Desktop::new(PinStore::new(pins.path().join("known-servers")), tokens)
}

/// Counts the times `app` says its session ended (where the real app forgets its windows).
fn count_session_ends(app: &Desktop) -> Arc<AtomicUsize> {
    let ends = Arc::new(AtomicUsize::new(0));
    let counter = ends.clone();
    app.on_session_end(Box::new(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }));
    ends
}

#[tokio::test]
async fn first_contact_shows_the_fingerprint_and_trusts_only_the_one_shown() {
    let (server, _data) = server().await;
    let pins = tempfile::tempdir().unwrap();
    let app = desktop(&pins, Arc::default());

    let typed = server.address.trim_start_matches("https://").to_owned();
    let shown = app.connect(&typed).await.unwrap();
    assert_eq!(
        shown,
        Connection::Unknown {
            server: server.address.clone(),
            fingerprint: server.fingerprint.clone()
        }
    );
    assert!(
        app.known_servers().unwrap().is_empty(),
        "nothing is pinned before the user agrees"
    );

    let other = "00:".repeat(31) + "00";
    assert!(matches!(
        app.trust(&server.address, &other).await,
        Err(DesktopError::FingerprintMismatch)
    ));
    let trusted = app
        .trust(&server.address, &server.fingerprint)
        .await
        .unwrap();
    assert_eq!(
        trusted,
        Connection::Trusted {
            server: server.address.clone(),
            fingerprint: server.fingerprint.clone(),
            user: None
        }
    );
    assert_eq!(app.known_servers().unwrap(), vec![server.address.clone()]);
    server.handle.shutdown();
}

#[tokio::test]
async fn a_kept_session_is_used_again_and_forgotten_once_the_server_revokes_it() {
    let (server, _data) = server().await;
    let pins = tempfile::tempdir().unwrap();
    let tokens = Arc::new(MemoryTokenStore::default());
    let app = desktop(&pins, tokens.clone());
    app.connect(&server.address).await.unwrap();
    app.trust(&server.address, &server.fingerprint)
        .await
        .unwrap();

    let refused = app
        .login("sales@example.org", "wrong password", "Laptop 7")
        .await;
    assert!(
        matches!(refused, Err(DesktopError::LoginFailed(_))),
        "{refused:?}"
    );
    assert!(matches!(
        app.call::<ContactPage, ()>(Method::GET, "/api/v1/contacts", None)
            .await,
        Err(DesktopError::NotLoggedIn)
    ));
    let user = app
        .login("sales@example.org", PASSWORD, "Laptop 7")
        .await
        .unwrap();
    assert_eq!(user.email, "sales@example.org");
    assert!(
        tokens.load(&server.address).unwrap().is_some(),
        "the token is in the store"
    );

    let input = ContactInput {
        first_name: Some("Jane".into()),
        last_name: Some("Doe".into()),
        ..ContactInput::default()
    };
    let created: assent_shared::api::Contact = app
        .call(Method::POST, "/api/v1/contacts", Some(&input))
        .await
        .unwrap();
    let bad = ContactInput {
        last_name: Some("Roe".into()),
        phones: vec!["not a phone".into()],
        ..ContactInput::default()
    };
    match app
        .call::<assent_shared::api::Contact, _>(Method::POST, "/api/v1/contacts", Some(&bad))
        .await
    {
        Err(DesktopError::Invalid { fields, .. }) => {
            assert_eq!(
                fields.iter().map(|f| f.field.as_str()).collect::<Vec<_>>(),
                ["phones[0]"]
            )
        }
        other => panic!("expected a field error, got {other:?}"),
    }

    // The app is started again: the pinned server and the kept session need no login.
    let again = desktop(&pins, tokens.clone());
    let again_ended = count_session_ends(&again);
    match again.connect(&server.address).await.unwrap() {
        Connection::Trusted {
            user: Some(user), ..
        } => assert_eq!(user.email, "sales@example.org"),
        other => panic!("expected the kept session, got {other:?}"),
    }
    let page: ContactPage = again
        .call(Method::GET, "/api/v1/contacts", None::<&()>)
        .await
        .unwrap();
    assert_eq!(
        page.items.iter().map(|c| c.id).collect::<Vec<_>>(),
        [created.id]
    );

    // The laptop is reported stolen: the administrator revokes every session of that device.
    let admin = desktop(&pins, Arc::default());
    let admin_ended = count_session_ends(&admin);
    admin.connect(&server.address).await.unwrap();
    admin
        .login("admin@example.org", PASSWORD, "Admin desk")
        .await
        .unwrap();
    let revoke = RevokeSessions {
        user_id: user.id,
        device_name: Some("Laptop 7".into()),
    };
    let revoked: RevokedCount = admin
        .call(Method::POST, "/api/v1/sessions/revoke", Some(&revoke))
        .await
        .unwrap();
    assert_eq!(revoked.revoked, 1);
    assert_eq!(again_ended.load(Ordering::SeqCst), 0);

    match again
        .call::<ContactPage, ()>(Method::GET, "/api/v1/contacts", None)
        .await
    {
        Err(DesktopError::SessionEnded(reason)) => assert!(reason.contains("revoked"), "{reason}"),
        other => panic!("expected the session to have ended, got {other:?}"),
    }
    assert_eq!(
        again_ended.load(Ordering::SeqCst),
        1,
        "the app forgets what it showed"
    );
    assert_eq!(
        tokens.load(&server.address).unwrap(),
        None,
        "the token is forgotten"
    );
    assert!(matches!(
        again
            .call::<ContactPage, ()>(Method::GET, "/api/v1/contacts", None)
            .await,
        Err(DesktopError::NotLoggedIn)
    ));

    // Logging out ends the session on the server and forgets it here, and what the app showed.
    admin.logout().await.unwrap();
    assert_eq!(admin_ended.load(Ordering::SeqCst), 1);
    match admin.connect(&server.address).await.unwrap() {
        Connection::Trusted { user, .. } => assert_eq!(user, None),
        other => panic!("{other:?}"),
    }
    server.handle.shutdown();
}

#[tokio::test]
async fn a_server_presenting_another_certificate_is_refused_naming_both_fingerprints() {
    let (first, _first_data) = server().await;
    let (second, _second_data) = server().await;
    assert_ne!(first.fingerprint, second.fingerprint);
    let pins = tempfile::tempdir().unwrap();
    // The second server's address was trusted with the first server's certificate: as if the
    // certificate had been swapped since.
    PinStore::new(pins.path().join("known-servers"))
        .set(&second.address, first.fingerprint.parse().unwrap())
        .unwrap();
    let app = desktop(&pins, Arc::default());
    match app.connect(&second.address).await {
        Err(DesktopError::CertificateChanged {
            server,
            expected,
            presented,
        }) => {
            assert_eq!(server, second.address);
            assert_eq!(expected, first.fingerprint);
            assert_eq!(presented, second.fingerprint);
        }
        other => panic!("expected the certificate to be refused, got {other:?}"),
    }
    assert!(matches!(
        app.login("sales@example.org", PASSWORD, "x").await,
        Err(DesktopError::NotConnected)
    ));
    first.handle.shutdown();
    second.handle.shutdown();
}

#[tokio::test]
async fn a_logout_that_cannot_clear_the_windows_says_so_and_still_ends_the_session() {
    let (server, _data) = server().await;
    let pins = tempfile::tempdir().unwrap();
    let tokens = Arc::new(MemoryTokenStore::default());
    let app = desktop(&pins, tokens.clone());
    app.on_session_end(Box::new(|| Err("the viewer would not close".into())));
    app.connect(&server.address).await.unwrap();
    app.trust(&server.address, &server.fingerprint)
        .await
        .unwrap();
    app.login("sales@example.org", PASSWORD, "Laptop 9")
        .await
        .unwrap();
    let kept = tokens.load(&server.address).unwrap().expect("logged in");
    match app.logout().await {
        Err(DesktopError::Webview(message)) => {
            assert!(message.contains("would not close"), "{message}")
        }
        other => panic!("expected the clearing failure, got {other:?}"),
    }
    assert_eq!(
        tokens.load(&server.address).unwrap(),
        None,
        "the token is gone all the same"
    );
    // The session ended on the server too: even the old token, put back, resumes nothing.
    tokens.save(&server.address, &kept).unwrap();
    match desktop(&pins, tokens)
        .connect(&server.address)
        .await
        .unwrap()
    {
        Connection::Trusted { user, .. } => assert_eq!(user, None),
        other => panic!("{other:?}"),
    }
    server.handle.shutdown();
}

#[tokio::test]
async fn a_server_that_is_down_is_reported_as_unreachable() {
    let port = free_port();
    let pins = tempfile::tempdir().unwrap();
    let app = desktop(&pins, Arc::default());
    match app.connect(&format!("127.0.0.1:{port}")).await {
        Err(DesktopError::Unreachable { server, detail }) => {
            assert_eq!(server, format!("https://127.0.0.1:{port}"));
            assert!(!detail.is_empty());
        }
        other => panic!("expected unreachable, got {other:?}"),
    }
    assert!(matches!(
        app.connect("http://127.0.0.1:8443").await,
        Err(DesktopError::BadAddress(_))
    ));
}
