//! The server's TLS: a configured PEM certificate and key, or a self-signed pair generated in the
//! data directory on first start and reused afterwards. TLS 1.2 and 1.3 only, aws-lc-rs crypto.
//!
//! The SHA-256 fingerprint of the leaf certificate is printed at start so that a client can pin
//! it (the desktop app shows it for the user to compare on first connection).

use std::fs;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("{path} holds no PEM certificate")]
    NoCertificate { path: PathBuf },
    #[error("{path} is not a PEM private key: {reason}")]
    BadKey { path: PathBuf, reason: String },
    #[error("cannot generate a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("the certificate and key do not work together: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A certificate chain and its key, ready to serve.
#[derive(Debug)]
pub struct TlsIdentity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl TlsIdentity {
    /// The SHA-256 fingerprint of the leaf certificate, as `AB:CD:...`.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.chain[0])
    }

    pub fn leaf_pem(&self) -> String {
        let body = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            self.chain[0].as_ref(),
        );
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap_or_default())
            .collect();
        format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            lines.join("\n")
        )
    }
}

pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    assent_shared::fingerprint::Fingerprint::of(cert.as_ref()).to_string()
}

/// Installs the process-wide rustls crypto provider (aws-lc-rs). Idempotent.
pub fn install_crypto_provider() {
    // Err means a provider is already installed, which is what we want.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// Loads a configured certificate chain and key.
pub fn load(cert: &Path, key: &Path) -> Result<TlsIdentity, TlsError> {
    let read = |path: &Path| {
        fs::read(path).map_err(|source| TlsError::Read {
            path: path.to_owned(),
            source,
        })
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&read(cert)?)
        .collect::<Result<_, _>>()
        .map_err(|_| TlsError::NoCertificate {
            path: cert.to_owned(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: cert.to_owned(),
        });
    }
    let key_der = PrivateKeyDer::from_pem_slice(&read(key)?).map_err(|e| TlsError::BadKey {
        path: key.to_owned(),
        reason: e.to_string(),
    })?;
    Ok(TlsIdentity {
        chain,
        key: key_der,
    })
}

/// The self-signed identity in `dir` (`tls/cert.pem`, `tls/key.pem`), generated on first use with
/// names for localhost and the bind address.
pub fn load_or_generate(data_dir: &Path, bind: SocketAddr) -> Result<TlsIdentity, TlsError> {
    let dir = data_dir.join("tls");
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    if cert_path.is_file() && key_path.is_file() {
        return load(&cert_path, &key_path);
    }
    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let ip = bind.ip();
    if !ip.is_unspecified() && !names.contains(&ip.to_string()) {
        names.push(ip.to_string());
    }
    if let Some(host) = hostname().filter(|h| !names.contains(h)) {
        names.push(host);
    }
    let mut params = rcgen::CertificateParams::new(names)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Assent server");
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "Assent (self-signed)");
    params.not_before = rcgen::date_time_ymd(2025, 1, 1);
    params.not_after = rcgen::date_time_ymd(2035, 1, 1);
    let key_pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let cert = params.self_signed(&key_pair)?;
    let write_err = |path: &Path| {
        let path = path.to_owned();
        move |source| TlsError::Write { path, source }
    };
    fs::create_dir_all(&dir).map_err(write_err(&dir))?;
    write_private(&key_path, key_pair.serialize_pem().as_bytes()).map_err(write_err(&key_path))?;
    fs::write(&cert_path, cert.pem()).map_err(write_err(&cert_path))?;
    load(&cert_path, &key_path)
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents)
}

fn hostname() -> Option<String> {
    let name = fs::read_to_string("/etc/hostname").ok()?.trim().to_owned();
    (!name.is_empty() && name.parse::<IpAddr>().is_err()).then_some(name)
}

/// A rustls server configuration: TLS 1.3 and 1.2 only, HTTP/2 and HTTP/1.1 by ALPN.
pub fn server_config(identity: TlsIdentity) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(identity.chain, identity.key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_identity_is_kept_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let bind: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let first = load_or_generate(dir.path(), bind).unwrap();
        let again = load_or_generate(dir.path(), bind).unwrap();
        assert_eq!(first.fingerprint(), again.fingerprint());
        assert_eq!(first.fingerprint().len(), 32 * 3 - 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join("tls/key.pem"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(
                mode & 0o777,
                0o600,
                "the private key is readable by its owner only"
            );
        }
        assert!(server_config(again).is_ok());
    }

    #[test]
    fn a_file_without_a_certificate_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        fs::write(&cert, "not pem").unwrap();
        let error = load(&cert, &cert).unwrap_err();
        assert!(error.to_string().contains("cert.pem"));
    }
}
