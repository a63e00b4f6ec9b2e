//! A local double of the SMS gateway for the tests and benchmarks (feature `test-support`): the
//! Twilio Messages API's shape over real HTTPS on loopback, with its own self-signed certificate
//! (the client trusts it through `sms_gateway_ca`, as it would a private CA). It checks basic
//! authentication and the form, keeps what it took, answers as the gateway does (201 with a
//! `sid`; 4xx and 5xx with a `code`), can be told to fail a number, and signs replies as the
//! gateway signs its webhooks.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use serde_json::json;

use super::Gateway;
use crate::config::Secret;

/// A message the double took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub sid: String,
    pub to: String,
    pub from: String,
    pub body: String,
}

/// How the double answers a number it was told to fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// This status, with this error code in the body.
    Status(u16, Option<i64>),
    /// No answer until the client gives up.
    Hang,
}

#[derive(Default)]
struct Shared {
    received: Vec<Received>,
    faults: HashMap<String, Fault>,
}

#[derive(Clone)]
struct DoubleState {
    account: String,
    token: String,
    shared: Arc<Mutex<Shared>>,
}

/// The double, serving until dropped.
pub struct GatewayDouble {
    pub addr: SocketAddr,
    pub account: String,
    pub token: String,
    /// The PEM file of its certificate: the authority to trust.
    pub ca: std::path::PathBuf,
    shared: Arc<Mutex<Shared>>,
    handle: axum_server::Handle,
    _dir: tempfile::TempDir,
}

impl Drop for GatewayDouble {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

impl GatewayDouble {
    /// Starts the double on a loopback port of its own (on the current tokio runtime).
    pub async fn start() -> GatewayDouble {
        crate::tls::install_crypto_provider();
        let dir = tempfile::tempdir().expect("a temporary directory");
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port for the double");
        let addr = listener.local_addr().expect("the double's address");
        let identity =
            crate::tls::load_or_generate(dir.path(), addr).expect("the double's certificate");
        let ca = dir.path().join("tls/cert.pem");
        let rustls = crate::tls::server_config(identity).expect("the double's TLS");
        let account = format!("AC{}", uuid::Uuid::new_v4().simple());
        let token = uuid::Uuid::new_v4().simple().to_string();
        let shared = Arc::new(Mutex::new(Shared::default()));
        let state = DoubleState {
            account: account.clone(),
            token: token.clone(),
            shared: shared.clone(),
        };
        // The double is not the API: its route is not in the OpenAPI description.
        #[allow(clippy::disallowed_methods)]
        let app = axum::Router::new()
            .route(
                "/2010-04-01/Accounts/{account}/Messages.json",
                axum::routing::post(create_message),
            )
            .with_state(state);
        let handle = axum_server::Handle::new();
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let server = axum_server::from_tcp_rustls(
            listener,
            axum_server::tls_rustls::RustlsConfig::from_config(rustls),
        )
        .handle(handle.clone())
        .serve(app.into_make_service());
        tokio::spawn(server);
        GatewayDouble {
            addr,
            account,
            token,
            ca,
            shared,
            handle,
            _dir: dir,
        }
    }

    /// The gateway settings that reach this double.
    pub fn gateway(&self) -> Gateway {
        Gateway {
            url: self.messages_url().parse().expect("the double's URL"),
            account: self.account.clone(),
            auth_token: Secret::new(self.token.clone()),
            authorities: Some(self.ca.clone()),
            timeout: Duration::from_secs(5),
            connections: 4,
        }
    }

    pub fn messages_url(&self) -> String {
        format!(
            "https://localhost:{}/2010-04-01/Accounts/{}/Messages.json",
            self.addr.port(),
            self.account
        )
    }

    /// What the double took, in order.
    pub fn received(&self) -> Vec<Received> {
        self.shared
            .lock()
            .expect("the double's state")
            .received
            .clone()
    }

    /// Answers every message to `to` with `fault` from now on.
    pub fn fail(&self, to: &str, fault: Fault) {
        self.shared
            .lock()
            .expect("the double's state")
            .faults
            .insert(to.to_owned(), fault);
    }

    /// A reply from `from` with `body`, as the gateway would POST it to `url`: its form fields and
    /// its `X-Twilio-Signature`.
    pub fn reply(
        &self,
        url: &str,
        from: &str,
        to: &str,
        body: &str,
    ) -> (Vec<(String, String)>, String) {
        let fields: Vec<(String, String)> = [
            ("AccountSid", self.account.as_str()),
            (
                "MessageSid",
                &format!("SM{}", uuid::Uuid::new_v4().simple()),
            ),
            ("From", from),
            ("To", to),
            ("Body", body),
            ("NumMedia", "0"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let signature = super::signature(&self.token, url, &fields);
        (fields, signature)
    }
}

fn error(status: StatusCode, code: i64, message: &str) -> Response {
    (
        status,
        Json(json!({"code": code, "message": message, "status": status.as_u16()})),
    )
        .into_response()
}

async fn create_message(
    State(state): State<DoubleState>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let expected = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", state.account, state.token));
    let authorised = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        == Some(expected.as_str());
    if !authorised || account != state.account {
        return error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    }
    let form: HashMap<String, String> = form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let (Some(to), Some(from), Some(text)) = (form.get("To"), form.get("From"), form.get("Body"))
    else {
        return error(
            StatusCode::BAD_REQUEST,
            21604,
            "A 'To', 'From' and 'Body' are required",
        );
    };
    let fault = state
        .shared
        .lock()
        .expect("the double's state")
        .faults
        .get(to)
        .copied();
    match fault {
        Some(Fault::Hang) => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        Some(Fault::Status(status, code)) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return error(status, code.unwrap_or(0), "as the test asked");
        }
        None => {}
    }
    let valid = to
        .strip_prefix('+')
        .is_some_and(|d| (8..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()));
    if !valid {
        return error(
            StatusCode::BAD_REQUEST,
            21211,
            "The 'To' number is not a valid phone number.",
        );
    }
    let sid = format!("SM{}", uuid::Uuid::new_v4().simple());
    state
        .shared
        .lock()
        .expect("the double's state")
        .received
        .push(Received {
            sid: sid.clone(),
            to: to.clone(),
            from: from.clone(),
            body: text.clone(),
        });
    (
        StatusCode::CREATED,
        Json(json!({"sid": sid, "status": "queued", "to": to, "from": from, "body": text})),
    )
        .into_response()
}
