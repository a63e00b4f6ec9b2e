//! CSRF tokens of the forms the public pages serve. A form's token is an HMAC, under a key kept
//! in the database (`store::keys`, the same for every server on it), of the form's name and the
//! link's token: a page elsewhere cannot make one without both, and the link's token is a secret
//! the person holds. Nothing is stored per form and no cookie is set.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The name of the key in `public_keys`.
pub const KEY_NAME: &str = "forms";

/// The key CSRF tokens are made with.
pub struct FormKey([u8; 32]);

impl std::fmt::Debug for FormKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FormKey(..)")
    }
}

impl FormKey {
    pub fn new(key: [u8; 32]) -> Self {
        FormKey(key)
    }

    fn mac(&self, form: &str, link_token: &str) -> Hmac<Sha256> {
        // Any length of key is taken: this cannot fail.
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes a key of any length");
        mac.update(form.as_bytes());
        mac.update(&[0]);
        mac.update(link_token.as_bytes());
        mac
    }

    /// The CSRF token of `form` on the page of `link_token`.
    pub fn token(&self, form: &str, link_token: &str) -> String {
        hex::encode(self.mac(form, link_token).finalize().into_bytes())
    }

    /// The CSRF token of a form that no link's token names (a page anyone may open): `form`'s
    /// token for the moment `issued` (seconds since 1970), with the moment in front.
    pub fn stamped(&self, form: &str, issued: i64) -> String {
        format!("{issued}.{}", self.token(form, &issued.to_string()))
    }

    /// Whether `given` is a token [`Self::stamped`] made for `form` no longer than `max_age`
    /// seconds before `now` (or up to [`CLOCK_SKEW`] after it: replicas' clocks differ a little).
    pub fn check_stamped(&self, form: &str, given: &str, now: i64, max_age: i64) -> bool {
        let Some((issued, token)) = given.split_once('.') else {
            return false;
        };
        let Ok(at) = issued.parse::<i64>() else {
            return false;
        };
        now.checked_sub(at)
            .is_some_and(|age| (-CLOCK_SKEW..=max_age).contains(&age))
            && self.check(form, issued, token)
    }

    /// Whether `given` is that token (compared in constant time).
    pub fn check(&self, form: &str, link_token: &str, given: &str) -> bool {
        match hex::decode(given) {
            Ok(bytes) => self.mac(form, link_token).verify_slice(&bytes).is_ok(),
            Err(_) => false,
        }
    }
}

/// How far ahead of this server's clock a stamped token may be, in seconds.
pub const CLOCK_SKEW: i64 = 60;

/// Whether a POST came from the page of `link_token` itself: its `csrf` field is the token of
/// `form` on that page, and the browser does not say it was posted from another site.
pub fn from_its_page(
    key: &FormKey,
    headers: &axum::http::HeaderMap,
    form: &str,
    link_token: &str,
    fields: &[(String, String)],
) -> bool {
    let given = fields
        .iter()
        .find(|(name, _)| name == "csrf")
        .map_or("", |(_, value)| value.as_str());
    !cross_site(headers) && key.check(form, link_token, given)
}

/// Whether the browser says the request was posted from another site's page.
pub fn cross_site(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|site| site != "same-origin" && site != "none")
}

/// The refusal of a form that did not come from the page of its link: a wrong link (`known`
/// says so) is answered and counted as one; a right one gets `reason`.
pub(super) fn refused<T>(
    state: &super::PublicState,
    client: &super::client::Client,
    known: Result<T, crate::service::ServiceError>,
    reason: &str,
) -> super::error::PageError {
    match super::unsubscribe::counted(state, client, known) {
        Err(unknown) => unknown,
        Ok(_) => super::error::PageError::Forbidden(reason.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_good_for_its_own_form_and_link_only() {
        let key = FormKey::new([7; 32]);
        let token = key.token("preferences", "abc");
        assert!(key.check("preferences", "abc", &token));
        assert!(!key.check("preferences", "abd", &token), "another link");
        assert!(!key.check("signup", "abc", &token), "another form");
        assert!(
            !FormKey::new([8; 32]).check("preferences", "abc", &token),
            "another key"
        );
        assert!(!key.check("preferences", "abc", "not hex"));
        assert!(!key.check("preferences", "abc", ""));
    }

    #[test]
    fn a_stamped_token_is_good_for_its_form_within_its_age_only() {
        let key = FormKey::new([7; 32]);
        let token = key.stamped("data-request", 1_000);
        assert!(key.check_stamped("data-request", &token, 1_000, 60));
        assert!(key.check_stamped("data-request", &token, 1_060, 60));
        assert!(
            !key.check_stamped("data-request", &token, 1_061, 60),
            "too old"
        );
        assert!(
            key.check_stamped("data-request", &token, 1_000 - CLOCK_SKEW, 60),
            "a replica's clock a little behind"
        );
        assert!(
            !key.check_stamped("data-request", &token, 1_000 - CLOCK_SKEW - 1, 60),
            "from the future"
        );
        let far = key.stamped("data-request", i64::MIN);
        assert!(
            !key.check_stamped("data-request", &far, 1_000, 60),
            "no overflow"
        );
        assert!(
            !key.check_stamped("signup", &token, 1_000, 60),
            "another form"
        );
        let moved = token.replacen("1000.", "1030.", 1);
        assert!(
            !key.check_stamped("data-request", &moved, 1_030, 60),
            "its moment is signed"
        );
        assert!(!key.check_stamped("data-request", "1000", 1_000, 60));
        assert!(!key.check_stamped("data-request", "x.y", 1_000, 60));
    }
}
