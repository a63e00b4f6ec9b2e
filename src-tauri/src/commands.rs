//! The Tauri commands: the only way the front end reaches anything. Each is a thin adapter over
//! [`Desktop`]; the paths and query strings of the API are built here, from typed arguments.

use assent_shared::api::{
    Campaign, CampaignApproval, CampaignEdit, CampaignInput, CampaignPage, CampaignPreview,
    CampaignProgress, CampaignRejection, CampaignTestSend, Communication, Company, CompanyInput,
    CompanyPage, ConsentWordingPage, Contact, ContactInput, ContactPage, DataRequest,
    DecisionRequest, DecisionResponse, FieldChange, IndeterminateRecipients, IndeterminateResend,
    NewLedgerEvent, NewLoggedCommunication, NewUser, PolicyChange, PolicyVersion, RecordedEvent,
    RevokeSessions, RevokedCount, SavedFilter, SessionInfo, TopicCatalogue, User, UserUpdate,
    VersionOnly,
};
use assent_shared::domain::CampaignState;
use reqwest::Method;
use tauri::State;
use uuid::Uuid;

use crate::desktop::{Connection, Desktop};
use crate::error::{DesktopError, DesktopResult};
use crate::evidence::{self, EvidencePages};
use crate::WebviewSettings;
use tauri::Manager;

type Desk<'a> = State<'a, Desktop>;

/// `?q=…&after=…&limit=…` from what is given.
fn list_query(q: Option<&str>, after: Option<&str>, limit: Option<u32>) -> String {
    query_string([
        ("q", search(q)),
        ("after", after.map(str::to_owned)),
        ("limit", limit.map(|l| l.to_string())),
    ])
}

/// A search as typed: a blank one is none.
fn search(q: Option<&str>) -> Option<String> {
    q.filter(|q| !q.trim().is_empty()).map(str::to_owned)
}

/// `?name=value&…` of the pairs that have a value, or nothing.
fn query_string<'a>(pairs: impl IntoIterator<Item = (&'a str, Option<String>)>) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        if let Some(value) = value {
            query.append_pair(name, &value);
        }
    }
    let query = query.finish();
    if query.is_empty() {
        query
    } else {
        format!("?{query}")
    }
}

#[tauri::command]
pub fn known_servers(desktop: Desk<'_>) -> DesktopResult<Vec<String>> {
    desktop.known_servers()
}

#[tauri::command]
pub async fn connect(desktop: Desk<'_>, address: String) -> DesktopResult<Connection> {
    desktop.connect(&address).await
}

#[tauri::command]
pub async fn trust(
    desktop: Desk<'_>,
    address: String,
    fingerprint: String,
) -> DesktopResult<Connection> {
    desktop.trust(&address, &fingerprint).await
}

#[tauri::command]
pub async fn login(
    desktop: Desk<'_>,
    email: String,
    password: String,
    device_name: String,
) -> DesktopResult<User> {
    desktop.login(&email, &password, &device_name).await
}

/// Logs out; the windows then forget what they showed ([`forget_windows`]).
#[tauri::command]
pub async fn logout(desktop: Desk<'_>) -> DesktopResult<()> {
    desktop.logout().await
}

/// What the app does when a session ends, so that the next person at this computer starts from
/// nothing: every evidence viewer closes (its page is dropped as it closes) and the main
/// window's browsing data is cleared. Every window is tried; the failures are listed.
pub fn forget_windows(app: &tauri::AppHandle) -> Result<(), String> {
    let failures: Vec<String> = app
        .webview_windows()
        .into_iter()
        .filter_map(|(label, window)| {
            let done = if label == crate::MAIN_WINDOW {
                window.clear_all_browsing_data()
            } else {
                window.destroy()
            };
            done.err().map(|e| format!("{label}: {e}"))
        })
        .collect();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "What the app showed could not all be forgotten ({}). Close the app to be sure.",
            failures.join("; ")
        ))
    }
}

#[tauri::command]
pub async fn list_contacts(
    desktop: Desk<'_>,
    q: Option<String>,
    after: Option<String>,
    limit: Option<u32>,
) -> DesktopResult<ContactPage> {
    let path = format!(
        "/api/v1/contacts{}",
        list_query(q.as_deref(), after.as_deref(), limit)
    );
    desktop.call(Method::GET, &path, None::<&()>).await
}

#[tauri::command]
pub async fn get_contact(desktop: Desk<'_>, id: Uuid) -> DesktopResult<Contact> {
    desktop
        .call(Method::GET, &format!("/api/v1/contacts/{id}"), None::<&()>)
        .await
}

#[tauri::command]
pub async fn create_contact(desktop: Desk<'_>, contact: ContactInput) -> DesktopResult<Contact> {
    desktop
        .call(Method::POST, "/api/v1/contacts", Some(&contact))
        .await
}

#[tauri::command]
pub async fn update_contact(
    desktop: Desk<'_>,
    id: Uuid,
    contact: ContactInput,
) -> DesktopResult<Contact> {
    desktop
        .call(
            Method::PUT,
            &format!("/api/v1/contacts/{id}"),
            Some(&contact),
        )
        .await
}

#[tauri::command]
pub async fn contact_history(desktop: Desk<'_>, id: Uuid) -> DesktopResult<Vec<FieldChange>> {
    desktop
        .call(
            Method::GET,
            &format!("/api/v1/contacts/{id}/history"),
            None::<&()>,
        )
        .await
}

#[tauri::command]
pub async fn contact_ledger(desktop: Desk<'_>, id: Uuid) -> DesktopResult<Vec<RecordedEvent>> {
    desktop
        .call(
            Method::GET,
            &format!("/api/v1/contacts/{id}/ledger"),
            None::<&()>,
        )
        .await
}

/// The consent wordings recorded so far, newest first, for the consent form to cite.
#[tauri::command]
pub async fn list_consent_wordings(
    desktop: Desk<'_>,
    q: Option<String>,
    before: Option<i64>,
    limit: Option<u32>,
) -> DesktopResult<ConsentWordingPage> {
    let query = query_string([
        ("q", search(q.as_deref())),
        ("before", before.map(|b| b.to_string())),
        ("limit", limit.map(|l| l.to_string())),
    ]);
    desktop
        .call(
            Method::GET,
            &format!("/api/v1/consent-wordings{query}"),
            None::<&()>,
        )
        .await
}

#[tauri::command]
pub async fn record_event(
    desktop: Desk<'_>,
    id: Uuid,
    event: NewLedgerEvent,
) -> DesktopResult<RecordedEvent> {
    desktop
        .call(
            Method::POST,
            &format!("/api/v1/contacts/{id}/ledger"),
            Some(&event),
        )
        .await
}

#[tauri::command]
pub async fn decide(
    desktop: Desk<'_>,
    request: DecisionRequest,
) -> DesktopResult<DecisionResponse> {
    desktop
        .call(Method::POST, "/api/v1/decisions", Some(&request))
        .await
}

#[tauri::command]
pub async fn list_companies(
    desktop: Desk<'_>,
    q: Option<String>,
    after: Option<String>,
    limit: Option<u32>,
) -> DesktopResult<CompanyPage> {
    let path = format!(
        "/api/v1/companies{}",
        list_query(q.as_deref(), after.as_deref(), limit)
    );
    desktop.call(Method::GET, &path, None::<&()>).await
}

#[tauri::command]
pub async fn create_company(desktop: Desk<'_>, company: CompanyInput) -> DesktopResult<Company> {
    desktop
        .call(Method::POST, "/api/v1/companies", Some(&company))
        .await
}

#[tauri::command]
pub async fn update_company(
    desktop: Desk<'_>,
    id: Uuid,
    company: CompanyInput,
) -> DesktopResult<Company> {
    desktop
        .call(
            Method::PUT,
            &format!("/api/v1/companies/{id}"),
            Some(&company),
        )
        .await
}

#[tauri::command]
pub async fn list_users(desktop: Desk<'_>) -> DesktopResult<Vec<User>> {
    desktop
        .call(Method::GET, "/api/v1/users", None::<&()>)
        .await
}

#[tauri::command]
pub async fn create_user(desktop: Desk<'_>, user: NewUser) -> DesktopResult<User> {
    desktop
        .call(Method::POST, "/api/v1/users", Some(&user))
        .await
}

#[tauri::command]
pub async fn update_user(desktop: Desk<'_>, id: Uuid, update: UserUpdate) -> DesktopResult<User> {
    desktop
        .call(Method::PATCH, &format!("/api/v1/users/{id}"), Some(&update))
        .await
}

#[tauri::command]
pub async fn user_sessions(desktop: Desk<'_>, id: Uuid) -> DesktopResult<Vec<SessionInfo>> {
    desktop
        .call(
            Method::GET,
            &format!("/api/v1/users/{id}/sessions"),
            None::<&()>,
        )
        .await
}

#[tauri::command]
pub async fn revoke_session(desktop: Desk<'_>, id: Uuid) -> DesktopResult<()> {
    desktop
        .call(
            Method::DELETE,
            &format!("/api/v1/sessions/{id}"),
            None::<&()>,
        )
        .await
}

/// Revokes every session of one device of a user (a stolen laptop), or all of the user's.
#[tauri::command]
pub async fn revoke_device(
    desktop: Desk<'_>,
    user_id: Uuid,
    device_name: Option<String>,
) -> DesktopResult<RevokedCount> {
    let request = RevokeSessions {
        user_id,
        device_name,
    };
    desktop
        .call(Method::POST, "/api/v1/sessions/revoke", Some(&request))
        .await
}

#[tauri::command]
pub async fn get_policy(desktop: Desk<'_>) -> DesktopResult<PolicyVersion> {
    desktop
        .call(Method::GET, "/api/v1/policy", None::<&()>)
        .await
}

#[tauri::command]
pub async fn policy_history(desktop: Desk<'_>) -> DesktopResult<Vec<PolicyVersion>> {
    desktop
        .call(Method::GET, "/api/v1/policy/history", None::<&()>)
        .await
}

#[tauri::command]
pub async fn update_policy(
    desktop: Desk<'_>,
    change: PolicyChange,
) -> DesktopResult<PolicyVersion> {
    desktop
        .call(Method::PUT, "/api/v1/policy", Some(&change))
        .await
}

/// A contact's communication log: every message decided for them, with its warrant.
#[tauri::command]
pub async fn contact_communications(
    desktop: Desk<'_>,
    id: Uuid,
) -> DesktopResult<Vec<Communication>> {
    desktop
        .call(
            Method::GET,
            &format!("/api/v1/contacts/{id}/communications"),
            None::<&()>,
        )
        .await
}

/// Logs a call, letter or fax made to a contact (decided first when it is marketing).
#[tauri::command]
pub async fn log_communication(
    desktop: Desk<'_>,
    id: Uuid,
    communication: NewLoggedCommunication,
) -> DesktopResult<Communication> {
    desktop
        .call(
            Method::POST,
            &format!("/api/v1/contacts/{id}/communications"),
            Some(&communication),
        )
        .await
}

#[tauri::command]
pub async fn list_topics(desktop: Desk<'_>) -> DesktopResult<TopicCatalogue> {
    desktop
        .call(Method::GET, "/api/v1/topics", None::<&()>)
        .await
}

#[tauri::command]
pub async fn list_filters(desktop: Desk<'_>) -> DesktopResult<Vec<SavedFilter>> {
    desktop
        .call(Method::GET, "/api/v1/filters", None::<&()>)
        .await
}

/// The requests people made on the public data request page, newest first.
#[tauri::command]
pub async fn list_data_requests(desktop: Desk<'_>) -> DesktopResult<Vec<DataRequest>> {
    desktop
        .call(Method::GET, "/api/v1/data-requests", None::<&()>)
        .await
}

/// Campaigns newest first, of one state (`submitted`: waiting for approval) or any.
#[tauri::command]
pub async fn list_campaigns(
    desktop: Desk<'_>,
    state: Option<CampaignState>,
) -> DesktopResult<CampaignPage> {
    let query = query_string([("state", state.map(|s| s.as_str().to_owned()))]);
    desktop
        .call(
            Method::GET,
            &format!("/api/v1/campaigns{query}"),
            None::<&()>,
        )
        .await
}

#[tauri::command]
pub async fn get_campaign(desktop: Desk<'_>, id: Uuid) -> DesktopResult<Campaign> {
    desktop
        .call(Method::GET, &format!("/api/v1/campaigns/{id}"), None::<&()>)
        .await
}

#[tauri::command]
pub async fn create_campaign(
    desktop: Desk<'_>,
    campaign: CampaignInput,
) -> DesktopResult<Campaign> {
    desktop
        .call(Method::POST, "/api/v1/campaigns", Some(&campaign))
        .await
}

#[tauri::command]
pub async fn edit_campaign(
    desktop: Desk<'_>,
    id: Uuid,
    edit: CampaignEdit,
) -> DesktopResult<Campaign> {
    desktop
        .call(Method::PUT, &format!("/api/v1/campaigns/{id}"), Some(&edit))
        .await
}

#[tauri::command]
pub async fn preview_campaign(desktop: Desk<'_>, id: Uuid) -> DesktopResult<CampaignPreview> {
    desktop
        .call(
            Method::GET,
            &format!("/api/v1/campaigns/{id}/preview"),
            None::<&()>,
        )
        .await
}

/// Sends the campaign, as its first sendable recipient would get it, to the user's own address.
#[tauri::command]
pub async fn test_send_campaign(desktop: Desk<'_>, id: Uuid) -> DesktopResult<CampaignTestSend> {
    desktop
        .call(
            Method::POST,
            &format!("/api/v1/campaigns/{id}/test-send"),
            None::<&()>,
        )
        .await
}

/// A step of a campaign's workflow that takes only the version it was made against.
#[derive(Debug, Clone, Copy, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CampaignStep {
    Submit,
    Send,
    Pause,
    Resume,
    Cancel,
}

impl CampaignStep {
    fn path(self) -> &'static str {
        match self {
            CampaignStep::Submit => "submit",
            CampaignStep::Send => "send",
            CampaignStep::Pause => "pause",
            CampaignStep::Resume => "resume",
            CampaignStep::Cancel => "cancel",
        }
    }
}

#[tauri::command]
pub async fn campaign_step(
    desktop: Desk<'_>,
    id: Uuid,
    step: CampaignStep,
    version: i64,
) -> DesktopResult<Campaign> {
    desktop
        .call(
            Method::POST,
            &format!("/api/v1/campaigns/{id}/{}", step.path()),
            Some(&VersionOnly { version }),
        )
        .await
}

#[tauri::command]
pub async fn approve_campaign(
    desktop: Desk<'_>,
    id: Uuid,
    approval: CampaignApproval,
) -> DesktopResult<Campaign> {
    desktop
        .call(
            Method::POST,
            &format!("/api/v1/campaigns/{id}/approve"),
            Some(&approval),
        )
        .await
}

#[tauri::command]
pub async fn reject_campaign(
    desktop: Desk<'_>,
    id: Uuid,
    rejection: CampaignRejection,
) -> DesktopResult<Campaign> {
    desktop
        .call(
            Method::POST,
            &format!("/api/v1/campaigns/{id}/reject"),
            Some(&rejection),
        )
        .await
}

#[tauri::command]
pub async fn campaign_progress(desktop: Desk<'_>, id: Uuid) -> DesktopResult<CampaignProgress> {
    desktop
        .call(
            Method::GET,
            &format!("/api/v1/campaigns/{id}/progress"),
            None::<&()>,
        )
        .await
}

#[tauri::command]
pub async fn indeterminate_recipients(
    desktop: Desk<'_>,
    id: Uuid,
) -> DesktopResult<IndeterminateRecipients> {
    desktop
        .call(
            Method::GET,
            &format!("/api/v1/campaigns/{id}/indeterminate"),
            None::<&()>,
        )
        .await
}

/// The explicit choice to send the named indeterminate recipients their message again.
#[tauri::command]
pub async fn resend_indeterminate(
    desktop: Desk<'_>,
    id: Uuid,
    resend: IndeterminateResend,
) -> DesktopResult<Campaign> {
    desktop
        .call(
            Method::POST,
            &format!("/api/v1/campaigns/{id}/indeterminate/resend"),
            Some(&resend),
        )
        .await
}

/// Opens a contact's evidence pack in a viewer window of its own; nothing is saved.
#[tauri::command]
pub async fn open_evidence_pack(
    app: tauri::AppHandle,
    desktop: Desk<'_>,
    pages: State<'_, EvidencePages>,
    webview: State<'_, WebviewSettings>,
    id: Uuid,
) -> DesktopResult<()> {
    let html = desktop
        .call_text(&format!("/api/v1/contacts/{id}/evidence-pack?format=html"))
        .await?;
    let key = pages.insert(html);
    let url = format!("{}://localhost/{key}", evidence::SCHEME)
        .parse()
        .map_err(|e| format!("{e}"));
    let window = url.and_then(|url| {
        webview
            .window(
                &app,
                &format!("evidence-{key}"),
                tauri::WebviewUrl::CustomProtocol(url),
            )
            .title("Evidence pack")
            .inner_size(960.0, 800.0)
            .build()
            .map_err(|e| e.to_string())
    });
    let window = match window {
        Ok(window) => window,
        Err(e) => {
            // No window will ever ask for the page: it is not kept.
            pages.remove(&key);
            return Err(DesktopError::Webview(format!(
                "The evidence pack window could not open: {e}"
            )));
        }
    };
    let app = app.clone();
    window.on_window_event(move |event| {
        if let tauri::WindowEvent::Destroyed = event {
            app.state::<EvidencePages>().remove(&key);
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_queries_are_encoded_and_leave_out_what_is_not_given() {
        assert_eq!(list_query(None, None, None), "");
        assert_eq!(list_query(Some("  "), None, Some(50)), "?limit=50");
        assert_eq!(
            list_query(Some("o'brien & co"), Some("abc=="), None),
            "?q=o%27brien+%26+co&after=abc%3D%3D"
        );
        assert_eq!(
            query_string([("q", search(Some("Boiler"))), ("before", Some("7".into()))]),
            "?q=Boiler&before=7"
        );
    }
}
