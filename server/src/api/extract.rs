//! Extractors whose rejections use the API's error shape rather than axum's plain-text ones, and
//! the client address of a request.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::Error;

/// A JSON body. A body that is not JSON at all is a 400 `malformed_json`; JSON the type does not
/// take is a 422 `invalid_body` (serde names some shape errors as syntax — a second key in an
/// enum's object, say — so the body's text is checked as JSON first, and whatever the type then
/// refuses is the wrong shape); a missing content type a 415-worthy mistake reported as 400.
pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request(request: Request, state: &S) -> Result<Self, Error> {
        let text = axum::Json::<Box<serde_json::value::RawValue>>::from_request(request, state)
            .await
            .map_err(rejection)?;
        match axum::Json::<T>::from_bytes(text.0.get().as_bytes()) {
            Ok(axum::Json(value)) => Ok(Json(value)),
            Err(JsonRejection::JsonSyntaxError(e)) => {
                // The text is JSON: axum's words for a syntax error would contradict the answer.
                let text = e.body_text();
                let detail = text
                    .strip_prefix("Failed to parse the request body as JSON: ")
                    .unwrap_or(&text);
                Err(Error::InvalidBody(detail.to_owned()))
            }
            Err(other) => Err(rejection(other)),
        }
    }
}

/// The answer to a body axum's JSON extractor refused.
fn rejection(rejection: JsonRejection) -> Error {
    match rejection {
        JsonRejection::JsonSyntaxError(e) => Error::MalformedJson(e.body_text()),
        JsonRejection::JsonDataError(e) => Error::InvalidBody(e.body_text()),
        JsonRejection::MissingJsonContentType(_) => {
            Error::BadRequest("Send the body as JSON with `Content-Type: application/json`.".into())
        }
        JsonRejection::BytesRejection(e)
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE =>
        {
            Error::TooLarge(super::BODY_LIMIT)
        }
        other => Error::BadRequest(other.body_text()),
    }
}

/// Query parameters.
pub struct Query<T>(pub T);

impl<S, T> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|e: QueryRejection| Error::BadRequest(e.body_text()))
    }
}

/// Path parameters. An id that is not a UUID names no object: 404.
pub struct Path<T>(pub T);

impl<S, T> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|e: PathRejection| {
                Error::NoSuchObject(format!("no such object ({})", e.body_text()))
            })
    }
}

/// The address of the client: the TCP peer.
pub struct ClientAddress(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Error> {
        let address = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip())
            // Requests handed to the router directly (tests with `oneshot`) have no peer.
            .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        Ok(ClientAddress(address))
    }
}
