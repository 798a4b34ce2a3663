//! WAL checkpoints on a thread of their own, when the writers pause.
//!
//! A checkpoint copies committed pages from the write-ahead log into the database file
//! and, with `synchronous = NORMAL`, fsyncs both. On the development VM an fsync takes
//! 10–50 ms and stalls the file system's other writers meanwhile (Dovecot's renames, our
//! own log appends): left to SQLite's automatic checkpoint every 1,000 pages, a
//! 10,000-message backlog spent ≈ 0.24 s in fsync — on the triage thread, or in a move's
//! status write holding the store while the triage thread waited — and ran ≈ 0.15 s
//! longer than with no fsync at all.
//!
//! So the writers never checkpoint (but for a backstop at [`BACKSTOP_PAGES`], should this
//! thread fail): a second connection checkpoints once writes have paused for [`QUIET`],
//! or at once when the log file passes [`WAL_LIMIT`]. Nor does closing checkpoint: what
//! a run leaves in the log is as durable as every commit under `synchronous = NORMAL`
//! (flushed by the kernel, or by the next checkpoint), and the next start copies it back
//! in the background.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context as _, Result};
use rusqlite::config::DbConfig;
use rusqlite::Connection;

/// Writes must pause this long before a checkpoint.
const QUIET: Duration = Duration::from_secs(1);

/// A log file this large is checkpointed without waiting for a pause.
const WAL_LIMIT: u64 = 64 * 1024 * 1024;

/// The size a log file is cut back to when it starts over (it never shrinks otherwise,
/// and its size is how [`WAL_LIMIT`] is noticed).
pub const WAL_KEEP_BYTES: i64 = 16 * 1024 * 1024;

/// WAL pages after which the writing connection checkpoints by itself (SQLite's default
/// is 1,000): a backstop, reached only if this thread stops keeping up.
pub const BACKSTOP_PAGES: u32 = 50_000;

/// Configures a connection of the store: no checkpoint when it closes.
pub fn no_checkpoint_on_close(conn: &Connection) -> Result<()> {
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
        .context("cannot configure the state database's checkpoints")?;
    Ok(())
}

#[derive(Default)]
struct Signal {
    /// Something may have been written since the last look.
    dirty: bool,
    /// The store is closing.
    stop: bool,
}

#[derive(Default)]
struct Shared {
    signal: Mutex<Signal>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Signal> {
        // Two flags: meaningful whatever a panicking holder left.
        self.signal.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The checkpoint thread of one state database; stopped (and joined) when dropped.
pub struct Checkpointer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts checkpointing the database at `path` (already in WAL mode), beginning with
    /// whatever an earlier run left in the log.
    pub fn start(path: &Path) -> Result<Checkpointer> {
        let conn = Connection::open(path).with_context(|| {
            format!(
                "cannot open state database {} for checkpoints",
                path.display()
            )
        })?;
        conn.busy_timeout(Duration::from_secs(5))?;
        no_checkpoint_on_close(&conn)?;
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        let wal = PathBuf::from(wal);
        let shared = Arc::new(Shared {
            signal: Mutex::new(Signal {
                dirty: true,
                stop: false,
            }),
            wake: Condvar::new(),
        });
        let thread = std::thread::Builder::new()
            .name("mailtriage-checkpoint".into())
            .spawn({
                let shared = Arc::clone(&shared);
                move || run(&conn, &wal, &shared)
            })
            .context("cannot start the state checkpoint thread")?;
        Ok(Checkpointer {
            shared,
            thread: Some(thread),
        })
    }

    /// Notes that a write may have been committed.
    pub fn nudge(&self) {
        let mut s = self.shared.lock();
        if !s.dirty {
            s.dirty = true;
            self.shared.wake.notify_one();
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(conn: &Connection, wal: &Path, shared: &Shared) {
    let big = || std::fs::metadata(wal).is_ok_and(|m| m.len() > WAL_LIMIT);
    let mut s = shared.lock();
    loop {
        while !s.dirty && !s.stop {
            s = shared.wake.wait(s).unwrap_or_else(|p| p.into_inner());
        }
        // Until the writes pause (no nudge for QUIET), or the log grows too big.
        while s.dirty && !s.stop && !big() {
            s.dirty = false;
            s = shared
                .wake
                .wait_timeout_while(s, QUIET, |s| !s.dirty && !s.stop)
                .map(|(s, _)| s)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        if s.stop {
            return;
        }
        s.dirty = false;
        drop(s);
        checkpoint(conn);
        s = shared.lock();
    }
}

fn checkpoint(conn: &Connection) {
    let started = std::time::Instant::now();
    match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
    }) {
        Ok((log, copied)) => tracing::debug!(target: "mailtriage::timing",
            wal_pages = log, copied, ms = started.elapsed().as_millis() as u64,
            "checkpointed the state database"),
        // A full disk, say: the next pause brings another try, and the writer's own
        // checkpoint is the backstop.
        Err(e) => tracing::warn!("cannot checkpoint the state database: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("mt-ckpt-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("creates a dir");
        dir.join("s.db")
    }

    fn writer(path: &Path) -> Connection {
        let c = Connection::open(path).expect("opens");
        c.pragma_update(None, "journal_mode", "WAL").expect("wal");
        // No checkpoint by the writer: only the thread copies pages back.
        c.pragma_update(None, "wal_autocheckpoint", 0)
            .expect("no autocheckpoint");
        no_checkpoint_on_close(&c).expect("configures");
        c
    }

    fn db_len(path: &Path) -> u64 {
        std::fs::metadata(path).map_or(0, |m| m.len())
    }

    /// Until a checkpoint, the written pages are only in the log; the database file grows
    /// once they are copied into it.
    fn wait_for_checkpoint(path: &Path) -> Duration {
        let start = std::time::Instant::now();
        while db_len(path) < 100_000 {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "never checkpointed"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        start.elapsed()
    }

    #[test]
    fn writes_are_checkpointed_once_they_pause() {
        let path = scratch("pause");
        let w = writer(&path);
        let c = Checkpointer::start(&path).expect("starts");
        w.execute_batch("CREATE TABLE t (x TEXT); INSERT INTO t VALUES (hex(randomblob(100000)));")
            .expect("writes");
        c.nudge();
        // Writes keep coming: no checkpoint yet.
        for _ in 0..5 {
            std::thread::sleep(QUIET / 4);
            w.execute("INSERT INTO t VALUES ('more')", [])
                .expect("writes");
            c.nudge();
        }
        assert!(db_len(&path) < 100_000, "checkpointed while writes went on");
        let waited = wait_for_checkpoint(&path);
        assert!(waited >= QUIET / 2, "checkpointed after {waited:?}");
        drop(c); // joins the thread
    }

    #[test]
    fn what_an_earlier_run_left_in_the_log_is_checkpointed_at_start() {
        let path = scratch("start");
        {
            let w = writer(&path);
            w.execute_batch(
                "CREATE TABLE t (x TEXT); INSERT INTO t VALUES (hex(randomblob(100000)));",
            )
            .expect("writes");
        } // closed without a checkpoint: the pages stay in the log
        assert!(db_len(&path) < 100_000);
        let w = writer(&path);
        let c = Checkpointer::start(&path).expect("starts");
        wait_for_checkpoint(&path);
        let n: i64 = w
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .expect("reads");
        assert_eq!(n, 1);
        drop(c);
    }
}
