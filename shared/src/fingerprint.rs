//! The SHA-256 fingerprint of a TLS certificate, as the server prints it at start and the desktop
//! app shows it on first connection (`AB:CD:…`), so that a person can compare the two.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The fingerprint of a certificate in DER form.
    pub fn of(certificate_der: &[u8]) -> Self {
        Fingerprint(Sha256::digest(certificate_der).into())
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, byte) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{byte:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a certificate fingerprint is 32 bytes in hexadecimal, separated by colons or not")]
pub struct BadFingerprint;

impl FromStr for Fingerprint {
    type Err = BadFingerprint;
    fn from_str(text: &str) -> Result<Self, BadFingerprint> {
        let hex_digits: String = text.trim().chars().filter(|c| *c != ':').collect();
        let bytes = hex::decode(hex_digits).map_err(|_| BadFingerprint)?;
        Ok(Fingerprint(bytes.try_into().map_err(|_| BadFingerprint)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fingerprint_is_written_and_read_as_the_server_prints_it() {
        let fingerprint = Fingerprint::of(b"certificate");
        let text = fingerprint.to_string();
        assert_eq!(text.len(), 32 * 3 - 1);
        assert!(text.split(':').all(|pair| pair.len() == 2
            && pair
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase())));
        assert_eq!(text.parse::<Fingerprint>(), Ok(fingerprint));
        assert_eq!(
            text.replace(':', "").to_lowercase().parse::<Fingerprint>(),
            Ok(fingerprint)
        );
        assert_eq!("AB:CD".parse::<Fingerprint>(), Err(BadFingerprint));
        assert_eq!("not hex".parse::<Fingerprint>(), Err(BadFingerprint));
    }
}
