//! Certificate pinning, trust on first use: the SHA-256 fingerprint of the server's certificate,
//! which the user compares with the one the server printed when it started, and after that the
//! only certificate the app accepts from that server.
//!
//! The pins are the one thing the app keeps on disk: a small file mapping server addresses to
//! fingerprints (like SSH's `known_hosts`). Neither is CRM data.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub use assent_shared::fingerprint::{BadFingerprint, Fingerprint};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

/// What the server presented during the last handshake through a [`PinningVerifier`].
pub type Presented = Arc<Mutex<Option<Fingerprint>>>;

/// Accepts exactly one certificate, the pinned one, whatever names it carries; with no pin, any
/// certificate (only for the first probe, whose answer is shown to the user and trusts nothing).
/// Either way the handshake's signature is checked against the presented certificate's key, and
/// the presented fingerprint is recorded so that a refusal can name it.
#[derive(Debug)]
pub struct PinningVerifier {
    pin: Option<Fingerprint>,
    presented: Presented,
    provider: Arc<CryptoProvider>,
}

impl PinningVerifier {
    pub fn new(
        pin: Option<Fingerprint>,
        presented: Presented,
        provider: Arc<CryptoProvider>,
    ) -> Self {
        PinningVerifier {
            pin,
            presented,
            provider,
        }
    }
}

impl ServerCertVerifier for PinningVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let fingerprint = Fingerprint::of(end_entity.as_ref());
        // A poisoned lock only means another handshake panicked; the slot is still usable.
        *self.presented.lock().unwrap_or_else(|e| e.into_inner()) = Some(fingerprint);
        match self.pin {
            Some(pin) if pin != fingerprint => Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            )),
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PinStoreError {
    #[error("cannot read the known servers file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the known servers file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the known servers file {path} is damaged at line {line}")]
    Damaged { path: PathBuf, line: usize },
}

/// The pins, one line per server: `https://crm.example.org:8443 AB:CD:…`.
#[derive(Debug, Clone)]
pub struct PinStore {
    path: PathBuf,
}

impl PinStore {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        PinStore { path: path.into() }
    }

    /// `$XDG_CONFIG_HOME/assent/known-servers` (`~/.config/…` when that is unset).
    pub fn default_location() -> Option<PathBuf> {
        let config = std::env::var_os("XDG_CONFIG_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".config")))?;
        Some(config.join("assent").join("known-servers"))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read(&self) -> Result<BTreeMap<String, Fingerprint>, PinStoreError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(source) => {
                return Err(PinStoreError::Read {
                    path: self.path.clone(),
                    source,
                })
            }
        };
        let mut pins = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let damaged = || PinStoreError::Damaged {
                path: self.path.clone(),
                line: i + 1,
            };
            let (server, fingerprint) = line.split_once(' ').ok_or_else(damaged)?;
            pins.insert(
                server.to_owned(),
                fingerprint.parse().map_err(|_| damaged())?,
            );
        }
        Ok(pins)
    }

    /// Every server pinned so far.
    pub fn servers(&self) -> Result<Vec<String>, PinStoreError> {
        Ok(self.read()?.into_keys().collect())
    }

    pub fn get(&self, server: &str) -> Result<Option<Fingerprint>, PinStoreError> {
        Ok(self.read()?.get(server).copied())
    }

    /// Pins `fingerprint` for `server`, replacing any earlier pin (the user chose to trust a new
    /// certificate). Written to a temporary file and renamed, so a crash leaves the old file.
    pub fn set(&self, server: &str, fingerprint: Fingerprint) -> Result<(), PinStoreError> {
        let mut pins = self.read()?;
        pins.insert(server.to_owned(), fingerprint);
        let text: String = pins.iter().map(|(s, f)| format!("{s} {f}\n")).collect();
        let write = |source| PinStoreError::Write {
            path: self.path.clone(),
            source,
        };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(write)?;
        }
        let partial = self.path.with_extension("partial");
        std::fs::write(&partial, text).map_err(write)?;
        std::fs::rename(&partial, &self.path).map_err(write)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_kept_per_server_and_replaced_only_on_purpose() {
        let dir = tempfile::tempdir().unwrap();
        let store = PinStore::new(dir.path().join("assent").join("known-servers"));
        assert_eq!(store.get("https://a.example:8443").unwrap(), None);
        let first = Fingerprint::of(b"one");
        let second = Fingerprint::of(b"two");
        store.set("https://a.example:8443", first).unwrap();
        store.set("https://b.example:8443", second).unwrap();
        assert_eq!(store.get("https://a.example:8443").unwrap(), Some(first));
        assert_eq!(store.get("https://b.example:8443").unwrap(), Some(second));
        store.set("https://a.example:8443", second).unwrap();
        assert_eq!(store.get("https://a.example:8443").unwrap(), Some(second));
        let text = std::fs::read_to_string(store.path()).unwrap();
        assert_eq!(text.lines().count(), 2);
    }

    #[test]
    fn a_damaged_pin_file_is_an_error_naming_the_line_not_an_empty_store() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known-servers");
        let good = Fingerprint::of(b"one");
        std::fs::write(
            &path,
            format!("https://a.example {good}\nhttps://b.example XYZ\n"),
        )
        .unwrap();
        match PinStore::new(&path).get("https://a.example") {
            Err(PinStoreError::Damaged { line, .. }) => assert_eq!(line, 2),
            other => panic!("expected a damaged file error, got {other:?}"),
        }
    }
}
