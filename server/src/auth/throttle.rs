//! Login throttling: per client address, per account from one address, and per account overall,
//! without letting an attacker lock the real user out.
//!
//! The account-wide limit (a distributed guessing attack) does not apply to addresses the account
//! has logged in from successfully, so the real user keeps working from their usual machine while
//! the attack is slowed everywhere else. The state lives in the server's memory: with several
//! replicas each enforces its own limits (documented in docs/CONFIGURATION.md).

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct ThrottleLimits {
    pub window: Duration,
    pub per_address: u32,
    pub per_account_and_address: u32,
    pub per_account: u32,
}

impl Default for ThrottleLimits {
    fn default() -> Self {
        ThrottleLimits {
            window: Duration::from_secs(15 * 60),
            per_address: 30,
            per_account_and_address: 5,
            per_account: 50,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Address(IpAddr),
    AccountAddress(String, IpAddr),
    Account(String),
}

#[derive(Debug, Default)]
struct State {
    /// Failure times per key, oldest first, within the window.
    failures: HashMap<Key, Vec<Instant>>,
    /// (account, address) pairs that have logged in successfully.
    known: HashSet<(String, IpAddr)>,
}

/// A throttle key and how to read its limit.
type KeyLimit = (Key, fn(&ThrottleLimits) -> u32);

#[derive(Debug, Default)]
pub struct LoginThrottle {
    limits: ThrottleLimits,
    state: Mutex<State>,
}

impl LoginThrottle {
    pub fn new(limits: ThrottleLimits) -> Self {
        LoginThrottle {
            limits,
            state: Mutex::default(),
        }
    }

    /// A throttle of failures per client address only, for what names no account (the public
    /// pages' bad tokens): check and record with an empty account.
    pub fn per_address(window: Duration, limit: u32) -> Self {
        LoginThrottle::new(ThrottleLimits {
            window,
            per_address: limit,
            per_account_and_address: u32::MAX,
            per_account: u32::MAX,
        })
    }

    fn keys(account: &str, address: IpAddr) -> [KeyLimit; 3] {
        [
            (Key::Address(address), |l| l.per_address),
            (Key::AccountAddress(account.to_owned(), address), |l| {
                l.per_account_and_address
            }),
            (Key::Account(account.to_owned()), |l| l.per_account),
        ]
    }

    /// `Err(retry_after)` when a login for `account` from `address` must wait.
    pub fn check(&self, account: &str, address: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let known = state.known.contains(&(account.to_owned(), address));
        let window = self.limits.window;
        let mut wait = Duration::ZERO;
        for (key, limit) in Self::keys(account, address) {
            if known && matches!(key, Key::Account(_)) {
                continue;
            }
            if let Some(times) = state.failures.get_mut(&key) {
                times.retain(|t| now.duration_since(*t) < window);
                if times.len() as u32 >= limit(&self.limits) {
                    let oldest = times[0];
                    wait = wait.max(window.saturating_sub(now.duration_since(oldest)));
                }
            }
        }
        if wait.is_zero() {
            Ok(())
        } else {
            Err(wait.max(Duration::from_secs(1)))
        }
    }

    pub fn record_failure(&self, account: &str, address: IpAddr, now: Instant) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if state.failures.len() > 100_000 {
            let window = self.limits.window;
            state.failures.retain(|_, times| {
                times
                    .last()
                    .is_some_and(|t| now.duration_since(*t) < window)
            });
        }
        for (key, limit) in Self::keys(account, address) {
            // A key without a limit is not counted.
            if limit(&self.limits) == u32::MAX {
                continue;
            }
            state.failures.entry(key).or_default().push(now);
        }
    }

    pub fn record_success(&self, account: &str, address: IpAddr) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        state
            .failures
            .remove(&Key::AccountAddress(account.to_owned(), address));
        state.known.insert((account.to_owned(), address));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: &str = "alice@example.com";

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    fn limits() -> ThrottleLimits {
        ThrottleLimits {
            window: Duration::from_secs(60),
            per_address: 10,
            per_account_and_address: 3,
            per_account: 6,
        }
    }

    #[test]
    fn repeated_failures_from_one_address_are_throttled_until_the_window_passes() {
        let throttle = LoginThrottle::new(limits());
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(throttle.check(ALICE, ip(1), t0).is_ok());
            throttle.record_failure(ALICE, ip(1), t0);
        }
        let wait = throttle.check(ALICE, ip(1), t0).unwrap_err();
        assert_eq!(wait, Duration::from_secs(60));
        assert!(throttle
            .check(ALICE, ip(1), t0 + Duration::from_secs(61))
            .is_ok());
    }

    #[test]
    fn an_attack_from_many_addresses_does_not_lock_out_the_users_known_address() {
        let throttle = LoginThrottle::new(limits());
        let t0 = Instant::now();
        throttle.record_success(ALICE, ip(1));
        for attacker in 10..20 {
            throttle.record_failure(ALICE, ip(attacker), t0);
        }
        assert!(
            throttle.check(ALICE, ip(99), t0).is_err(),
            "a new address waits"
        );
        assert!(
            throttle.check(ALICE, ip(1), t0).is_ok(),
            "the user's own address does not"
        );
    }

    #[test]
    fn one_address_guessing_many_accounts_is_throttled() {
        let throttle = LoginThrottle::new(limits());
        let t0 = Instant::now();
        for n in 0..10 {
            throttle.record_failure(&format!("user{n}@example.com"), ip(7), t0);
        }
        assert!(throttle.check("someone@example.com", ip(7), t0).is_err());
        assert!(throttle.check("someone@example.com", ip(8), t0).is_ok());
    }

    #[test]
    fn a_throttle_per_address_counts_only_addresses() {
        let throttle = LoginThrottle::per_address(Duration::from_secs(60), 2);
        let t0 = Instant::now();
        for _ in 0..2 {
            throttle.record_failure("", ip(1), t0);
        }
        assert!(throttle.check("", ip(1), t0).is_err());
        assert!(
            throttle.check("", ip(2), t0).is_ok(),
            "another address goes on"
        );
        let state = throttle.state.lock().unwrap();
        assert_eq!(state.failures.len(), 1, "only the address is counted");
    }
}
