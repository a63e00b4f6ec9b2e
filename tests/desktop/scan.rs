//! The stolen-laptop scan: every file on the root file system created or changed since a moment,
//! outside the test's own directories, searched for marker values (as UTF-8 and as UTF-16, the
//! form web storage may keep text in).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

/// A file whose modification time marks the start of the run (`find -newer`).
pub struct Marker(PathBuf);

impl Marker {
    pub fn create(dir: &Path) -> Marker {
        let path = dir.join(".run-started");
        std::fs::write(&path, b"").unwrap();
        // Whole-second file systems would otherwise count files written in the same second.
        std::thread::sleep(Duration::from_millis(1100));
        Marker(path)
    }
}

/// Files the OS keyring and the certificate pin legitimately leave: neither is CRM data.
const EXPECTED_UNDER_HOME: &[&str] = &[".local/share/keyrings/", ".config/assent/known-servers"];

pub struct Report {
    pub changed: Vec<PathBuf>,
    pub marker_hits: Vec<(PathBuf, String)>,
}

impl Report {
    pub fn describe(&self) -> String {
        let mut text = format!(
            "{} files on the root file system were created or changed during the run (outside the test's workspace):\n",
            self.changed.len()
        );
        for path in &self.changed {
            text.push_str(&format!("  {}\n", path.display()));
        }
        for (path, marker) in &self.marker_hits {
            text.push_str(&format!("MARKER {marker:?} found in {}\n", path.display()));
        }
        text
    }

    /// Leaves `path` out of the report (the scan's own canary).
    pub fn forget(&mut self, path: &Path) {
        self.changed.retain(|p| p != path);
        self.marker_hits.retain(|(p, _)| p != path);
    }

    /// Changed files under `home` other than the keyring's and the pin.
    pub fn unexpected_under(&self, home: &Path) -> Vec<PathBuf> {
        self.changed
            .iter()
            .filter_map(|path| path.strip_prefix(home).ok().map(|rest| (path, rest)))
            .filter(|(_, rest)| {
                let rest = rest.to_string_lossy();
                !EXPECTED_UNDER_HOME
                    .iter()
                    .any(|expected| rest.starts_with(expected))
            })
            .map(|(path, _)| path.clone())
            .collect()
    }
}

fn utf16le(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

pub fn scan(since: &Marker, exclude: &[&Path], markers: &[&str]) -> Report {
    let output = Command::new("find")
        .args(["/", "-xdev", "-type", "f", "-newer"])
        .arg(&since.0)
        .output()
        .expect("find runs");
    let changed: Vec<PathBuf> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(PathBuf::from)
        .filter(|path| !exclude.iter().any(|dir| path.starts_with(dir)))
        .collect();
    let needles: Vec<(&str, Vec<u8>, Vec<u8>)> = markers
        .iter()
        .map(|m| (*m, m.as_bytes().to_vec(), utf16le(m)))
        .collect();
    let mut marker_hits = Vec::new();
    for path in &changed {
        let Ok(metadata) = std::fs::metadata(path) else {
            continue;
        };
        if metadata.len() > 512 * 1024 * 1024 {
            continue;
        }
        let Ok(bytes) = std::fs::read(path) else {
            continue;
        };
        for (marker, utf8, utf16) in &needles {
            if contains(&bytes, utf8) || contains(&bytes, utf16) {
                marker_hits.push((path.clone(), (*marker).to_owned()));
            }
        }
    }
    Report {
        changed,
        marker_hits,
    }
}

/// Waits until no process runs the program at `executable`.
pub fn wait_for_exit(executable: &Path, timeout: Duration) {
    let started = Instant::now();
    while !assent_tests::processes_of(executable).is_empty() {
        assert!(
            started.elapsed() < timeout,
            "{} is still running",
            executable.display()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub fn wait_for_child(child: &mut Child, timeout: Duration) -> ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(started.elapsed() < timeout, "the app did not exit");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_found_as_utf8_and_as_utf16() {
        assert!(contains(b"abc Qzmark def", b"Qzmark"));
        assert!(contains(&utf16le("xx Qzmark yy"), &utf16le("Qzmark")));
        assert!(!contains(b"abc", b""));
    }
}
