//! Tauri's build step. The app manifest lists every command, so that each one needs a permission,
//! and the main window's capability (`capabilities/main.json`, written here from the same list)
//! grants exactly those: no core, fs, http, shell or store permissions.

/// Every command in `src/commands.rs`.
const COMMANDS: &[&str] = &[
    "known_servers",
    "connect",
    "trust",
    "login",
    "logout",
    "list_contacts",
    "get_contact",
    "create_contact",
    "update_contact",
    "contact_history",
    "contact_ledger",
    "list_consent_wordings",
    "record_event",
    "decide",
    "list_companies",
    "create_company",
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
    "contact_communications",
    "log_communication",
    "list_topics",
    "list_filters",
    "list_data_requests",
    "list_campaigns",
    "get_campaign",
    "create_campaign",
    "edit_campaign",
    "preview_campaign",
    "test_send_campaign",
    "campaign_step",
    "approve_campaign",
    "reject_campaign",
    "campaign_progress",
    "indeterminate_recipients",
    "resend_indeterminate",
];

/// The capability file for `COMMANDS`, rewritten only when it changes (Tauri's build step reads
/// it, and a rewrite would rebuild the crate every time).
fn write_capability() -> std::io::Result<()> {
    let permissions: Vec<String> = COMMANDS
        .iter()
        .map(|c| format!("    \"allow-{}\"", c.replace('_', "-")))
        .collect();
    let text = format!(
        "{{\n  \"$schema\": \"../gen/schemas/desktop-schema.json\",\n  \"identifier\": \"main\",\n  \
         \"description\": \"Written by build.rs from its COMMANDS: the main window may call exactly the app's own commands.\",\n  \
         \"windows\": [\"main\"],\n  \"permissions\": [\n{}\n  ]\n}}\n",
        permissions.join(",\n")
    );
    let path = std::path::Path::new("capabilities/main.json");
    if std::fs::read_to_string(path).ok().as_deref() != Some(text.as_str()) {
        std::fs::write(path, text)?;
    }
    Ok(())
}

fn main() {
    if let Err(error) = write_capability() {
        eprintln!("cannot write capabilities/main.json: {error}");
        std::process::exit(1);
    }
    let manifest = tauri_build::AppManifest::new().commands(COMMANDS);
    if let Err(error) =
        tauri_build::try_build(tauri_build::Attributes::new().app_manifest(manifest))
    {
        eprintln!("tauri build step failed: {error:#}");
        std::process::exit(1);
    }
}
