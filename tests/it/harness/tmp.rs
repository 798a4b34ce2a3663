//! A self-deleting temporary directory (std only), plus discovery of directories
//! left behind by earlier test processes that died without cleaning up.
//!
//! Where: `$MAILTRIAGE_TESTBED_DIR` if set, else `/dev/shm` when it has at least
//! 1 GiB free (tmpfs: creating 2,000 small files takes ~40 ms there against 0.4-1.8 s
//! on this VM's ext4), else the system temp dir.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

/// Every directory this harness creates is named `PREFIX<pid>-<n>-<tag>`.
const PREFIX: &str = "mailtriage-it-";

/// A marker file: a directory holding it was kept on purpose and is never reaped.
pub const KEEP_MARKER: &str = "KEEP";

/// A directory under the system temp dir, removed with everything in it on drop.
pub struct TempDir {
    path: PathBuf,
    keep: bool,
}

impl TempDir {
    /// Creates `BASE/mailtriage-it-<pid>-<n>-<tag>` with mode 0755 (other users,
    /// such as Dovecot's unprivileged processes, must be able to traverse it).
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("{PREFIX}{}-{n}-{tag}", std::process::id());
        let path = base().join(name);
        if path.exists() {
            // Left over by an earlier process that had our pid.
            let _ = fs::remove_dir_all(&path);
        }
        fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("cannot create temp dir {}: {e}", path.display()));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|e| panic!("cannot chmod {}: {e}", path.display()));
        TempDir { path, keep: false }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Keeps the directory on drop (and marks it so that stale-dir reaping skips it).
    pub fn keep(&mut self) {
        self.keep = true;
        let _ = fs::write(self.path.join(KEEP_MARKER), b"kept on purpose\n");
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        // A process that is still exiting may create a file while we delete: retry.
        for _ in 0..5 {
            match fs::remove_dir_all(&self.path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    std::thread::sleep(std::time::Duration::from_millis(20))
                }
                _ => return,
            }
        }
    }
}

/// Harness directories whose creating process is gone and that were not kept on purpose.
pub fn stale_dirs() -> Vec<PathBuf> {
    let mut bases = vec![base().to_path_buf(), std::env::temp_dir()];
    bases.dedup();
    bases
        .iter()
        .filter_map(|b| fs::read_dir(b).ok())
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let pid: u32 = name.strip_prefix(PREFIX)?.split('-').next()?.parse().ok()?;
            let path = e.path();
            let dead = !super::process::alive(pid);
            (dead && !path.join(KEEP_MARKER).exists()).then_some(path)
        })
        .collect()
}

/// The directory temp dirs are made in (see the module doc).
pub fn base() -> &'static Path {
    static BASE: OnceLock<PathBuf> = OnceLock::new();
    BASE.get_or_init(|| {
        if let Some(dir) = std::env::var_os("MAILTRIAGE_TESTBED_DIR") {
            return PathBuf::from(dir);
        }
        let shm = Path::new("/dev/shm");
        let big_enough = free_kib(shm).is_some_and(|kib| kib >= 1 << 20);
        if big_enough {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        }
    })
}

/// Free space of the filesystem holding `dir`, from `df -Pk` (std has no statvfs).
fn free_kib(dir: &Path) -> Option<u64> {
    let out = std::process::Command::new("df")
        .arg("-Pk")
        .arg(dir)
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    // "Filesystem 1024-blocks Used Available Capacity Mounted-on", then one line.
    text.lines().nth(1)?.split_whitespace().nth(3)?.parse().ok()
}
