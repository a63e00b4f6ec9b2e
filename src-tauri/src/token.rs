//! Where the session token lives: the operating system's keyring, under the server's address;
//! never a file, web storage, a cookie or JavaScript. Tests use the in-memory store.

use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Debug, thiserror::Error)]
#[error("the system keyring: {0}")]
pub struct TokenStoreError(pub String);

/// A session token. Its `Debug` hides it, so it cannot reach a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionToken(String);

impl SessionToken {
    pub fn new(token: String) -> Self {
        SessionToken(token)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionToken(…)")
    }
}

/// Keeps one session token per server address.
pub trait TokenStore: Send + Sync {
    fn load(&self, server: &str) -> Result<Option<SessionToken>, TokenStoreError>;
    fn save(&self, server: &str, token: &SessionToken) -> Result<(), TokenStoreError>;
    /// Forgets the token; forgetting one that is not there is not an error.
    fn delete(&self, server: &str) -> Result<(), TokenStoreError>;
}

/// The Secret Service keyring (GNOME Keyring, KWallet) through the keyring crate.
pub struct KeyringTokenStore {
    service: String,
}

impl KeyringTokenStore {
    /// Tokens are kept under the service name `assent` and the server's address as the user.
    pub fn new() -> Self {
        KeyringTokenStore {
            service: "assent".to_owned(),
        }
    }

    fn entry(&self, server: &str) -> Result<keyring::Entry, TokenStoreError> {
        keyring::Entry::new(&self.service, server).map_err(|e| TokenStoreError(e.to_string()))
    }
}

impl Default for KeyringTokenStore {
    fn default() -> Self {
        Self::new()
    }
}

impl TokenStore for KeyringTokenStore {
    fn load(&self, server: &str) -> Result<Option<SessionToken>, TokenStoreError> {
        match self.entry(server)?.get_password() {
            Ok(token) => Ok(Some(SessionToken(token))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(TokenStoreError(e.to_string())),
        }
    }

    fn save(&self, server: &str, token: &SessionToken) -> Result<(), TokenStoreError> {
        self.entry(server)?
            .set_password(token.expose())
            .map_err(|e| TokenStoreError(e.to_string()))
    }

    fn delete(&self, server: &str) -> Result<(), TokenStoreError> {
        match self.entry(server)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(TokenStoreError(e.to_string())),
        }
    }
}

/// Tokens in memory, shared by every user of one store (the keyring crate's own mock keeps each
/// entry apart, so it cannot stand in for the keyring across calls).
#[derive(Default)]
pub struct MemoryTokenStore {
    tokens: Mutex<HashMap<String, SessionToken>>,
}

impl MemoryTokenStore {
    fn tokens(&self) -> std::sync::MutexGuard<'_, HashMap<String, SessionToken>> {
        // A poisoned lock only means a test panicked while holding it; the map is still whole.
        self.tokens.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl TokenStore for MemoryTokenStore {
    fn load(&self, server: &str) -> Result<Option<SessionToken>, TokenStoreError> {
        Ok(self.tokens().get(server).cloned())
    }

    fn save(&self, server: &str, token: &SessionToken) -> Result<(), TokenStoreError> {
        self.tokens().insert(server.to_owned(), token.clone());
        Ok(())
    }

    fn delete(&self, server: &str) -> Result<(), TokenStoreError> {
        self.tokens().remove(server);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_never_shows_in_debug_output() {
        let token = SessionToken::new("secret-token-value".into());
        assert!(!format!("{token:?}").contains("secret"));
    }

    #[test]
    fn the_memory_store_keeps_one_token_per_server_and_forgets_on_delete() {
        let store = MemoryTokenStore::default();
        let a = SessionToken::new("a".into());
        store.save("https://a.example", &a).unwrap();
        assert_eq!(store.load("https://a.example").unwrap(), Some(a));
        assert_eq!(store.load("https://b.example").unwrap(), None);
        store.delete("https://a.example").unwrap();
        store.delete("https://a.example").unwrap();
        assert_eq!(store.load("https://a.example").unwrap(), None);
    }
}
