//! Noticing that configuration changed: filesystem events on the directories that hold
//! `mailtriage.yaml` and the profiles (directories, not files: editors that save by
//! writing a temporary file and renaming it over the original would break a file watch
//! after the first save), filtered to the files we use and debounced by the caller.
//!
//! [`Rewatch`] keeps that watch in step with the files the configuration names. A watch
//! that cannot be set up is logged with its reason and what it means (hot reload is off,
//! or covers only the files watched before); a watch that works is never given up for
//! one that does not, and a failed one is tried again at the next SIGHUP and every
//! [`RETRY`].

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use notify::Watcher;
use tracing::{debug, error, info, warn};

/// How often a watch that could not be set up is tried again.
pub const RETRY: Duration = Duration::from_secs(30);

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
            let event = match res {
                Ok(event) => event,
                Err(e) => {
                    warn!("watching the configuration for changes: {e}; edits may go unnoticed until the next one (SIGHUP reloads)");
                    return;
                }
            };
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
                .with_context(|| format!("cannot watch {} for changes", d.display()))?;
        }
        Ok(FileWatch { _watcher: watcher })
    }
}

/// A watch (`W`: a [`FileWatch`], or a stand-in in tests) that follows the files the
/// configuration names.
pub struct Rewatch<W> {
    watch: Option<W>,
    /// The files `watch` covers.
    covers: Vec<PathBuf>,
    /// The last attempt that failed, while the files it was for are not watched.
    failed: Option<Failed>,
}

struct Failed {
    files: Vec<PathBuf>,
    error: String,
    retry_at: Instant,
}

/// What one [`Rewatch::follow`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Followed {
    /// Nothing: already watching these files, or not yet time to try again.
    Unchanged,
    /// Watching the files now; `again` after a failure was reported.
    Watching { again: bool },
    /// The watch could not be set up. `kept`: the files the watch from before still
    /// covers (none: hot reload is off). `repeated`: the same error as last time.
    Failed {
        error: String,
        kept: Vec<PathBuf>,
        repeated: bool,
    },
}

impl<W> Default for Rewatch<W> {
    fn default() -> Self {
        Rewatch {
            watch: None,
            covers: Vec::new(),
            failed: None,
        }
    }
}

impl<W> Rewatch<W> {
    /// Makes sure `files` are watched, setting up a new watch with `make` when they are
    /// not: at once when the files changed or `force` is set, otherwise once [`RETRY`]
    /// has passed since the last failure. A failure keeps the watch there was.
    pub fn follow(
        &mut self,
        files: &[PathBuf],
        now: Instant,
        force: bool,
        make: impl FnOnce(&[PathBuf]) -> Result<W>,
    ) -> Followed {
        if self.watch.is_some() && self.covers == files {
            return match self.failed.take() {
                Some(_) => Followed::Watching { again: true },
                None => Followed::Unchanged,
            };
        }
        if let Some(f) = &self.failed {
            if !force && f.files == files && now < f.retry_at {
                return Followed::Unchanged;
            }
        }
        match make(files) {
            Ok(w) => {
                self.watch = Some(w);
                self.covers = files.to_vec();
                Followed::Watching {
                    again: self.failed.take().is_some(),
                }
            }
            Err(e) => {
                let error = format!("{e:#}");
                let repeated = self.failed.as_ref().is_some_and(|f| f.error == error);
                self.failed = Some(Failed {
                    files: files.to_vec(),
                    error: error.clone(),
                    retry_at: now + RETRY,
                });
                let kept = match self.watch {
                    Some(_) => self.covers.clone(),
                    None => Vec::new(),
                };
                Followed::Failed {
                    error,
                    kept,
                    repeated,
                }
            }
        }
    }
}

/// Logs what [`Rewatch::follow`] did, when it matters: a failure once (repeats at debug
/// level), and the recovery.
pub fn log(followed: &Followed) {
    match followed {
        Followed::Unchanged | Followed::Watching { again: false } => {}
        Followed::Watching { again: true } => {
            info!("watching the configuration for changes again; hot reload is on")
        }
        Followed::Failed {
            error,
            repeated: true,
            ..
        } => debug!("still cannot watch the configuration for changes: {error}"),
        Followed::Failed { error, kept, .. } if kept.is_empty() => error!(
            "{error}; hot reload is off: edits to the configuration and profiles are not noticed \
             (SIGHUP still reloads). Watching is tried again at each SIGHUP and every {}s.",
            RETRY.as_secs()
        ),
        Followed::Failed { error, kept, .. } => error!(
            "{error}; hot reload still notices edits to {} but not to the files added since \
             (SIGHUP reloads them all). Watching them is tried again at each SIGHUP and every {}s.",
            kept.iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            RETRY.as_secs()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::anyhow;

    /// One call of `follow`: seconds since the start, the files, forced (a SIGHUP), whether
    /// setting up the watch works; then what it should say and which files are watched.
    struct Step {
        at: u64,
        files: &'static [&'static str],
        force: bool,
        works: bool,
        said: Said,
        watching: &'static [&'static str],
    }

    /// `Followed`, without the error text.
    #[derive(Debug, PartialEq)]
    enum Said {
        Nothing,
        Watching,
        Again,
        Off,
        Kept,
        Repeated,
        /// `make` must not be called.
        NotTried,
    }

    fn step(
        at: u64,
        files: &'static [&'static str],
        force: bool,
        works: bool,
        said: Said,
        watching: &'static [&'static str],
    ) -> Step {
        Step {
            at,
            files,
            force,
            works,
            said,
            watching,
        }
    }

    #[test]
    fn a_failed_watch_keeps_the_one_that_worked_and_is_tried_again() {
        use Said::*;
        const A: &[&str] = &["/cfg/mailtriage.yaml", "/p/a.yaml"];
        const AB: &[&str] = &["/cfg/mailtriage.yaml", "/p/a.yaml", "/locked/b.yaml"];
        let cases: &[(&str, Vec<Step>)] = &[
            (
                "a watch that works is set up once",
                vec![
                    step(0, A, false, true, Watching, A),
                    step(1, A, false, true, NotTried, A),
                    step(2, A, true, true, NotTried, A),
                ],
            ),
            (
                "no watch at the start: hot reload is off until a retry works",
                vec![
                    step(0, A, false, false, Off, &[]),
                    step(10, A, false, true, NotTried, &[]),
                    step(31, A, false, false, Repeated, &[]),
                    step(62, A, false, true, Again, A),
                    step(63, A, false, true, NotTried, A),
                ],
            ),
            (
                "a SIGHUP tries again at once",
                vec![
                    step(0, A, false, false, Off, &[]),
                    step(1, A, true, true, Again, A),
                ],
            ),
            (
                "new files that cannot be watched keep the old watch",
                vec![
                    step(0, A, false, true, Watching, A),
                    step(5, AB, false, false, Kept, A),
                    step(6, AB, false, true, NotTried, A),
                    step(36, AB, false, false, Repeated, A),
                    step(37, AB, true, true, Again, AB),
                ],
            ),
            (
                "going back to the watched files ends the failure",
                vec![
                    step(0, A, false, true, Watching, A),
                    step(5, AB, false, false, Kept, A),
                    step(6, A, false, true, Again, A),
                    step(7, A, false, true, NotTried, A),
                ],
            ),
            (
                "other files are tried at once, not after the retry interval",
                vec![
                    step(0, AB, false, false, Off, &[]),
                    step(1, A, false, true, Again, A),
                ],
            ),
        ];
        let start = Instant::now();
        for (what, steps) in cases {
            let mut rw: Rewatch<Vec<PathBuf>> = Rewatch::default();
            for (i, s) in steps.iter().enumerate() {
                let files: Vec<PathBuf> = s.files.iter().map(PathBuf::from).collect();
                let mut tried = false;
                let got = rw.follow(&files, start + Duration::from_secs(s.at), s.force, |f| {
                    tried = true;
                    match s.works {
                        true => Ok(f.to_vec()),
                        false => Err(anyhow!("Permission denied")
                            .context("cannot watch /locked for changes")),
                    }
                });
                let said = match (&got, tried) {
                    (Followed::Unchanged, false) => NotTried,
                    (Followed::Unchanged, true) => Nothing,
                    (Followed::Watching { again: false }, _) => Watching,
                    (Followed::Watching { again: true }, _) => Again,
                    (Followed::Failed { repeated: true, .. }, _) => Repeated,
                    (Followed::Failed { kept, .. }, _) if kept.is_empty() => Off,
                    (Followed::Failed { .. }, _) => Kept,
                };
                assert_eq!(said, s.said, "{what}, step {i}: {got:?}");
                if let Followed::Failed { error, .. } = &got {
                    assert_eq!(
                        error, "cannot watch /locked for changes: Permission denied",
                        "{what}, step {i}: the error keeps its chain"
                    );
                }
                let watching: Vec<PathBuf> = s.watching.iter().map(PathBuf::from).collect();
                assert_eq!(
                    rw.watch.clone().unwrap_or_default(),
                    watching,
                    "{what}, step {i}"
                );
            }
        }
    }
}
