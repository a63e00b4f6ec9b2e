//! The request body limit, answered cleanly: a body over [`BODY_LIMIT`] gets a 413 in the API's
//! error shape after the rest of it has been read and thrown away (up to [`DRAIN_LIMIT`]), so
//! that a client still sending reads the answer instead of a connection reset mid-upload.

use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;

use super::error::Error;

/// The largest request body accepted.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// How much of a body over the limit is read and discarded before answering; past it (or past
/// [`DRAIN_TIME`]) the connection is closed with the answer instead.
pub const DRAIN_LIMIT: usize = 32 * 1024 * 1024;
const DRAIN_TIME: Duration = Duration::from_secs(10);

/// The 413, telling the client the connection ends with it when the rest was not read.
fn too_large(close: bool) -> Response {
    let mut response = Error::TooLarge(BODY_LIMIT).into_response();
    if close {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Reads the body (at most [`BODY_LIMIT`]) before the request goes on, or answers 413.
pub async fn limit(request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > DRAIN_LIMIT as u64) {
        return too_large(true);
    }
    let mut stream = body.into_data_stream();
    let mut kept: Vec<u8> = Vec::new();
    let mut seen = 0usize;
    let over = declared.is_some_and(|n| n > BODY_LIMIT as u64);
    if !over {
        while let Some(chunk) = stream.next().await {
            let Ok(chunk) = chunk else {
                return Error::BadRequest("The request body could not be read.".into())
                    .into_response();
            };
            seen += chunk.len();
            if seen > BODY_LIMIT {
                break;
            }
            kept.extend_from_slice(&chunk);
        }
        if seen <= BODY_LIMIT {
            return next.run(Request::from_parts(parts, Body::from(kept))).await;
        }
    }
    // Over the limit: read the rest and throw it away, within bounds, then answer.
    drop(kept);
    let drained = tokio::time::timeout(DRAIN_TIME, async {
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(chunk) => {
                    seen += chunk.len();
                    if seen > DRAIN_LIMIT {
                        return false;
                    }
                }
                Err(_) => return false,
            }
        }
        true
    })
    .await;
    too_large(!matches!(drained, Ok(true)))
}
