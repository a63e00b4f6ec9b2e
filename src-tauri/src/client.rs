//! The API client: HTTPS only, the server's certificate pinned, every failure turned into a
//! [`DesktopError`] a person can act on. Tauri-free, so it is tested against a real server.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use assent_shared::api::{ApiError, ErrorCode};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{DesktopError, DesktopResult};
use crate::pin::{Fingerprint, PinningVerifier, Presented};
use crate::token::SessionToken;

/// A server's address as the app keeps it: `https://host:port`, nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerAddress(String);

impl ServerAddress {
    /// Parses what the user typed: `crm.example.org:8443` or `https://crm.example.org:8443`.
    pub fn parse(typed: &str) -> DesktopResult<Self> {
        let typed = typed.trim();
        if typed.is_empty() {
            return Err(DesktopError::BadAddress(
                "Enter the server's address.".into(),
            ));
        }
        let with_scheme = if typed.contains("://") {
            typed.to_owned()
        } else {
            format!("https://{typed}")
        };
        let url = url::Url::parse(&with_scheme).map_err(|e| {
            DesktopError::BadAddress(format!("\"{typed}\" is not a server address ({e})."))
        })?;
        if url.scheme() != "https" {
            return Err(DesktopError::BadAddress(
                "Assent connects only over HTTPS: use an https:// address.".into(),
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(DesktopError::BadAddress(
                "A server address carries no user name or password.".into(),
            ));
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err(DesktopError::BadAddress(
                "Give only the server's name and port, without a path.".into(),
            ));
        }
        let host = url
            .host_str()
            .ok_or_else(|| DesktopError::BadAddress("The address has no server name.".into()))?;
        let port = url.port_or_known_default().unwrap_or(443);
        Ok(ServerAddress(format!("https://{host}:{port}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ServerAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// How long to wait to connect, and for a whole answer (an audience decision over a million
/// contacts takes seconds).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// A connection to one server, through which only the pinned certificate is accepted.
#[derive(Clone)]
pub struct ApiClient {
    server: ServerAddress,
    pin: Option<Fingerprint>,
    presented: Presented,
    http: reqwest::Client,
}

impl ApiClient {
    fn build(server: &ServerAddress, pin: Option<Fingerprint>) -> DesktopResult<Self> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let presented: Presented = Arc::new(Mutex::new(None));
        let verifier = PinningVerifier::new(pin, presented.clone(), provider.clone());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| DesktopError::Server {
                status: 0,
                message: format!("TLS set-up failed: {e}"),
            })?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .https_only(true)
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("assent-desktop/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| DesktopError::Server {
                status: 0,
                message: format!("the HTTP client could not start: {e}"),
            })?;
        Ok(ApiClient {
            server: server.clone(),
            pin,
            presented,
            http,
        })
    }

    /// A client that accepts only the certificate with fingerprint `pin`.
    pub fn pinned(server: &ServerAddress, pin: Fingerprint) -> DesktopResult<Self> {
        Self::build(server, Some(pin))
    }

    /// The fingerprint of the certificate `server` presents, for the user to compare with the one
    /// the server printed. Nothing else from this connection is used.
    pub async fn probe(server: &ServerAddress) -> DesktopResult<Fingerprint> {
        let client = Self::build(server, None)?;
        client.handshake().await?;
        client.presented().ok_or_else(|| DesktopError::Unreachable {
            server: server.to_string(),
            detail: "it presented no certificate".into(),
        })
    }

    /// Connects and completes a TLS handshake (a request for `/healthz`, whatever its answer):
    /// fails if the server cannot be reached or, for a pinned client, presents another
    /// certificate.
    pub async fn handshake(&self) -> DesktopResult<()> {
        self.send(Method::GET, "/healthz", None, None::<&()>)
            .await
            .map(drop)
            .map_err(|e| self.transport_error(e))
    }

    pub fn server(&self) -> &ServerAddress {
        &self.server
    }

    fn presented(&self) -> Option<Fingerprint> {
        *self.presented.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn send<B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        token: Option<&SessionToken>,
        body: Option<&B>,
    ) -> Result<reqwest::Response, reqwest::Error> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.server.as_str()));
        if let Some(token) = token {
            request = request.bearer_auth(token.expose());
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await
    }

    /// A failure before any answer: a changed certificate, a timeout or no connection at all.
    fn transport_error(&self, error: reqwest::Error) -> DesktopError {
        let server = self.server.to_string();
        if let (Some(pin), Some(presented)) = (self.pin, self.presented()) {
            if pin != presented {
                return DesktopError::CertificateChanged {
                    server,
                    expected: pin.to_string(),
                    presented: presented.to_string(),
                };
            }
        }
        if error.is_timeout() {
            return DesktopError::Timeout { server };
        }
        // The innermost cause says what went wrong ("Connection refused"); the outer layers
        // only repeat the address.
        let mut cause: &dyn std::error::Error = &error;
        while let Some(source) = cause.source() {
            cause = source;
        }
        DesktopError::Unreachable {
            server,
            detail: cause.to_string(),
        }
    }

    /// Sends a request and reads the answer's body as text, or the error the server gave.
    async fn exchange<B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        token: Option<&SessionToken>,
        body: Option<&B>,
    ) -> DesktopResult<String> {
        let response = self
            .send(method, path, token, body)
            .await
            .map_err(|e| self.transport_error(e))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| self.transport_error(e))?;
        if status.is_success() {
            Ok(text)
        } else {
            Err(refusal(status, &text))
        }
    }

    /// A JSON request answered with JSON (`()` for an empty answer).
    pub async fn call<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        token: Option<&SessionToken>,
        body: Option<&B>,
    ) -> DesktopResult<T> {
        let text = self.exchange(method, path, token, body).await?;
        let text = if text.is_empty() { "null" } else { &text };
        serde_json::from_str(text).map_err(|e| DesktopError::Server {
            status: 200,
            message: format!(
                "the answer was not understood ({e}); is the server the same version as the app?"
            ),
        })
    }

    /// A request answered with text (an HTML evidence pack).
    pub async fn call_text(
        &self,
        path: &str,
        token: Option<&SessionToken>,
    ) -> DesktopResult<String> {
        self.exchange(Method::GET, path, token, None::<&()>).await
    }
}

/// The error for a refusal by the server, from the code of its `ApiError` body (the status when
/// the code is one this app does not know, or the body is not the API's).
fn refusal(status: StatusCode, body: &str) -> DesktopError {
    let error: ApiError = serde_json::from_str(body).unwrap_or_else(|_| ApiError {
        code: ErrorCode::Unknown,
        message: status
            .canonical_reason()
            .unwrap_or("unexpected answer")
            .to_owned(),
        fields: Vec::new(),
        conflict: None,
    });
    let invalid = |error: ApiError| DesktopError::Invalid {
        message: error.message,
        fields: error.fields,
    };
    match error.code {
        ErrorCode::LoginFailed | ErrorCode::TooManyAttempts => {
            DesktopError::LoginFailed(error.message)
        }
        ErrorCode::Unauthenticated => DesktopError::SessionEnded(error.message),
        ErrorCode::Forbidden => DesktopError::Forbidden(error.message),
        ErrorCode::NotFound | ErrorCode::RouteNotFound => DesktopError::NotFound(error.message),
        // A campaign in a state that does not allow the step: shown like a conflict, without
        // a newer version to name.
        ErrorCode::StaleVersion | ErrorCode::WrongState => DesktopError::Conflict {
            message: error.message,
            conflict: error.conflict,
        },
        // A taken value is shown beside its field, like any other invalid one.
        ErrorCode::AlreadyExists
        | ErrorCode::ValidationFailed
        | ErrorCode::InvalidBody
        | ErrorCode::BadRequest
        | ErrorCode::MalformedJson
        | ErrorCode::BodyTooLarge => invalid(error),
        ErrorCode::MethodNotAllowed | ErrorCode::Internal | ErrorCode::Unavailable => {
            DesktopError::Server {
                status: status.as_u16(),
                message: error.message,
            }
        }
        ErrorCode::Unknown => match status {
            StatusCode::UNAUTHORIZED => DesktopError::SessionEnded(error.message),
            StatusCode::FORBIDDEN => DesktopError::Forbidden(error.message),
            StatusCode::NOT_FOUND => DesktopError::NotFound(error.message),
            StatusCode::CONFLICT => DesktopError::Conflict {
                message: error.message,
                conflict: error.conflict,
            },
            StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => invalid(error),
            _ => DesktopError::Server {
                status: status.as_u16(),
                message: error.message,
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_https_with_an_explicit_port_and_nothing_else() {
        let parse = |s: &str| ServerAddress::parse(s).map(|a| a.to_string());
        assert_eq!(
            parse("crm.example.org:8443").unwrap(),
            "https://crm.example.org:8443"
        );
        assert_eq!(
            parse(" https://crm.example.org/ ").unwrap(),
            "https://crm.example.org:443"
        );
        assert_eq!(
            parse("https://127.0.0.1:8443").unwrap(),
            "https://127.0.0.1:8443"
        );
        for bad in [
            "",
            "http://crm.example.org",
            "https://crm.example.org/api",
            "https://u:p@crm.example.org",
            "https://",
        ] {
            assert!(
                matches!(ServerAddress::parse(bad), Err(DesktopError::BadAddress(_))),
                "{bad:?} was accepted"
            );
        }
    }

    #[test]
    fn refusals_become_errors_the_front_end_can_branch_on() {
        let body = |code: &str| format!(r#"{{"code":"{code}","message":"words"}}"#);
        assert!(matches!(
            refusal(StatusCode::UNAUTHORIZED, &body("login_failed")),
            DesktopError::LoginFailed(_)
        ));
        assert!(
            matches!(refusal(StatusCode::UNAUTHORIZED, &body("unauthenticated")), DesktopError::SessionEnded(m) if m == "words")
        );
        assert!(matches!(
            refusal(StatusCode::CONFLICT, &body("stale_version")),
            DesktopError::Conflict { .. }
        ));
        assert!(matches!(
            refusal(StatusCode::UNPROCESSABLE_ENTITY, &body("validation_failed")),
            DesktopError::Invalid { .. }
        ));
        assert!(matches!(
            refusal(StatusCode::CONFLICT, &body("already_exists")),
            DesktopError::Invalid { .. }
        ));
        assert!(matches!(
            refusal(StatusCode::TOO_MANY_REQUESTS, &body("too_many_attempts")),
            DesktopError::LoginFailed(_)
        ));
        // A code from a newer server falls back on the status.
        assert!(
            matches!(refusal(StatusCode::FORBIDDEN, &body("quota_exceeded")), DesktopError::Forbidden(m) if m == "words")
        );
        assert!(
            matches!(refusal(StatusCode::BAD_GATEWAY, "<html>"), DesktopError::Server { status: 502, message } if message == "Bad Gateway")
        );
    }
}
