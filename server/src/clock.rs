//! The one reading of the clock: the current time as the store keeps it.

use chrono::{DateTime, SubsecRound, Utc};

/// Now, in UTC, to whole microseconds (PostgreSQL's precision), so that a time read back from
/// either store equals the time written (the hash chains cover times).
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}
