//! The daemon: one task per watched folder, each a loop that races shutdown against its
//! work, drops its session on any error and reconnects with jittered exponential backoff.
//!
//! ```text
//! run ─┬─ signals (SIGTERM/SIGINT → cancel)
//!      ├─ imap task per (account, folder): connect → select → recover → sync → IDLE/poll → sync …
//!      └─ maildir task per account:        recover → scan → sync → fs event/poll → scan …
//! ```
//!
//! Shutdown finishes the batch in flight (every batch is journalled before the server is
//! touched, so even an abort loses nothing), logs out, and exits 0.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::config::{
    AccountConfig, Backend, Backfill, Config, ImapConfig, LogConfig, LogFormat, WatchMode,
};
use crate::mailbox::imap::connect as imap_connect;
use crate::mailbox::imap::{ImapFolder, Woke};
use crate::mailbox::maildir::Maildir;
use crate::mailbox::{MailSource, MessageKey};
use crate::pipeline::{self, Account, Report};
use crate::profile::{LiveProfile, Profile};
use crate::store::{self, FolderState, Store};

/// Messages per batch: bounds memory and the work lost to an interruption.
const BATCH: usize = 500;
/// IDLE is re-issued at least this often (servers drop IDLE after 30 minutes).
const MAX_IDLE: Duration = Duration::from_secs(10 * 60);
/// How long shutdown waits for tasks to finish their batch.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

/// How `run` was asked to behave.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Process what is there and exit.
    pub once: bool,
    /// Shadow mode for every account.
    pub dry_run: bool,
}

/// Sets up logging as configured (human text or JSON lines).
pub fn init_logging(log: &LogConfig) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MAILTRIAGE_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&log.level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match log.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.with_target(false).try_init(),
    };
}

/// Jittered exponential backoff.
struct Backoff {
    attempt: u32,
    seed: u64,
}

impl Backoff {
    fn new(salt: &str) -> Self {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        let s = salt
            .bytes()
            .fold(t ^ u64::from(std::process::id()), |h, b| {
                h.rotate_left(7) ^ u64::from(b)
            });
        Backoff {
            attempt: 0,
            seed: s | 1,
        }
    }

    /// The next delay: 1 s doubling to 5 min (authentication failures start at 1 min), ±25 %.
    fn next(&mut self, auth: bool) -> Duration {
        let base = if auth { 60.0 } else { 1.0 };
        let secs = (base * 2f64.powi(self.attempt.min(16) as i32)).min(300.0);
        self.attempt = self.attempt.saturating_add(1);
        // xorshift64
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let jitter = 0.75 + (self.seed % 1000) as f64 / 2000.0;
        Duration::from_secs_f64(secs * jitter)
    }

    fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// Sleeps unless cancelled; false when cancelled.
async fn pause(d: Duration, cancel: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => true,
        _ = cancel.cancelled() => false,
    }
}

/// Runs the daemon until shutdown (or, with `once`, until everything present is handled).
pub async fn run(cfg: Config, opts: RunOptions) -> Result<()> {
    let store = Arc::new(Store::open(&cfg.state)?);
    info!(state = %cfg.state.display(), accounts = cfg.accounts.len(), once = opts.once, dry_run = opts.dry_run, "mailtriage starting");
    let mut profiles: HashMap<PathBuf, Arc<LiveProfile>> = HashMap::new();
    for a in &cfg.accounts {
        if !profiles.contains_key(&a.profile) {
            let p = Profile::load(&a.profile)
                .map_err(|e| anyhow!("invalid profile for account {}\n{e}", a.name))?;
            info!(profile = %a.profile.display(), version = %p.version, business = %p.business.name, "profile loaded");
            profiles.insert(a.profile.clone(), Arc::new(LiveProfile::new(p)));
        }
    }
    let cancel = CancellationToken::new();
    spawn_signal_handler(cancel.clone())?;
    let mut tasks = JoinSet::new();
    for a in &cfg.accounts {
        let Some(profile) = profiles.get(&a.profile).cloned() else {
            continue;
        };
        let acct = Arc::new(Account {
            config: a.clone(),
            profile,
            store: store.clone(),
            max_scan_bytes: cfg.max_scan_bytes,
            dry_run: opts.dry_run || a.dry_run,
        });
        match &a.backend {
            Backend::Imap(imap) => {
                let tls = imap_connect::tls_config(imap.ca_file.as_deref())
                    .with_context(|| format!("account {}", a.name))?;
                for folder in &a.folders {
                    let (acct, imap, folder, cancel, tls) = (
                        acct.clone(),
                        imap.clone(),
                        folder.clone(),
                        cancel.clone(),
                        tls.clone(),
                    );
                    tasks.spawn(async move {
                        let r = imap_task(&acct, &imap, &folder, &tls, &cancel, opts.once).await;
                        (format!("{}/{folder}", acct.config.name), r)
                    });
                }
            }
            Backend::Maildir(root) => {
                let (acct, root, cancel) = (acct.clone(), root.clone(), cancel.clone());
                tasks.spawn(async move {
                    let r = maildir_task(&acct, &root, &cancel, opts.once).await;
                    (acct.config.name.clone(), r)
                });
            }
        }
    }
    let failed = wait_for(&mut tasks, &cancel).await;
    info!(counts = ?store.status_counts().unwrap_or_default(), "mailtriage stopped");
    if failed > 0 {
        bail!("{failed} watched folder(s) stopped with an error");
    }
    Ok(())
}

/// Waits for every task; once shutdown is requested, gives them a grace period, then aborts.
async fn wait_for(tasks: &mut JoinSet<(String, Result<()>)>, cancel: &CancellationToken) -> usize {
    let mut failed = 0;
    let mut deadline: Option<tokio::time::Instant> = None;
    loop {
        let next = match deadline {
            Some(d) => match tokio::time::timeout_at(d, tasks.join_next()).await {
                Ok(n) => n,
                Err(_) => {
                    warn!("tasks did not finish within {}s of shutdown; stopping them (their journal makes this safe)", SHUTDOWN_GRACE.as_secs());
                    tasks.abort_all();
                    while tasks.join_next().await.is_some() {}
                    return failed;
                }
            },
            None => tokio::select! {
                n = tasks.join_next() => n,
                _ = cancel.cancelled() => {
                    deadline = Some(tokio::time::Instant::now() + SHUTDOWN_GRACE);
                    continue;
                }
            },
        };
        match next {
            None => return failed,
            Some(Ok((name, Ok(())))) => info!(watch = %name, "stopped"),
            Some(Ok((name, Err(e)))) => {
                error!(watch = %name, "stopped with an error: {e:#}");
                failed += 1;
            }
            Some(Err(e)) if e.is_cancelled() => {}
            Some(Err(e)) => {
                error!("a task crashed: {e}");
                failed += 1;
            }
        }
    }
}

fn spawn_signal_handler(cancel: CancellationToken) -> Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => info!("SIGTERM: finishing the message in flight, then stopping"),
                _ = int.recv() => info!("SIGINT: finishing the message in flight, then stopping"),
            }
            cancel.cancel();
        });
    }
    #[cfg(not(unix))]
    {
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            cancel.cancel();
        });
    }
    Ok(())
}

fn log_report(acct: &str, folder: &str, r: &Report) {
    if r.decided + r.skipped + r.failed + r.filed > 0 {
        info!(
            account = acct,
            folder,
            decided = r.decided,
            filed = r.filed,
            left = r.left,
            failed = r.failed,
            skipped = r.skipped,
            "sync done: {} decided, {} filed, {} left in place, {} failed",
            r.decided,
            r.filed,
            r.left,
            r.failed
        );
    }
}

// ─── IMAP ──────────────────────────────────────────────────────────────────────────

/// Supervises one IMAP folder: connects, syncs, waits, and reconnects after failures.
async fn imap_task(
    acct: &Account,
    imap: &ImapConfig,
    folder: &str,
    tls: &Arc<tokio_rustls::rustls::ClientConfig>,
    cancel: &CancellationToken,
    once: bool,
) -> Result<()> {
    let name = acct.config.name.clone();
    let mut backoff = Backoff::new(&format!("{name}/{folder}"));
    loop {
        if cancel.is_cancelled() {
            return Ok(());
        }
        let secret = match imap.password.as_ref().map(|s| s.resolve()) {
            Some(Ok(s)) => s,
            Some(Err(e)) => {
                if once {
                    return Err(e.context("reading the IMAP password"));
                }
                let d = backoff.next(true);
                error!(account = %name, "cannot read the IMAP password: {e:#}; retrying in {}s", d.as_secs());
                if !pause(d, cancel).await {
                    return Ok(());
                }
                continue;
            }
            None => return Err(anyhow!("account {name}: no password or token configured")),
        };
        let connected = tokio::select! {
            r = imap_connect::connect(imap, tls, &secret) => r,
            _ = cancel.cancelled() => return Ok(()),
        };
        drop(secret);
        let session = match connected {
            Ok(s) => s,
            Err(e) => {
                if once {
                    return Err(anyhow!(e));
                }
                let d = backoff.next(e.is_auth());
                let advice = if e.is_auth() {
                    " (check the account's user and password)"
                } else {
                    ""
                };
                warn!(account = %name, folder, host = %imap.host, "{e}{advice}; retrying in {}s", d.as_secs());
                if !pause(d, cancel).await {
                    return Ok(());
                }
                continue;
            }
        };
        let started = Instant::now();
        info!(account = %name, folder, host = %imap.host, "connected");
        match imap_session(acct, session, folder, cancel, once).await {
            Ok(()) => return Ok(()),
            Err(e) => {
                if once {
                    return Err(e);
                }
                // A server that accepts and then drops us must not cause a busy loop:
                // only a session that lasted a while resets the backoff.
                if started.elapsed() > Duration::from_secs(60) {
                    backoff.reset();
                }
                let d = backoff.next(false);
                warn!(account = %name, folder, "connection lost: {e:#}; reconnecting in {}s", d.as_secs());
                if !pause(d, cancel).await {
                    return Ok(());
                }
            }
        }
    }
}

/// One session's life: select, sync, then wait and sync until shutdown or an error.
async fn imap_session(
    acct: &Account,
    session: imap_connect::ImapSession,
    folder: &str,
    cancel: &CancellationToken,
    once: bool,
) -> Result<()> {
    let mut f = ImapFolder::open(session, &acct.config.name, folder).await?;
    let report = sync_imap(&mut f, acct, cancel).await?;
    log_report(&acct.config.name, folder, &report);
    if once || cancel.is_cancelled() {
        f.logout().await;
        return Ok(());
    }
    let use_idle = acct.config.watch == WatchMode::Idle && f.caps().idle;
    if acct.config.watch == WatchMode::Idle && !f.caps().idle {
        info!(account = %acct.config.name, folder, "the server has no IDLE; polling every {}s", acct.config.poll_interval.as_secs());
    }
    loop {
        let woke = if use_idle {
            f.idle(acct.config.poll_interval.min(MAX_IDLE), cancel)
                .await?
        } else if pause(acct.config.poll_interval, cancel).await {
            f.noop().await?;
            Woke::Timeout
        } else {
            Woke::Cancelled
        };
        if woke == Woke::Cancelled || cancel.is_cancelled() {
            f.logout().await;
            return Ok(());
        }
        let report = sync_imap(&mut f, acct, cancel).await?;
        log_report(&acct.config.name, folder, &report);
    }
}

/// The first sync of a folder: where to start, honouring `backfill`.
async fn first_start(f: &mut ImapFolder, acct: &Account) -> Result<FolderState> {
    let sel = f.selected();
    let now = store::now();
    let st = match acct.config.backfill {
        Backfill::None => {
            let last = match sel.uidnext {
                0 => f.search_after(0).await?.last().copied().unwrap_or(0),
                n => n - 1,
            };
            info!(account = %acct.config.name, folder = f.folder(), "first start: only mail arriving from now on is triaged (set backfill to include older mail)");
            FolderState {
                uidvalidity: sel.uidvalidity,
                last_uid: last,
                baseline: now,
            }
        }
        Backfill::All => FolderState {
            uidvalidity: sel.uidvalidity,
            last_uid: 0,
            baseline: 0,
        },
        Backfill::Since(d) => {
            let since = now - i64::try_from(d.as_secs()).unwrap_or(0);
            let date = chrono::DateTime::from_timestamp(since, 0)
                .map(|t| t.date_naive())
                .unwrap_or_default();
            let first = f.search_since(date).await?.first().copied();
            let last = match first {
                Some(u) => u - 1,
                None => sel.uidnext.saturating_sub(1),
            };
            FolderState {
                uidvalidity: sel.uidvalidity,
                last_uid: last,
                baseline: since,
            }
        }
    };
    acct.store
        .set_folder_state(&acct.config.name, f.folder(), st)?;
    Ok(st)
}

/// Brings a folder up to date: recovery of unfinished filing, then every new message.
async fn sync_imap(
    f: &mut ImapFolder,
    acct: &Account,
    cancel: &CancellationToken,
) -> Result<Report> {
    let sel = f.selected();
    let name = acct.config.name.as_str();
    let folder = f.folder().to_string();
    let (mut st, rescan) = match acct.store.folder_state(name, &folder)? {
        None => (first_start(f, acct).await?, false),
        Some(st) if st.uidvalidity != sel.uidvalidity => {
            warn!(account = name, folder = %folder, old = st.uidvalidity, new = sel.uidvalidity,
                "UIDVALIDITY changed: rescanning the folder; mail already decided is recognised by Message-ID and never filed twice");
            (
                FolderState {
                    uidvalidity: sel.uidvalidity,
                    last_uid: 0,
                    baseline: st.baseline,
                },
                true,
            )
        }
        Some(st) => (st, false),
    };
    let mut report = pipeline::recover(f, acct, Some(sel.uidvalidity)).await?;
    // On a rescan, mail older than the first start (minus clock-skew slack) is not new.
    let not_before = rescan
        .then_some(st.baseline.saturating_sub(600))
        .filter(|&b| b > 0);
    loop {
        let uids = f.search_after(st.last_uid).await?;
        if uids.is_empty() {
            if rescan {
                acct.store.set_folder_state(name, &folder, st)?;
            }
            break;
        }
        for chunk in uids.chunks(BATCH) {
            let keys: Vec<MessageKey> = chunk
                .iter()
                .map(|&uid| MessageKey {
                    uid,
                    key: format!("{}:{uid}", sel.uidvalidity),
                })
                .collect();
            let next = FolderState {
                last_uid: chunk.iter().copied().max().unwrap_or(st.last_uid),
                ..st
            };
            let r = pipeline::process_new_mail(f, acct, &keys, Some(next), not_before).await?;
            report.add(r);
            st = next;
            if cancel.is_cancelled() {
                return Ok(report);
            }
        }
    }
    Ok(report)
}

// ─── Maildir ───────────────────────────────────────────────────────────────────────

/// Watches a Maildir inbox: filesystem events plus a periodic rescan.
async fn maildir_task(
    acct: &Account,
    root: &Path,
    cancel: &CancellationToken,
    once: bool,
) -> Result<()> {
    let name = acct.config.name.clone();
    let mut md = Maildir::open(&name, root)?;
    let st = match acct.store.folder_state(&name, "INBOX")? {
        Some(s) => s,
        None => {
            let now = store::now();
            let baseline = match acct.config.backfill {
                Backfill::None => now,
                Backfill::All => 0,
                Backfill::Since(d) => now - i64::try_from(d.as_secs()).unwrap_or(0),
            };
            let s = FolderState {
                uidvalidity: 0,
                last_uid: 0,
                baseline,
            };
            acct.store.set_folder_state(&name, "INBOX", s)?;
            s
        }
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(64);
    let _watcher = if once {
        None
    } else {
        Some(watch_dirs(&md.watch_dirs(), tx)?)
    };
    let mut seen = acct.store.decided_keys(&name, "INBOX")?;
    let mut backoff = Backoff::new(&name);
    info!(account = %name, maildir = %root.display(), "watching Maildir");
    loop {
        let pass = async {
            let mut report = pipeline::recover(&mut md, acct, None).await?;
            let fresh: Vec<MessageKey> = md
                .scan()?
                .into_iter()
                .filter(|e| e.mtime >= st.baseline && !seen.contains(&e.key.key))
                .map(|e| e.key)
                .collect();
            for chunk in fresh.chunks(BATCH) {
                let r = pipeline::process_new_mail(&mut md, acct, chunk, None, None).await?;
                report.add(r);
                seen.extend(chunk.iter().map(|k| k.key.clone()));
                if cancel.is_cancelled() {
                    break;
                }
            }
            Ok::<_, anyhow::Error>(report)
        };
        match pass.await {
            Ok(r) => {
                backoff.reset();
                log_report(&name, "INBOX", &r);
            }
            Err(e) if once => return Err(e),
            Err(e) => {
                let d = backoff.next(false);
                warn!(account = %name, "Maildir pass failed: {e:#}; retrying in {}s", d.as_secs());
                if !pause(d, cancel).await {
                    return Ok(());
                }
                continue;
            }
        }
        if once || cancel.is_cancelled() {
            return Ok(());
        }
        tokio::select! {
            Some(()) = rx.recv() => {
                // Let a burst of deliveries settle, then take them in one pass.
                tokio::time::sleep(Duration::from_millis(100)).await;
                while rx.try_recv().is_ok() {}
            }
            _ = tokio::time::sleep(acct.config.poll_interval) => {}
            _ = cancel.cancelled() => return Ok(()),
        }
    }
}

/// Filesystem events on the inbox's directories, as a wake-up signal.
fn watch_dirs(
    dirs: &[PathBuf],
    tx: tokio::sync::mpsc::Sender<()>,
) -> Result<notify::RecommendedWatcher> {
    use notify::Watcher;
    let mut w = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if res.is_ok() {
            let _ = tx.try_send(());
        }
    })
    .context("cannot watch the Maildir for new mail")?;
    for d in dirs {
        w.watch(d, notify::RecursiveMode::NonRecursive)
            .with_context(|| format!("cannot watch {}", d.display()))?;
    }
    Ok(w)
}

// ─── Demo ──────────────────────────────────────────────────────────────────────────

/// The bundled demo: the hottub profile over `var/demo-mail/`, seeded once from
/// `sample-mail/`. Available when run from a checkout of the repository.
pub fn demo_config(root: &Path) -> Result<Option<Config>> {
    let profile = root.join("profiles/hottub.yaml");
    let samples = root.join("sample-mail");
    if !profile.is_file() || !samples.is_dir() {
        return Ok(None);
    }
    let maildir = root.join("var/demo-mail");
    seed_demo(&samples, &maildir)?;
    Ok(Some(Config {
        file: None,
        state: root.join("var/demo-state.db"),
        metrics: None,
        log: LogConfig {
            format: LogFormat::Text,
            level: "info".into(),
        },
        smtp: None,
        max_scan_bytes: crate::config::DEFAULT_MAX_SCAN_BYTES,
        accounts: vec![AccountConfig {
            name: "demo".into(),
            profile,
            backend: Backend::Maildir(maildir),
            folders: vec!["INBOX".into()],
            watch: WatchMode::Idle,
            poll_interval: Duration::from_secs(30),
            backfill: Backfill::All,
            dry_run: false,
            addresses: vec!["info@hottubman.ca".into()],
        }],
    }))
}

/// Copies the sample messages into the demo Maildir's `new/`, once.
fn seed_demo(samples: &Path, maildir: &Path) -> Result<()> {
    let marker = maildir.join(".seeded");
    if marker.exists() {
        return Ok(());
    }
    let new = maildir.join("new");
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(maildir.join(sub))
            .with_context(|| format!("cannot create {}", maildir.join(sub).display()))?;
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(samples)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    files.sort();
    let stamp = store::now();
    for (i, f) in files.iter().enumerate() {
        let dest = new.join(format!("{stamp}.D{i:04}.mailtriage-demo"));
        std::fs::copy(f, &dest).with_context(|| format!("cannot seed {}", dest.display()))?;
    }
    std::fs::write(
        &marker,
        format!(
            "seeded {} messages from {}\n",
            files.len(),
            samples.display()
        ),
    )?;
    info!(count = files.len(), maildir = %maildir.display(), "demo Maildir seeded from sample-mail/");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        let mut b = Backoff::new("t");
        let d: Vec<f64> = (0..12).map(|_| b.next(false).as_secs_f64()).collect();
        assert!(d[0] >= 0.75 && d[0] <= 1.25, "{d:?}");
        assert!(d[3] >= 6.0 && d[3] <= 10.0, "{d:?}");
        assert!(d.iter().all(|&x| x <= 375.0), "{d:?}");
        b.reset();
        assert!(b.next(true).as_secs_f64() >= 45.0);
    }
}
