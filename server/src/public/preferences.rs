//! The preference centre's page (`/p/{token}`): `GET` shows, topic by topic, what reaches the
//! person on each channel and their preferred contact method, and changes nothing; `POST` takes
//! the form (with its CSRF token, [`super::forms`]), records the changes and shows the page again
//! with what was done. The decisions are the service's (`service::preferences`).

use std::fmt::Write as _;

use assent_shared::ledger::{Channel, PreferredChannel};
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::HeaderMap;

use super::client::Client;
use super::error::PageError;
use super::page::Page;
use super::unsubscribe::{body, by, content_type, counted, fields, organisation, token};
use super::PublicState;
use crate::html::escape;
use crate::service::preferences::{self, Centre, Changed, Changes, Standing, CHANNELS, WORDING};
use crate::service::unsubscribe::Via;

/// The form's name in its CSRF token.
const FORM: &str = "preferences";

/// The choices of preferred contact method the page offers, in its order.
const PREFERRED: [(PreferredChannel, &str); 5] = [
    (PreferredChannel::Email, "Email"),
    (PreferredChannel::Sms, "Text message"),
    (PreferredChannel::Phone, "Phone call"),
    (PreferredChannel::Post, "Post"),
    (PreferredChannel::None, "None: no marketing at all"),
];

pub async fn page(
    State(state): State<PublicState>,
    client: Client,
    path: Result<Path<String>, PathRejection>,
) -> Result<Page, PageError> {
    let token = token(path)?;
    let centre = preferences::centre(&state.db, &token).await;
    let centre = counted(&state, &client, centre)?;
    Ok(centre_page(&state, &token, &centre, None))
}

pub async fn submit(
    State(state): State<PublicState>,
    client: Client,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    sent: Result<Bytes, BytesRejection>,
) -> Result<Page, PageError> {
    let token = token(path)?;
    let sent = body(sent)?;
    let fields = fields(content_type(&headers), &sent)?;
    if !super::forms::from_its_page(&state.forms, &headers, FORM, &token, &fields) {
        let known = preferences::centre(&state.db, &token).await;
        return Err(super::forms::refused(&state, &client, known, "This form did not come from your preferences page: open the link in your message again."));
    }
    let changes = changes(&fields)?;
    let via = Via::Link {
        page: format!("{}/p", state.public_url),
        ip: Some(client.ip),
        user_agent: client.user_agent.clone(),
    };
    let changed = preferences::change(&state.db, &token, &changes, &via).await;
    let changed = counted(&state, &client, changed)?;
    let centre = preferences::centre(&state.db, &token).await;
    let centre = counted(&state, &client, centre)?;
    Ok(centre_page(&state, &token, &centre, Some(&changed)))
}

/// What the form asks for: the boxes it `shown` and those ticked to `keep` (`channel:topic`),
/// the `preferred` method, or `everything`.
fn changes(fields: &[(String, String)]) -> Result<Changes, PageError> {
    let not_offered =
        || PageError::BadRequest("One of the choices sent is not one this page offers.".into());
    let pair = |value: &str| {
        let (channel, topic) = value.split_once(':').ok_or_else(not_offered)?;
        let channel: Channel = channel.parse().map_err(|_| not_offered())?;
        Ok::<_, PageError>((channel, topic.to_owned()))
    };
    let mut changes = Changes::default();
    for (name, value) in fields {
        match name.as_str() {
            "shown" => changes.shown.push(pair(value)?),
            "keep" => changes.keep.push(pair(value)?),
            "preferred" if value.is_empty() => {}
            "preferred" => {
                changes.preferred = Some(value.parse().map_err(|_| not_offered())?);
            }
            "everything" => changes.everything = true,
            _ => {}
        }
    }
    Ok(changes)
}

fn centre_page(state: &PublicState, token: &str, centre: &Centre, done: Option<&Changed>) -> Page {
    let from = escape(organisation(state));
    let csrf = state.forms.token(FORM, token);
    let mut html = String::new();
    if let Some(done) = done {
        let _ = writeln!(html, "{}", done_html(&from, done));
    }
    let _ = writeln!(
        html,
        "<p>What {from} may send you, and how you prefer to hear from us. {}</p>\n\
         <form method=\"post\">\n<input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">",
        escape(WORDING)
    );
    if centre.topics.is_empty() {
        let _ = writeln!(html, "<p>{from} sends no marketing by topic.</p>");
    }
    for row in &centre.topics {
        let _ = writeln!(
            html,
            "<fieldset>\n<legend>{}</legend>",
            escape(&row.topic.name)
        );
        if !row.topic.description.is_empty() {
            let _ = writeln!(
                html,
                "<p class=\"hint\">{}</p>",
                escape(&row.topic.description)
            );
        }
        for (channel, standing) in CHANNELS.iter().zip(row.standing) {
            let by = by(*channel);
            let _ = match standing {
                Standing::Receiving => writeln!(
                    html,
                    "<input type=\"hidden\" name=\"shown\" value=\"{pair}\">\n\
                     <label><input type=\"checkbox\" name=\"keep\" value=\"{pair}\" checked> {by}</label>",
                    pair = format_args!("{}:{}", channel.as_str(), escape(&row.topic.key)),
                ),
                Standing::Stopped => writeln!(html, "<p class=\"off\">Stopped {by}</p>"),
                Standing::NotAskedFor => {
                    writeln!(html, "<p class=\"off\">Not signed up {by}</p>")
                }
            };
        }
        let _ = writeln!(html, "</fieldset>");
    }
    let _ = writeln!(
        html,
        "<fieldset>\n<legend>How you prefer to be contacted</legend>"
    );
    for (preferred, words) in PREFERRED {
        let _ = writeln!(
            html,
            "<label><input type=\"radio\" name=\"preferred\" value=\"{}\"{}> {words}</label>",
            preferred.as_str(),
            if centre.preferred == Some(preferred) {
                " checked"
            } else {
                ""
            }
        );
    }
    let _ = writeln!(
        html,
        "</fieldset>\n<button type=\"submit\">Save my choices</button>\n</form>\n\
         <h2>Or stop everything</h2>\n<form method=\"post\">\n\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\n\
         <button type=\"submit\" name=\"everything\" value=\"1\" class=\"quiet\">Stop all marketing from {from}, by every channel</button>\n</form>\n\
         <p>Messages about your account or a service you use are not marketing and may still reach you.</p>"
    );
    Page::new("Your preferences", state.organisation.as_deref()).html(&html)
}

/// What a saved form did, in words.
fn done_html(from: &str, done: &Changed) -> String {
    if done.recorded == 0 {
        return "<p class=\"done\" role=\"status\">Your choices are saved: nothing needed to change.</p>"
            .to_owned();
    }
    let mut html =
        String::from("<div class=\"done\" role=\"status\">\n<p>Your choices are saved.</p>\n");
    for scope in &done.stopped {
        let _ = if scope.topic == assent_shared::ledger::ALL_TOPICS {
            writeln!(
                html,
                "<p>{from} will send you no more marketing of any kind, by any channel.</p>"
            )
        } else {
            writeln!(
                html,
                "<p>No more marketing about <strong>{}</strong> {}.</p>",
                escape(&scope.name),
                by(scope.channel)
            )
        };
    }
    if let Some(preferred) = done.preferred {
        let words = PREFERRED
            .iter()
            .find(|(p, _)| *p == preferred)
            .map_or(preferred.as_str(), |(_, w)| w);
        let _ = writeln!(html, "<p>Preferred contact: {}.</p>", escape(words));
    }
    html.push_str("</div>");
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_form_is_read_into_changes_and_a_choice_it_never_offered_is_refused() {
        let read = changes(&form(&[
            ("csrf", "x"),
            ("shown", "email:boilers"),
            ("keep", "email:boilers"),
            ("keep", "sms:insurance"),
            ("preferred", "post"),
        ]))
        .unwrap();
        assert_eq!(
            read.keep,
            vec![
                (Channel::Email, "boilers".to_owned()),
                (Channel::Sms, "insurance".to_owned())
            ]
        );
        assert_eq!(read.shown, vec![(Channel::Email, "boilers".to_owned())]);
        assert_eq!(read.preferred, Some(PreferredChannel::Post));
        assert!(!read.everything);
        assert!(changes(&form(&[("everything", "1")])).unwrap().everything);
        assert_eq!(
            changes(&form(&[("preferred", "")])).unwrap().preferred,
            None
        );
        assert!(changes(&form(&[("keep", "pigeon:boilers")])).is_err());
        assert!(changes(&form(&[("keep", "boilers")])).is_err());
        assert!(changes(&form(&[("shown", "pigeon:boilers")])).is_err());
        assert!(changes(&form(&[("preferred", "carrier pigeon")])).is_err());
    }
}
