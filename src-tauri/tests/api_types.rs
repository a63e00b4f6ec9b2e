//! The TypeScript declarations the front end uses (`ui/src/lib/api-types/`) are generated from
//! the Rust API types by ts-rs. This test regenerates them and fails when the committed files
//! differ; run it with `UPDATE_API_TYPES=1` to rewrite them after changing a type.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use assent_shared::api;
use ts_rs::{Config, TS};

fn committed_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../ui/src/lib/api-types")
}

/// Every `.ts` file under `dir`, by file name.
fn read_all(dir: &Path) -> BTreeMap<String, String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return BTreeMap::new();
    };
    entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "ts"))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read_to_string(e.path()).unwrap(),
            )
        })
        .collect()
}

/// The types the commands take and return; ts-rs follows their fields to the rest.
fn export_all(dir: &Path) {
    // 64-bit integers are JSON numbers on the IPC wire, never BigInt, which JSON cannot carry.
    let config = Config::new().with_large_int("number").with_out_dir(dir);
    macro_rules! export {
        ($($ty:ty),+ $(,)?) => { $( <$ty>::export_all(&config).expect(concat!("export ", stringify!($ty))); )+ };
    }
    export!(
        api::ApiError,
        api::DataRequest,
        api::User,
        api::LoginResponse,
        api::Contact,
        api::ContactInput,
        api::ContactPage,
        api::Company,
        api::CompanyInput,
        api::CompanyPage,
        api::FieldChange,
        api::NewLedgerEvent,
        api::RecordedEvent,
        api::ConsentWordingPage,
        api::DecisionRequest,
        api::DecisionResponse,
        api::SessionInfo,
        api::PolicyVersion,
        api::PolicyChange,
        api::NewUser,
        api::UserUpdate,
        api::RevokedCount,
        api::Campaign,
        api::CampaignInput,
        api::CampaignEdit,
        api::CampaignApproval,
        api::CampaignRejection,
        api::CampaignPage,
        api::CampaignPreview,
        api::CampaignProgress,
        api::CampaignTestSend,
        api::IndeterminateRecipients,
        api::IndeterminateResend,
        api::Communication,
        api::NewLoggedCommunication,
        api::TopicCatalogue,
        api::SavedFilter,
    );
}

#[test]
fn the_front_ends_api_types_match_the_rust_ones() {
    let generated = tempfile::tempdir().unwrap();
    export_all(generated.path());
    let fresh = read_all(generated.path());
    assert!(
        fresh.contains_key("Contact.ts"),
        "ts-rs wrote: {:?}",
        fresh.keys()
    );
    if std::env::var_os("UPDATE_API_TYPES").is_some() {
        let dir = committed_dir();
        if dir.exists() {
            std::fs::remove_dir_all(&dir).unwrap();
        }
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text) in &fresh {
            std::fs::write(dir.join(name), text).unwrap();
        }
        return;
    }
    let committed = read_all(&committed_dir());
    let stale: Vec<&String> = fresh
        .keys()
        .filter(|name| committed.get(*name) != fresh.get(*name))
        .collect();
    let extra: Vec<&String> = committed
        .keys()
        .filter(|name| !fresh.contains_key(*name))
        .collect();
    assert!(
        stale.is_empty() && extra.is_empty(),
        "ui/src/lib/api-types is out of date (changed or missing: {stale:?}; no longer generated: {extra:?}). \
         Run `UPDATE_API_TYPES=1 cargo test -p assent-desktop --test api_types` and commit the result."
    );
}
