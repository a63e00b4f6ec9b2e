//! Password policy and hashing: argon2id with OWASP's parameters, run off the async runtime.

use std::collections::HashSet;
use std::sync::LazyLock;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

pub const MIN_LENGTH: usize = 12;
/// Long enough for any passphrase, short enough that hashing stays cheap.
pub const MAX_LENGTH: usize = 128;

static COMMON_PASSWORDS: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("common_passwords.txt")
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .collect()
});

/// Why a new password is refused, if it is.
pub fn policy_violation(password: &str) -> Option<String> {
    let length = password.chars().count();
    if length < MIN_LENGTH {
        return Some(format!("must be at least {MIN_LENGTH} characters long"));
    }
    if length > MAX_LENGTH {
        return Some(format!("must be at most {MAX_LENGTH} characters long"));
    }
    if COMMON_PASSWORDS.contains(password.to_lowercase().as_str()) {
        return Some("is one of the most commonly used passwords; choose another".to_owned());
    }
    None
}

/// What can go wrong proving who someone is (never the answer "wrong password", which is
/// `false`): the server's own failures.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("the hashing task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// The decoy hash that unknown accounts are checked against could not be made: answering
    /// at once instead would tell an attacker which accounts exist.
    #[error("the decoy password hash could not be made: {0}")]
    Decoy(String),
}

fn hasher() -> Argon2<'static> {
    // OWASP Password Storage Cheat Sheet: argon2id, m = 19 MiB, t = 2, p = 1. These constants
    // are within argon2's bounds, so `Params::new` cannot fail.
    let params = Params::new(19 * 1024, 2, 1, None).expect("OWASP argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub fn hash_blocking(password: &str) -> Result<String, AuthError> {
    let salt = SaltString::generate(&mut OsRng);
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

/// Hashes a password on the blocking pool (argon2 takes tens of milliseconds by design).
pub async fn hash(password: String) -> Result<String, AuthError> {
    tokio::task::spawn_blocking(move || hash_blocking(&password)).await?
}

/// A hash of a password nobody knows, verified against when the account does not exist so that
/// a failed login takes as long whether or not the email is known.
static DECOY_HASH: LazyLock<Result<String, String>> = LazyLock::new(|| {
    let mut random = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut random);
    hash_blocking(&hex::encode(random)).map_err(|e| e.to_string())
});

/// Checks `password` against `stored`, or against the decoy when there is no account, so that
/// both take the same time. A stored hash that does not parse is a wrong password (after the
/// same work on the decoy); a decoy that cannot be made is an error, never a quick `false`.
pub async fn verify(password: String, stored: Option<String>) -> Result<bool, AuthError> {
    tokio::task::spawn_blocking(move || {
        let decoy = || DECOY_HASH.clone().map_err(AuthError::Decoy);
        let (hash, known) = match stored {
            Some(hash) if PasswordHash::new(&hash).is_ok() => (hash, true),
            _ => (decoy()?, false),
        };
        let parsed = PasswordHash::new(&hash).map_err(|e| AuthError::Hash(e.to_string()))?;
        Ok(hasher()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
            && known)
    })
    .await?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_long_and_common_passwords_are_refused() {
        assert!(policy_violation("short").unwrap().contains("at least 12"));
        assert!(policy_violation(&"x".repeat(129))
            .unwrap()
            .contains("at most 128"));
        assert!(policy_violation("Password1234")
            .unwrap()
            .contains("commonly used"));
        assert!(policy_violation("1qaz2wsx3edc").is_some());
        assert_eq!(policy_violation("plum-orbit-canal-97"), None);
    }

    #[tokio::test]
    async fn a_hash_verifies_only_its_own_password() {
        let hash = hash("plum-orbit-canal-97".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify("plum-orbit-canal-97".into(), Some(hash.clone()))
            .await
            .unwrap());
        assert!(!verify("plum-orbit-canal-98".into(), Some(hash))
            .await
            .unwrap());
        assert!(!verify("anything at all".into(), None).await.unwrap());
    }

    #[tokio::test]
    async fn an_unknown_account_is_checked_against_a_real_decoy_hash() {
        let decoy = DECOY_HASH.as_ref().expect("the decoy is made");
        assert!(
            decoy.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{decoy}"
        );
        // A stored hash that does not parse costs the same work, on the decoy, and is refused.
        assert!(!verify("anything at all".into(), Some(String::new()))
            .await
            .unwrap());
    }
}
