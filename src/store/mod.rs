//! State in SQLite (SPEC §9): the audit log of decisions, the filing journal that makes
//! moves crash-safe, and per-folder sync state.
//!
//! One database file per daemon (WAL, created 0600), guarded by an exclusive lock on
//! `<state>.lock` so a second daemon on the same state refuses to start. Every decision is
//! written with status `planned` *before* the mail server is touched; the status then
//! becomes `filed`, `failed` (retried) or stays visible for recovery after a crash.

mod checkpoint;
mod contacts;
pub mod outbox;
mod schema;

pub use contacts::{of_contact as contacts_of, ProviderCount, LEARN_AFTER};

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use rusqlite::{params, Connection, OptionalExtension};

/// Attempts before a failing move is left alone (the message stays in place).
pub const MAX_ATTEMPTS: i64 = 5;

/// Current time as Unix seconds.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Where a decision stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Recorded; the move has not been confirmed yet.
    Planned,
    /// Moved to its destination.
    Filed,
    /// Deliberately left where it was (not routed, or nothing to do).
    Left,
    /// Shadow mode: decided and recorded, never moved.
    DryRun,
    /// The move failed; retried up to MAX_ATTEMPTS times.
    Failed,
    /// The message disappeared from the source before it could be filed (moved or deleted by someone else).
    Gone,
}

impl Status {
    /// The status as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Planned => "planned",
            Status::Filed => "filed",
            Status::Left => "left",
            Status::DryRun => "dry_run",
            Status::Failed => "failed",
            Status::Gone => "gone",
        }
    }

    fn parse(s: &str) -> Status {
        match s {
            "filed" => Status::Filed,
            "left" => Status::Left,
            "dry_run" => Status::DryRun,
            "failed" => Status::Failed,
            "gone" => Status::Gone,
            _ => Status::Planned,
        }
    }

    /// Is this decision finished (never to be acted on again)?
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Status::Filed | Status::Left | Status::DryRun | Status::Gone
        )
    }
}

/// Sync state of one watched folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FolderState {
    pub uidvalidity: u32,
    /// Highest UID handled (everything at or below it has a decision or predates the baseline).
    pub last_uid: u32,
    /// Unix time before which mail is never triaged on a rescan (first start, minus backfill).
    pub baseline: i64,
}

/// A decision about to be recorded.
#[derive(Debug, Clone)]
pub struct NewDecision {
    pub account: String,
    pub folder: String,
    pub uidvalidity: u32,
    pub uid: u32,
    /// Backend key of the message in its source folder (IMAP "uidvalidity:uid", Maildir unique name).
    pub source_key: String,
    pub message_id: Option<String>,
    /// Dedupe key: the Message-ID, or a hash of the header when there is none.
    pub fingerprint: String,
    /// What tells this message from others with the same fingerprint (size and content
    /// hashes, as `mailbox::Signature::encode` writes them).
    pub signature: String,
    pub subject: String,
    pub sender: String,
    pub category: String,
    pub recipient: Option<String>,
    pub reason: String,
    pub escalation: Option<String>,
    /// Destination levels; None means leave in place.
    pub dest: Option<Vec<String>>,
    pub decision_json: String,
    pub profile_version: String,
    pub dry_run: bool,
    pub status: Status,
    /// The booking provider assigned (counts toward the sender's learned preferences).
    pub booked_provider: Option<String>,
}

/// A decision read back.
#[derive(Debug, Clone)]
pub struct StoredDecision {
    pub id: i64,
    pub account: String,
    pub folder: String,
    pub uidvalidity: u32,
    pub uid: u32,
    pub source_key: String,
    pub message_id: Option<String>,
    pub fingerprint: String,
    /// The message's signature when decided; empty for decisions recorded before version 5.
    pub signature: String,
    pub dest: Option<Vec<String>>,
    pub status: Status,
    pub attempts: i64,
    pub recipient: Option<String>,
    pub decided_at: i64,
}

/// The state database.
pub struct Store {
    /// Declared first, so dropped first: its thread has stopped (and its connection
    /// closed) before the main connection closes. Neither checkpoints on close; the next
    /// open's checkpointer folds in what is left in the log.
    checkpointer: checkpoint::Checkpointer,
    conn: Mutex<Connection>,
    path: PathBuf,
    /// Held for the life of the store: the exclusive lock that keeps a second daemon out.
    _lock: File,
}

fn lock_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".lock");
    PathBuf::from(p)
}

fn open_private(path: &Path) -> Result<File> {
    let mut o = OpenOptions::new();
    o.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)
        .with_context(|| format!("cannot open {}", path.display()))
}

/// Creates the state directory (and missing parents) readable by us only, whatever the
/// umask; an existing directory is left as it is.
pub(crate) fn create_private_dir(dir: &Path) -> Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
        .with_context(|| format!("cannot create the state directory {}", dir.display()))
}

/// Makes an existing file 0600 if others may read or write it (a state file copied,
/// restored or made by an older version), with a warning naming it.
fn make_private(file: &File, path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = file
            .metadata()
            .with_context(|| format!("cannot inspect {}", path.display()))?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            file.set_permissions(std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("cannot make {} private (chmod 600)", path.display()))?;
            tracing::warn!(
                file = %path.display(),
                mode = format!("{mode:o}"),
                "state file was accessible to other users; changed it to 0600"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = (file, path);
    Ok(())
}

/// `state.db` + `suffix` (`-wal`, `-shm`).
fn companion_path(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// The store's connection while one caller uses it.
struct ConnGuard<'s> {
    guard: std::sync::MutexGuard<'s, Connection>,
    checkpointer: &'s checkpoint::Checkpointer,
}

impl std::ops::Deref for ConnGuard<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.guard
    }
}

impl std::ops::DerefMut for ConnGuard<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        &mut self.guard
    }
}

impl Drop for ConnGuard<'_> {
    fn drop(&mut self) {
        self.checkpointer.nudge();
    }
}

impl Store {
    /// Opens (creating if needed) the state database, taking the single-daemon lock.
    ///
    /// Everything it creates is private whatever the umask: the directory 0700, the
    /// database and lock 0600 (SQLite gives `-wal` and `-shm` the database's mode).
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_private_dir(dir)?;
        }
        let lock = open_private(&lock_path(path))?;
        if lock.try_lock().is_err() {
            let holder = std::fs::read_to_string(lock_path(path)).unwrap_or_default();
            bail!(
                "another mailtriage is already running with state file {}{}",
                path.display(),
                if holder.trim().is_empty() {
                    String::new()
                } else {
                    format!(" (pid {})", holder.trim())
                }
            );
        }
        {
            use std::io::{Seek, Write};
            let mut l = &lock;
            let _ = l.set_len(0);
            let _ = l.seek(std::io::SeekFrom::Start(0));
            let _ = writeln!(l, "{}", std::process::id());
        }
        make_private(&lock, &lock_path(path))?;
        // Create the database file 0600 before SQLite opens it; tighten one that exists
        // (and a WAL left by a crash) before SQLite copies its mode to new companions.
        let db = open_private(path)?;
        make_private(&db, path)?;
        drop(db);
        for suffix in ["-wal", "-shm"] {
            let companion = companion_path(path, suffix);
            if let Ok(f) = File::open(&companion) {
                make_private(&f, &companion)?;
            }
        }
        let mut conn = Connection::open(path)
            .with_context(|| format!("cannot open state database {}", path.display()))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .context("cannot switch the state database to WAL mode")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        schema::migrations()
            .to_latest(&mut conn)
            .map_err(|e| anyhow!("cannot migrate the state database {}: {e}", path.display()))?;
        // Checkpoints run on a thread of their own when writes pause (see `checkpoint`);
        // the writer's own automatic checkpoint is only the backstop.
        conn.pragma_update(None, "wal_autocheckpoint", checkpoint::BACKSTOP_PAGES)?;
        conn.pragma_update(None, "journal_size_limit", checkpoint::WAL_KEEP_BYTES)?;
        checkpoint::no_checkpoint_on_close(&conn)?;
        Ok(Store {
            checkpointer: checkpoint::Checkpointer::start(path)?,
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
            _lock: lock,
        })
    }

    /// Opens an existing state database read-only, without the daemon lock (for `history`,
    /// `stats`, `explain --message-id` while the daemon runs).
    pub fn open_readonly(path: &Path) -> Result<Connection> {
        let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .with_context(|| format!("cannot open state database {}", path.display()))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Ok(conn)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The connection, for one use: the checkpoint thread is told when it is given back
    /// (a write may have been committed).
    fn conn(&self) -> Result<ConnGuard<'_>> {
        let guard = self
            .conn
            .lock()
            .map_err(|_| anyhow!("the state database lock is poisoned"))?;
        Ok(ConnGuard {
            guard,
            checkpointer: &self.checkpointer,
        })
    }

    /// Sync state of a folder, if it was ever synced.
    pub fn folder_state(&self, account: &str, folder: &str) -> Result<Option<FolderState>> {
        let conn = self.conn()?;
        conn.query_row(
            "SELECT uidvalidity, last_uid, baseline FROM folder_state WHERE account = ?1 AND folder = ?2",
            params![account, folder],
            |r| {
                Ok(FolderState {
                    uidvalidity: r.get::<_, i64>(0)? as u32,
                    last_uid: r.get::<_, i64>(1)? as u32,
                    baseline: r.get(2)?,
                })
            },
        )
        .optional()
        .context("cannot read folder state")
    }

    /// Saves a folder's sync state.
    pub fn set_folder_state(&self, account: &str, folder: &str, st: FolderState) -> Result<()> {
        let conn = self.conn()?;
        write_folder_state(&conn, account, folder, st)
    }

    /// The latest decision recorded in this account for each (fingerprint, signature),
    /// if any, in order: a decision of the same fingerprint counts when its signature is
    /// the same or unknown (recorded by an older version). One read transaction (one
    /// lock of the database, not one per message).
    pub fn find_by_fingerprints(
        &self,
        account: &str,
        fingerprints: &[(&str, &str)],
    ) -> Result<Vec<Option<StoredDecision>>> {
        let mut conn = self.conn()?;
        let tx = conn
            .transaction()
            .context("cannot start a state transaction")?;
        let mut found = Vec::with_capacity(fingerprints.len());
        {
            let mut stmt = tx.prepare_cached(&format!("{SELECT_DECISION} {BY_FINGERPRINT}"))?;
            for (fp, sig) in fingerprints {
                found.push(
                    stmt.query_row(params![account, fp, sig], read_decision)
                        .optional()
                        .context("cannot look up a decision")?,
                );
            }
        }
        tx.finish().context("cannot end a state transaction")?;
        Ok(found)
    }

    /// Records decisions (and optionally the folder's new sync state) in one transaction;
    /// returns the new rows' ids in order.
    pub fn record(
        &self,
        rows: &[NewDecision],
        folder_state: Option<(&str, &str, FolderState)>,
    ) -> Result<Vec<i64>> {
        self.record_with(rows, &[], folder_state)
    }

    /// Like [`Store::record`], with each decision's escalation actions and queued mail
    /// (`extras[i]` belongs to `rows[i]`; missing entries mean none) in the same transaction.
    pub fn record_with(
        &self,
        rows: &[NewDecision],
        extras: &[outbox::Extras],
        folder_state: Option<(&str, &str, FolderState)>,
    ) -> Result<Vec<i64>> {
        let mut conn = self.conn()?;
        let tx = conn
            .transaction()
            .context("cannot start a state transaction")?;
        let mut ids = Vec::with_capacity(rows.len());
        {
            // A plain INSERT, neither an upsert nor RETURNING (SQLite runs RETURNING as a
            // trigger): either makes SQLite keep a statement journal for every row, a
            // copy of each page it touches (and, in memory, ≈ 25 allocations). A row for
            // the same source position exists only when a message is decided again there
            // (the earlier decision is then replaced), which the failed INSERT reports
            // without having written anything.
            let mut insert = tx.prepare_cached(
                "INSERT INTO decisions (account, folder, uidvalidity, uid, source_key, message_id,
                    fingerprint, subject, sender, category, recipient, reason, escalation,
                    dest_folder, dest_path, decision_json, profile_version, dry_run, status,
                    decided_at, filed_at, signature)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                    ?17, ?18, ?19, ?20, NULL, ?21)",
            )?;
            let t = now();
            for d in rows {
                let dest_folder = d.dest.as_ref().map(|p| p.join("/"));
                let dest_path = d
                    .dest
                    .as_ref()
                    .map(serde_json::to_string)
                    .transpose()
                    .context("cannot encode a destination")?;
                let inserted = insert.execute(params![
                    d.account,
                    d.folder,
                    i64::from(d.uidvalidity),
                    i64::from(d.uid),
                    d.source_key,
                    d.message_id,
                    d.fingerprint,
                    d.subject,
                    d.sender,
                    d.category,
                    d.recipient,
                    d.reason,
                    d.escalation,
                    dest_folder,
                    dest_path,
                    d.decision_json,
                    d.profile_version,
                    d.dry_run,
                    d.status.as_str(),
                    t,
                    d.signature,
                ]);
                let id: i64 = match inserted {
                    Err(e) if is_unique_violation(&e) => tx
                        .prepare_cached(
                            "UPDATE decisions SET status = ?4, decision_json = ?5,
                                dest_folder = ?6, dest_path = ?7
                             WHERE account = ?1 AND folder = ?2 AND source_key = ?3
                             RETURNING id",
                        )?
                        .query_row(
                            params![
                                d.account,
                                d.folder,
                                d.source_key,
                                d.status.as_str(),
                                d.decision_json,
                                dest_folder,
                                dest_path,
                            ],
                            |r| r.get(0),
                        )
                        .context("cannot replace an earlier decision")?,
                    other => {
                        other.context("cannot record a decision")?;
                        tx.last_insert_rowid()
                    }
                };
                if let Some(x) = extras.get(ids.len()) {
                    outbox::insert_extras(&tx, id, x)?;
                }
                ids.push(id);
            }
        }
        contacts::count_assignments(&tx, rows)?;
        if let Some((account, folder, st)) = folder_state {
            write_folder_state(&tx, account, folder, st)?;
        }
        tx.commit()
            .context("cannot commit decisions to the state database")?;
        Ok(ids)
    }

    /// Sets the status of decisions (a failure increments their attempt count).
    pub fn set_status(&self, ids: &[i64], status: Status, error: Option<&str>) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "UPDATE decisions SET status = ?2, last_error = ?3,
                    attempts = attempts + (CASE WHEN ?2 = 'failed' THEN 1 ELSE 0 END),
                    filed_at = CASE WHEN ?2 = 'filed' THEN ?4 ELSE filed_at END
                 WHERE id = ?1",
            )?;
            let t = now();
            for id in ids {
                stmt.execute(params![id, status.as_str(), error, t])?;
            }
        }
        tx.commit().context("cannot update decision status")?;
        Ok(())
    }

    /// Marks decisions filed, each with where the move put it when the server said.
    pub fn set_filed(&self, filed: &[(i64, Option<(u32, u32)>)]) -> Result<()> {
        if filed.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "UPDATE decisions SET status = 'filed', last_error = NULL, filed_at = ?2,
                    dest_uidvalidity = ?3, dest_uid = ?4
                 WHERE id = ?1",
            )?;
            let t = now();
            for (id, at) in filed {
                let (v, u) = match at {
                    Some((v, u)) => (Some(i64::from(*v)), Some(i64::from(*u))),
                    None => (None, None),
                };
                stmt.execute(params![id, t, v, u])?;
            }
        }
        tx.commit().context("cannot record filed decisions")?;
        Ok(())
    }

    /// Points a decision at a new source position (after UIDVALIDITY changed).
    pub fn update_source(
        &self,
        id: i64,
        uidvalidity: u32,
        uid: u32,
        source_key: &str,
    ) -> Result<()> {
        let conn = self.conn()?;
        conn.execute(
            "UPDATE decisions SET uidvalidity = ?2, uid = ?3, source_key = ?4 WHERE id = ?1",
            params![id, i64::from(uidvalidity), i64::from(uid), source_key],
        )
        .context("cannot update a decision's source")?;
        Ok(())
    }

    /// Decisions of a folder still to be carried out (planned, or failed fewer than MAX_ATTEMPTS times).
    pub fn pending(&self, account: &str, folder: &str) -> Result<Vec<StoredDecision>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&format!(
            "{SELECT_DECISION} WHERE account = ?1 AND folder = ?2
               AND (status = 'planned' OR (status = 'failed' AND attempts < ?3)) ORDER BY id"
        ))?;
        let rows = stmt
            .query_map(params![account, folder, MAX_ATTEMPTS], read_decision)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Assignments per member over the 7 days before `now` (the load tie-break).
    pub fn load_7d(&self, now: i64) -> Result<BTreeMap<String, u32>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(LOAD_7D)?;
        let rows = stmt
            .query_map(params![now - 7 * 86_400], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows
            .into_iter()
            .map(|(k, v)| (k, u32::try_from(v).unwrap_or(u32::MAX)))
            .collect())
    }

    /// Source keys of every decision recorded for a folder (Maildir: which files were seen).
    pub fn decided_keys(
        &self,
        account: &str,
        folder: &str,
    ) -> Result<std::collections::HashSet<String>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT source_key FROM decisions WHERE account = ?1 AND folder = ?2",
        )?;
        let rows = stmt
            .query_map(params![account, folder], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<std::collections::HashSet<_>>>()?;
        Ok(rows)
    }
}

/// The latest decision about a fingerprint in an account (index `decisions_fingerprint`).
const BY_FINGERPRINT: &str = "WHERE fingerprint = ?2 AND account = ?1
    AND (signature = ?3 OR signature = '') ORDER BY id DESC LIMIT 1";

/// Assignments per member since ?1 (read from the covering index `decisions_load`).
const LOAD_7D: &str = "SELECT recipient, count(*) FROM decisions
     WHERE recipient IS NOT NULL AND decided_at >= ?1 AND status IN ('filed', 'planned', 'dry_run')
     GROUP BY recipient";

const SELECT_DECISION: &str =
    "SELECT id, account, folder, uidvalidity, uid, source_key, message_id,
    fingerprint, dest_path, status, attempts, recipient, decided_at, signature FROM decisions";

/// The error of an INSERT refused by a UNIQUE constraint.
fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
}

fn read_decision(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredDecision> {
    let dest: Option<String> = r.get(8)?;
    Ok(StoredDecision {
        id: r.get(0)?,
        account: r.get(1)?,
        folder: r.get(2)?,
        uidvalidity: r.get::<_, i64>(3)? as u32,
        uid: r.get::<_, i64>(4)? as u32,
        source_key: r.get(5)?,
        message_id: r.get(6)?,
        fingerprint: r.get(7)?,
        dest: dest.and_then(|d| serde_json::from_str(&d).ok()),
        status: Status::parse(&r.get::<_, String>(9)?),
        attempts: r.get(10)?,
        recipient: r.get(11)?,
        decided_at: r.get(12)?,
        signature: r.get(13)?,
    })
}

fn write_folder_state(
    conn: &Connection,
    account: &str,
    folder: &str,
    st: FolderState,
) -> Result<()> {
    conn.execute(
        "INSERT INTO folder_state (account, folder, uidvalidity, last_uid, baseline, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (account, folder) DO UPDATE SET uidvalidity = excluded.uidvalidity,
            last_uid = excluded.last_uid, baseline = excluded.baseline, updated_at = excluded.updated_at",
        params![
            account,
            folder,
            i64::from(st.uidvalidity),
            i64::from(st.last_uid),
            st.baseline,
            now()
        ],
    )
    .context("cannot save folder state")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("mailtriage-store-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir.join("state.db")
    }

    #[test]
    fn second_open_is_refused_while_the_first_is_alive() {
        let p = tmp("lock");
        let first = Store::open(&p).expect("opens");
        let err = Store::open(&p)
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default();
        assert!(err.contains("already running"), "{err}");
        drop(first);
        assert!(
            Store::open(&p).is_ok(),
            "the lock is released with the store"
        );
    }

    #[cfg(unix)]
    #[test]
    fn state_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let p = tmp("mode");
        let _s = Store::open(&p).expect("opens");
        let mode = std::fs::metadata(&p).expect("exists").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[cfg(unix)]
    fn mode_of(p: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).expect("exists").permissions().mode() & 0o777
    }

    /// Regression: the state directory was created with the process umask (0777 under
    /// `umask 000`), so other users could list it, or replace the files in it.
    #[cfg(unix)]
    #[test]
    fn regression_state_directory_was_created_with_the_umask() {
        let p = tmp("dirmode").with_file_name("deeper").join("state.db");
        let _s = Store::open(&p).expect("opens");
        for dir in [
            p.parent().expect("dir"),
            p.parent().and_then(Path::parent).expect("dir"),
        ] {
            let m = mode_of(dir);
            assert_eq!(m & 0o077, 0, "{} is {m:o}", dir.display());
        }
    }

    /// Regression: a state file that already existed world-readable (copied, restored,
    /// or made by an older version) stayed so, and SQLite gave its new `-wal` and `-shm`
    /// the same mode.
    #[cfg(unix)]
    #[test]
    fn regression_existing_world_readable_state_file_stayed_readable() {
        use std::os::unix::fs::PermissionsExt;
        let p = tmp("loose");
        drop(Store::open(&p).expect("opens"));
        for sfx in ["", ".lock"] {
            std::fs::set_permissions(
                companion_path(&p, sfx),
                std::fs::Permissions::from_mode(0o644),
            )
            .expect("chmod");
        }
        let s = Store::open(&p).expect("opens again");
        s.set_folder_state(
            "a",
            "INBOX",
            FolderState {
                uidvalidity: 1,
                last_uid: 1,
                baseline: 0,
            },
        )
        .expect("writes");
        for sfx in ["", "-wal", "-shm", ".lock"] {
            let f = companion_path(&p, sfx);
            assert_eq!(mode_of(&f), 0o600, "{}", f.display());
        }
    }

    #[cfg(unix)]
    #[test]
    fn wal_and_shm_are_private() {
        let p = tmp("walmode");
        let s = Store::open(&p).expect("opens");
        s.set_folder_state(
            "a",
            "INBOX",
            FolderState {
                uidvalidity: 1,
                last_uid: 1,
                baseline: 0,
            },
        )
        .expect("writes");
        for sfx in ["-wal", "-shm", ".lock"] {
            let f = companion_path(&p, sfx);
            assert_eq!(mode_of(&f), 0o600, "{}", f.display());
        }
    }

    #[test]
    fn record_then_update_status_and_find() {
        let p = tmp("record");
        let s = Store::open(&p).expect("opens");
        let d = NewDecision {
            account: "a".into(),
            folder: "INBOX".into(),
            uidvalidity: 7,
            uid: 3,
            source_key: "7:3".into(),
            message_id: Some("x@y".into()),
            fingerprint: "x@y".into(),
            signature: String::new(),
            subject: "s".into(),
            sender: "f@e".into(),
            category: "SALES".into(),
            recipient: Some("Mark".into()),
            reason: "category_role".into(),
            escalation: None,
            dest: Some(vec!["SALES".into(), "Mark".into()]),
            decision_json: "{}".into(),
            profile_version: "v".into(),
            dry_run: false,
            status: Status::Planned,
            booked_provider: None,
        };
        let st = FolderState {
            uidvalidity: 7,
            last_uid: 3,
            baseline: 0,
        };
        let ids = s.record(&[d], Some(("a", "INBOX", st))).expect("records");
        assert_eq!(s.folder_state("a", "INBOX").expect("reads"), Some(st));
        assert_eq!(s.pending("a", "INBOX").expect("reads").len(), 1);
        s.set_status(&ids, Status::Failed, Some("NO"))
            .expect("updates");
        let found = s
            .find_by_fingerprints("a", &[("x@y", "")])
            .expect("reads")
            .pop()
            .flatten()
            .expect("exists");
        assert_eq!((found.status, found.attempts), (Status::Failed, 1));
        s.set_status(&ids, Status::Filed, None).expect("updates");
        assert!(s.pending("a", "INBOX").expect("reads").is_empty());
        assert_eq!(s.load_7d(now()).expect("reads").get("Mark"), Some(&1));
        let many = s
            .find_by_fingerprints("a", &[("nope", ""), ("x@y", ""), ("nope@either", "")])
            .expect("reads");
        let found: Vec<Option<Status>> =
            many.iter().map(|d| d.as_ref().map(|d| d.status)).collect();
        assert_eq!(found, vec![None, Some(Status::Filed), None]);
        let elsewhere = s
            .find_by_fingerprints("other account", &[("x@y", "")])
            .expect("reads");
        assert!(elsewhere.iter().all(Option::is_none));
    }

    #[test]
    fn a_message_decided_again_at_its_position_replaces_the_row() {
        let p = tmp("again");
        let s = Store::open(&p).expect("opens");
        let first = decision(
            "7:3",
            Some(vec!["SALES".into(), "Mark".into()]),
            Status::Failed,
        );
        let ids = s.record(&[first], None).expect("records");
        let again = NewDecision {
            decision_json: "{\"again\":true}".into(),
            ..decision("7:3", Some(vec!["SUPPORT".into()]), Status::Planned)
        };
        let again_ids = s.record(&[again], None).expect("records again");
        assert_eq!(again_ids, ids, "the same row");
        let pending = s.pending("a", "INBOX").expect("reads");
        assert_eq!(pending.len(), 1);
        assert_eq!(
            pending[0].dest.as_deref(),
            Some(&["SUPPORT".to_string()][..])
        );
        assert_eq!(pending[0].status, Status::Planned);
        let (rows, json): (i64, String) = s
            .conn()
            .expect("conn")
            .query_row(
                "SELECT count(*), max(decision_json) FROM decisions",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("reads");
        assert_eq!((rows, json.as_str()), (1, "{\"again\":true}"));
        // Another position is another row.
        let other = s
            .record(&[decision("7:4", None, Status::Left)], None)
            .expect("records");
        assert_ne!(other, ids);
    }

    fn decision(source_key: &str, dest: Option<Vec<String>>, status: Status) -> NewDecision {
        NewDecision {
            account: "a".into(),
            folder: "INBOX".into(),
            uidvalidity: 7,
            uid: 3,
            source_key: source_key.into(),
            message_id: Some(format!("{source_key}@y")),
            fingerprint: format!("{source_key}@y"),
            signature: String::new(),
            subject: "s".into(),
            sender: "f@e".into(),
            category: "SALES".into(),
            recipient: None,
            reason: "category_role".into(),
            escalation: None,
            dest,
            decision_json: "{}".into(),
            profile_version: "v".into(),
            dry_run: false,
            status,
            booked_provider: None,
        }
    }

    /// The per-message queries stay index lookups as the audit log grows: the duplicate
    /// check through `decisions_fingerprint`, the 7-day load from the covering index
    /// (before it, every batch visited every recent row of the table).
    #[test]
    fn per_message_queries_use_their_indexes() {
        let p = tmp("plans");
        let s = Store::open(&p).expect("opens");
        let conn = s.conn().expect("locks");
        let plan = |sql: &str| -> String {
            let mut stmt = conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .expect("prepares");
            let nulls = std::iter::repeat_n(rusqlite::types::Null, stmt.parameter_count());
            let rows = stmt
                .query_map(rusqlite::params_from_iter(nulls), |r| r.get::<_, String>(3))
                .expect("runs")
                .collect::<rusqlite::Result<Vec<_>>>()
                .expect("reads");
            rows.join("; ")
        };
        let find = plan(&format!("{SELECT_DECISION} {BY_FINGERPRINT}"));
        assert!(find.contains("USING INDEX decisions_fingerprint"), "{find}");
        let load = plan(LOAD_7D);
        assert!(
            load.contains("USING COVERING INDEX decisions_load"),
            "{load}"
        );
        let explain =
            plan("SELECT decision_json FROM decisions WHERE fingerprint = ?1 ORDER BY id");
        assert!(
            explain.contains("USING INDEX decisions_fingerprint"),
            "{explain}"
        );
    }
}
