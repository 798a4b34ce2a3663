//! Noticing that configuration changed: filesystem events on the directories that hold
//! `mailtriage.yaml` and the profiles (directories, not files: editors that save by
//! writing a temporary file and renaming it over the original would break a file watch
//! after the first save), filtered to the files we use and debounced by the caller.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use notify::Watcher;

/// A watch on the directories of the given files; each relevant event sends `()`.
pub struct FileWatch {
    _watcher: notify::RecommendedWatcher,
}

/// Canonical form of a path for comparisons (the path itself when it cannot be resolved).
fn canon(p: &Path) -> PathBuf {
    match (p.parent(), p.file_name()) {
        (Some(dir), Some(name)) => {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            std::fs::canonicalize(dir)
                .unwrap_or_else(|_| dir.to_path_buf())
                .join(name)
        }
        _ => p.to_path_buf(),
    }
}

impl FileWatch {
    /// Watches the directories of `files`; events touching one of `files` are reported on `tx`.
    pub fn new(files: &[PathBuf], tx: tokio::sync::mpsc::Sender<()>) -> Result<FileWatch> {
        let wanted: BTreeSet<PathBuf> = files.iter().map(|f| canon(f)).collect();
        let dirs: BTreeSet<PathBuf> = wanted
            .iter()
            .filter_map(|f| f.parent().map(Path::to_path_buf))
            .collect();
        let filter = wanted.clone();
        let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            let Ok(event) = res else { return };
            if matches!(event.kind, notify::EventKind::Access(_)) {
                return;
            }
            if event.paths.iter().any(|p| filter.contains(&canon(p))) {
                let _ = tx.try_send(());
            }
        })
        .context("cannot watch the configuration for changes")?;
        for d in &dirs {
            watcher
                .watch(d, notify::RecursiveMode::NonRecursive)
                .with_context(|| format!("cannot watch {}", d.display()))?;
        }
        Ok(FileWatch { _watcher: watcher })
    }
}
