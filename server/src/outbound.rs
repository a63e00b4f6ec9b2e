//! Outbound HTTPS: the client the server uses to reach services outside it (the checkpoint URL
//! today). TLS 1.3 and 1.2 through the same provider as the listener (aws-lc-rs); it trusts the
//! system's certificate authorities, or only those of a configured PEM bundle (a private CA).
//! Errors never carry the URL: it may hold a token.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error("cannot read the certificate authorities in {path}: {reason}")]
    Authorities { path: PathBuf, reason: String },
    #[error("the system's certificate authorities cannot be read: {0}")]
    SystemAuthorities(String),
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
    #[error("the HTTPS client cannot be built: {0}")]
    Client(String),
    #[error("the request did not complete: {0}")]
    Unreachable(String),
    #[error("the service answered {0}")]
    Refused(reqwest::StatusCode),
}

/// The certificates of a PEM bundle: at least one, or the reason there is none.
pub fn read_authorities(path: &Path) -> Result<Vec<CertificateDer<'static>>, OutboundError> {
    let bad = |reason: String| OutboundError::Authorities {
        path: path.to_owned(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| bad(format!("not PEM certificates ({e})")))?;
    if certificates.is_empty() {
        return Err(bad("it holds no PEM certificate".into()));
    }
    Ok(certificates)
}

/// A client that trusts the authorities in `authorities` (a PEM bundle) only, or the system's
/// when `None`; requests time out after `timeout`, and redirects are not followed (a redirect
/// could take what is posted somewhere not configured).
pub fn client(
    authorities: Option<&Path>,
    timeout: Duration,
) -> Result<reqwest::Client, OutboundError> {
    let mut roots = rustls::RootCertStore::empty();
    match authorities {
        Some(path) => {
            for certificate in read_authorities(path)? {
                roots.add(certificate)?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            if found.certs.is_empty() {
                let why = found
                    .errors
                    .first()
                    .map_or_else(|| "none are installed".to_owned(), |e| e.to_string());
                return Err(OutboundError::SystemAuthorities(why));
            }
            // A certificate the store holds that rustls cannot parse is left out, as browsers do.
            roots.add_parsable_certificates(found.certs);
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .https_only(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .build()
        .map_err(|e| OutboundError::Client(described(e)))
}

/// POSTs `body` as JSON to `url`; anything but a 2xx answer is an error.
pub async fn post_json(
    client: &reqwest::Client,
    url: &reqwest::Url,
    body: String,
) -> Result<(), OutboundError> {
    let answer = client
        .post(url.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| OutboundError::Unreachable(described(e)))?;
    if answer.status().is_success() {
        Ok(())
    } else {
        Err(OutboundError::Refused(answer.status()))
    }
}

/// A reqwest error in words, with its causes (a certificate refused, a connection refused, a
/// timeout): reqwest's own message says only "error sending request". Without the URL; the
/// causes (hyper's, rustls's, the system's) do not carry it.
fn described(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(&error);
    while let Some(next) = cause {
        text.push_str(": ");
        text.push_str(&next.to_string());
        cause = next.source();
    }
    text
}
