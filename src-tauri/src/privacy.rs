//! Keeping the webview's files off the disk. WebKitGTK writes caches, salts and (without
//! incognito) web storage into its data directory even for an incognito window, so the app gives
//! it a private directory on the runtime tmpfs (`$XDG_RUNTIME_DIR`, memory only, 0700), or in the
//! temporary directory where there is none, and deletes it on exit; a directory left by a run that
//! crashed is deleted at the next start.

use std::io;
use std::path::{Path, PathBuf};

const PREFIX: &str = "assent-webview-";

/// The webview's private data directory; removed when dropped.
#[derive(Debug)]
pub struct PrivateDir {
    dir: Option<tempfile::TempDir>,
}

/// Where the private directories go: the runtime directory (a tmpfs only this user can read)
/// when the session has one, else `/dev/shm` (memory too), else the temporary directory, which
/// may be on disk: that last case is said on standard error.
pub fn base_directory() -> PathBuf {
    let in_memory = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .into_iter()
        .chain([PathBuf::from("/dev/shm")])
        .find(|dir| dir.is_dir());
    in_memory.unwrap_or_else(|| {
        let temp = std::env::temp_dir();
        eprintln!(
            "assent-desktop: neither XDG_RUNTIME_DIR nor /dev/shm is available; the webview's private directory is in {}, which may be on disk (it is deleted on exit)",
            temp.display()
        );
        temp
    })
}

impl PrivateDir {
    /// Creates `assent-webview-<pid>-<random>` under `base` (0700), first removing those whose
    /// process is gone.
    pub fn create_in(base: &Path) -> io::Result<Self> {
        remove_stale(base);
        let dir = tempfile::Builder::new()
            .prefix(&format!("{PREFIX}{}-", std::process::id()))
            .tempdir_in(base)?;
        restrict(dir.path())?;
        Ok(PrivateDir { dir: Some(dir) })
    }

    pub fn path(&self) -> &Path {
        self.dir.as_ref().map_or(Path::new(""), |d| d.path())
    }

    /// Deletes the directory now (at exit), reporting a failure instead of ignoring it.
    pub fn remove(&mut self) -> io::Result<()> {
        match self.dir.take() {
            Some(dir) => dir.close(),
            None => Ok(()),
        }
    }
}

#[cfg(unix)]
fn restrict(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
}

#[cfg(not(unix))]
fn restrict(_path: &Path) -> io::Result<()> {
    Ok(())
}

/// True while process `pid` runs (Linux: its `/proc` entry exists).
fn process_alive(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

/// Removes private directories of runs that ended without cleaning up (a crash, a kill).
fn remove_stale(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(PREFIX)) else {
            continue;
        };
        let pid = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid {
            if pid != std::process::id() && !process_alive(pid) {
                // Best effort: a directory that cannot be removed now is tried again next start.
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_private_directory_is_owner_only_and_gone_after_remove() {
        let base = tempfile::tempdir().unwrap();
        let mut private = PrivateDir::create_in(base.path()).unwrap();
        let path = private.path().to_owned();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        std::fs::write(path.join("hsts-storage.sqlite"), b"x").unwrap();
        private.remove().unwrap();
        assert!(!path.exists());
    }

    #[test]
    fn a_directory_left_by_a_crashed_run_is_removed_at_the_next_start_and_a_live_one_is_not() {
        let base = tempfile::tempdir().unwrap();
        // No process has pid 4194305 (above Linux's pid_max of 4194304).
        let crashed = base.path().join(format!("{PREFIX}4194305-abc"));
        let live = base.path().join(format!("{PREFIX}1-abc"));
        let unrelated = base.path().join("someone-else");
        for dir in [&crashed, &live, &unrelated] {
            std::fs::create_dir(dir).unwrap();
        }
        let _private = PrivateDir::create_in(base.path()).unwrap();
        assert!(!crashed.exists());
        assert!(live.exists(), "pid 1 is running");
        assert!(unrelated.exists());
    }
}
