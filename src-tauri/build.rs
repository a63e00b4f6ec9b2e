//! Tauri's build step. The app manifest lists every command, so that each one needs a permission
//! and the capability file (`capabilities/main.json`) grants exactly the ones the UI uses.

/// Every command in `src/commands.rs`.
const COMMANDS: &[&str] = &[
    "known_servers",
    "connect",
    "trust",
    "login",
    "logout",
    "me",
    "list_contacts",
    "get_contact",
    "create_contact",
    "update_contact",
    "contact_history",
    "contact_ledger",
    "record_event",
    "decide",
    "list_companies",
    "create_company",
    "get_company",
    "update_company",
    "list_users",
    "create_user",
    "update_user",
    "user_sessions",
    "revoke_session",
    "revoke_device",
    "get_policy",
    "policy_history",
    "update_policy",
    "open_evidence_pack",
];

fn main() {
    let manifest = tauri_build::AppManifest::new().commands(COMMANDS);
    if let Err(error) =
        tauri_build::try_build(tauri_build::Attributes::new().app_manifest(manifest))
    {
        eprintln!("tauri build step failed: {error:#}");
        std::process::exit(1);
    }
}
