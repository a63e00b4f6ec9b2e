//! Postfix's `smtp-sink` (Debian's `postfix`; `scripts/test` installs it) on a loopback port of
//! its own, for the tests and benchmarks that need a real SMTP server: the mail module's own
//! tests, the workspace's integration tests and the send benchmark (feature `test-support`).
//! Its fault injection refuses chosen commands hard (5xx, `-f`) or soft (4xx, `-r`), or hangs up
//! without a reply (`-q`).

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// An `smtp-sink` on loopback, killed when dropped; with `keep`, each message it received is a
/// file in `dump`.
pub struct SmtpSink {
    child: Child,
    pub port: u16,
    dump: Option<tempfile::TempDir>,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port free a moment ago (a server binds it a moment later).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// The `smtp-sink` binary.
pub fn binary() -> &'static str {
    ["/usr/sbin/smtp-sink", "/usr/bin/smtp-sink"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("smtp-sink is missing: install Debian's postfix package (scripts/test does)")
}

impl SmtpSink {
    /// Starts `smtp-sink` with `faults` (its options), keeping every message, and waits until it
    /// answers.
    pub fn start(faults: &[&str]) -> SmtpSink {
        Self::start_with(faults, true, 16)
    }

    /// Starts `smtp-sink` with `faults`, keeping the messages or not, with a backlog of
    /// `backlog` connections.
    pub fn start_with(faults: &[&str], keep: bool, backlog: u32) -> SmtpSink {
        let port = free_port();
        let mut command = Command::new(binary());
        let root = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| o.stdout == b"0\n")
            .unwrap_or(false);
        if root {
            command.args(["-u", "nobody"]);
        }
        command.args(faults);
        let dump = keep.then(|| {
            let dump = tempfile::tempdir().expect("a temporary directory");
            // World-writable, so that smtp-sink may write there after it drops root's privileges.
            std::fs::set_permissions(
                dump.path(),
                std::os::unix::fs::PermissionsExt::from_mode(0o777),
            )
            .expect("the dump directory's mode");
            command
                .arg("-d")
                .arg(format!("{}/%Y%m%d%H%M%S.", dump.path().display()));
            dump
        });
        command
            .arg(format!("127.0.0.1:{port}"))
            .arg(backlog.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // Held by the guard from here on, so that it is killed and waited for on every path.
        let sink = SmtpSink {
            child: command.spawn().expect("smtp-sink starts"),
            port,
            dump,
        };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return sink;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("smtp-sink did not start listening");
    }

    /// The messages it kept, as text, in name order.
    pub fn received(&self) -> Vec<String> {
        let Some(dump) = &self.dump else {
            return Vec::new();
        };
        let mut texts: Vec<String> = std::fs::read_dir(dump.path())
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                    .collect()
            })
            .unwrap_or_default();
        texts.sort();
        texts
    }
}
