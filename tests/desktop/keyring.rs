//! The session token in the real OS keyring (GNOME Keyring over the Secret Service, in the D-Bus
//! session scripts/test starts), checked from outside with `secret-tool`.

use assent_desktop::token::{KeyringTokenStore, SessionToken, TokenStore};

fn secret_tool_lookup(server: &str) -> Option<String> {
    let output = std::process::Command::new("secret-tool")
        .args(["lookup", "service", "assent", "username", server])
        .output()
        .expect("secret-tool (Debian libsecret-tools) runs");
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

#[test]
fn the_session_token_lives_in_the_system_keyring_until_it_is_deleted() {
    let server = format!("https://keyring-test.invalid:{}", std::process::id());
    let store = KeyringTokenStore::new();
    store.delete(&server).unwrap();
    assert_eq!(store.load(&server).unwrap(), None);

    store
        .save(&server, &SessionToken::new("token-under-test".into()))
        .unwrap();
    // Another store, as after a restart of the app, finds it: it is in the keyring, not in memory.
    let found = KeyringTokenStore::new().load(&server).unwrap();
    assert_eq!(
        found.as_ref().map(SessionToken::expose),
        Some("token-under-test")
    );
    assert_eq!(
        secret_tool_lookup(&server).as_deref(),
        Some("token-under-test")
    );

    store.delete(&server).unwrap();
    assert_eq!(KeyringTokenStore::new().load(&server).unwrap(), None);
    assert_eq!(secret_tool_lookup(&server), None);
}
