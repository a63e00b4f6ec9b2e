//! The app's state and everything its commands do, free of Tauri: which server it talks to, the
//! pinned certificate, the session. Commands in `commands.rs` are one-line adapters over this.
//!
//! Architecture invariant: nothing here writes CRM data anywhere but to the screen. The token is
//! in the keyring, the pin in the known-servers file; answers pass through to the front end.

use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use assent_shared::api::{LoginRequest, LoginResponse, User};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::client::{ApiClient, ServerAddress};
use crate::error::{DesktopError, DesktopResult};
use crate::pin::{Fingerprint, PinStore};
use crate::token::{SessionToken, TokenStore};

/// Where a connection stands after `connect` or `trust`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Connection {
    /// First contact with this server: the user compares `fingerprint` with the one the server
    /// printed when it started, then trusts it or not.
    Unknown { server: String, fingerprint: String },
    /// The pinned certificate answered. `user` is set when the session kept in the keyring is
    /// still good, so no login is needed.
    Trusted {
        server: String,
        fingerprint: String,
        user: Option<User>,
    },
}

#[derive(Default)]
struct State {
    client: Option<ApiClient>,
    token: Option<SessionToken>,
}

/// What the app does when a session ends (logout, revocation, expiry): forget what the screens
/// showed. An error says what could not be forgotten.
pub type SessionEndHook = Box<dyn Fn() -> Result<(), String> + Send + Sync>;

pub struct Desktop {
    pins: PinStore,
    tokens: Arc<dyn TokenStore>,
    state: Mutex<State>,
    on_session_end: OnceLock<SessionEndHook>,
}

impl Desktop {
    pub fn new(pins: PinStore, tokens: Arc<dyn TokenStore>) -> Self {
        Desktop {
            pins,
            tokens,
            state: Mutex::new(State::default()),
            on_session_end: OnceLock::new(),
        }
    }

    /// Sets what to do whenever a session ends; set once, when the app's windows exist.
    pub fn on_session_end(&self, hook: SessionEndHook) {
        if self.on_session_end.set(hook).is_err() {
            eprintln!("assent-desktop: the session-end hook was set twice; the first one stays");
        }
    }

    fn session_ended(&self) -> DesktopResult<()> {
        match self.on_session_end.get() {
            Some(hook) => hook().map_err(DesktopError::Webview),
            None => Ok(()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Held only for moments, never across a request; a poisoned lock still holds whole data.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The servers this app has trusted before, to offer at the connect screen.
    pub fn known_servers(&self) -> DesktopResult<Vec<String>> {
        Ok(self.pins.servers()?)
    }

    /// Connects to the server at `typed`: a pinned server is checked against its pin (and a kept
    /// session against the server); an unknown one is probed for its fingerprint.
    pub async fn connect(&self, typed: &str) -> DesktopResult<Connection> {
        let server = ServerAddress::parse(typed)?;
        // Whatever comes of it, the app is no longer connected where it was.
        *self.state() = State::default();
        let Some(pin) = self.pins.get(server.as_str())? else {
            let fingerprint = ApiClient::probe(&server).await?;
            return Ok(Connection::Unknown {
                server: server.to_string(),
                fingerprint: fingerprint.to_string(),
            });
        };
        let client = ApiClient::pinned(&server, pin)?;
        // With a kept session, asking who it belongs to also proves the pin; without one, a
        // handshake does.
        let user = match self.load_token(&server).await? {
            Some(token) => match client
                .call::<User, ()>(Method::GET, "/api/v1/me", Some(&token), None)
                .await
            {
                Ok(user) => Some((user, token)),
                Err(DesktopError::SessionEnded(_)) => {
                    self.forget_token(&server).await;
                    None
                }
                Err(other) => return Err(other),
            },
            None => {
                client.handshake().await?;
                None
            }
        };
        *self.state() = State {
            client: Some(client),
            token: user.as_ref().map(|(_, token)| token.clone()),
        };
        Ok(Connection::Trusted {
            server: server.to_string(),
            fingerprint: pin.to_string(),
            user: user.map(|(user, _)| user),
        })
    }

    /// Trusts the server at `typed` once the user has compared the fingerprint shown: pins it
    /// only if the server still presents exactly that certificate, then connects.
    pub async fn trust(&self, typed: &str, fingerprint: &str) -> DesktopResult<Connection> {
        let server = ServerAddress::parse(typed)?;
        let confirmed: Fingerprint = fingerprint
            .parse()
            .map_err(|_| DesktopError::FingerprintMismatch)?;
        if ApiClient::probe(&server).await? != confirmed {
            return Err(DesktopError::FingerprintMismatch);
        }
        self.pins.set(server.as_str(), confirmed)?;
        self.connect(server.as_str()).await
    }

    /// The keyring is reached over D-Bus and may wait for an unlock prompt: its calls run on a
    /// blocking thread, never on the runtime's few workers.
    async fn keyring<T: Send + 'static>(
        &self,
        call: impl FnOnce(&dyn TokenStore) -> Result<T, crate::token::TokenStoreError> + Send + 'static,
    ) -> DesktopResult<T> {
        let tokens = self.tokens.clone();
        tokio::task::spawn_blocking(move || call(tokens.as_ref()))
            .await
            .map_err(|e| DesktopError::Keyring(e.to_string()))?
            .map_err(DesktopError::from)
    }

    async fn load_token(&self, server: &ServerAddress) -> DesktopResult<Option<SessionToken>> {
        let server = server.to_string();
        self.keyring(move |tokens| tokens.load(&server)).await
    }

    async fn save_token(&self, server: &ServerAddress, token: &SessionToken) -> DesktopResult<()> {
        let (server, token) = (server.to_string(), token.clone());
        self.keyring(move |tokens| tokens.save(&server, &token))
            .await
    }

    async fn delete_token(&self, server: &ServerAddress) -> DesktopResult<()> {
        let server = server.to_string();
        self.keyring(move |tokens| tokens.delete(&server)).await
    }

    /// Deletes the token of a session the server has already ended. The token is worthless, so
    /// a keyring that fails is reported on standard error rather than in the user's way.
    async fn forget_token(&self, server: &ServerAddress) {
        if let Err(e) = self.delete_token(server).await {
            eprintln!("assent-desktop: an ended session's token stays in the keyring: {e}");
        }
    }

    /// Logs in; the token goes to the keyring under the server's address.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        device_name: &str,
    ) -> DesktopResult<User> {
        let client = self
            .state()
            .client
            .clone()
            .ok_or(DesktopError::NotConnected)?;
        let request = LoginRequest {
            email: email.to_owned(),
            password: password.to_owned(),
            device_name: device_name.to_owned(),
        };
        let login: LoginResponse = client
            .call(Method::POST, "/api/v1/sessions", None, Some(&request))
            .await?;
        let token = SessionToken::new(login.token);
        self.save_token(client.server(), &token).await?;
        self.state().token = Some(token);
        Ok(login.user)
    }

    /// Ends the session on the server (when it still can), forgets the token and what the
    /// screens showed. Every step is tried whatever the others do; the first failure is returned.
    pub async fn logout(&self) -> DesktopResult<()> {
        let (client, token) = {
            let mut state = self.state();
            (state.client.clone(), state.token.take())
        };
        let ended = match (&client, token) {
            (Some(client), Some(token)) => match client
                .call::<(), ()>(
                    Method::DELETE,
                    "/api/v1/sessions/current",
                    Some(&token),
                    None,
                )
                .await
            {
                Ok(()) | Err(DesktopError::SessionEnded(_)) => Ok(()),
                Err(other) => Err(other),
            },
            _ => Ok(()),
        };
        let forgotten = match &client {
            Some(client) => self.delete_token(client.server()).await,
            None => Ok(()),
        };
        let cleared = self.session_ended();
        ended.and(forgotten).and(cleared)
    }

    fn session(&self) -> DesktopResult<(ApiClient, SessionToken)> {
        let state = self.state();
        let client = state.client.clone().ok_or(DesktopError::NotConnected)?;
        let token = state.token.clone().ok_or(DesktopError::NotLoggedIn)?;
        Ok((client, token))
    }

    /// A session that ended on the server (revoked, expired) is forgotten here too.
    async fn forget_ended<T>(
        &self,
        client: &ApiClient,
        result: DesktopResult<T>,
    ) -> DesktopResult<T> {
        if let Err(DesktopError::SessionEnded(_)) = &result {
            self.state().token = None;
            self.forget_token(client.server()).await;
            // The user is sent back to login whatever happens here: that error is the answer.
            if let Err(e) = self.session_ended() {
                eprintln!("assent-desktop: after the session ended: {e}");
            }
        }
        result
    }

    /// An API call in the current session.
    pub async fn call<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> DesktopResult<T> {
        let (client, token) = self.session()?;
        let result = client.call(method, path, Some(&token), body).await;
        self.forget_ended(&client, result).await
    }

    /// An API call in the current session answered with text (an HTML evidence pack).
    pub async fn call_text(&self, path: &str) -> DesktopResult<String> {
        let (client, token) = self.session()?;
        let result = client.call_text(path, Some(&token)).await;
        self.forget_ended(&client, result).await
    }
}
