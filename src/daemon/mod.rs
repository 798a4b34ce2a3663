//! The daemon: a supervisor with one task per watched folder, each a loop that races
//! shutdown against its work, drops its session on any error and reconnects with
//! jittered exponential backoff.
//!
//! ```text
//! run ── supervisor loop ─┬─ SIGTERM/SIGINT → cancel every task, wait, exit 0
//!                         ├─ SIGHUP / file change (debounced) → reload: parse → validate →
//!                         │     compile → swap; accounts added, removed or changed apply live
//!                         ├─ watchdog tick → WATCHDOG=1, STATUS=…
//!                         └─ task ended → logged with its name (an error with its chain,
//!                               a panic with its message) and counted
//!     ├─ imap task per (account, folder): connect → select → recover → sync → IDLE/poll → sync …
//!     ├─ maildir task per account:        recover → scan → sync → fs event/poll → scan …
//!     ├─ the outbox (with `smtp:`):       send what is due → sleep or wake …
//!     └─ the metrics endpoint (with `metrics:`)
//! ```
//!
//! Every task is in the supervisor's set ([`tasks::Tasks`]). Shutdown finishes the batch
//! in flight (every batch is journalled before the server is touched, so even an abort
//! loses nothing), logs out, and exits 0: each task is awaited until a deadline, past which
//! the rest are aborted and named. A reload never changes the rules under a message:
//! triage takes one profile snapshot per batch.

mod backoff;
mod imap;
mod maildir;
pub mod metrics;
mod reload;
pub mod systemd;
mod tasks;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _, Result};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn, Instrument as _};

use crate::config::{AccountConfig, Backend, Backfill, Config, LogConfig, LogFormat, WatchMode};
use crate::mailbox::imap::connect as imap_connect;
use crate::pipeline::{Account, Report};
use crate::profile::{LiveProfile, Profile};
use crate::store::{self, Store};
use tasks::{Ended, Outcome, Owner, Tasks};

/// Messages fetched and decided per batch: bounds memory and the work lost to an
/// interruption.
const BATCH: usize = 500;
/// Decided messages of a backlog waiting to be filed, at most: then all are filed.
const FILE_BATCH: usize = 5000;
/// Messages for one destination filed together during a backlog. A MOVE costs the server
/// per command (Dovecot: ~10 ms with 10,000 messages in the source) and per message
/// (~0.06 ms): groups this large keep the per-command share small, and filing them while
/// the backlog is still being read leaves little to file at the end.
const FILE_GROUP: usize = 500;
/// IMAP sessions an account may open beyond one per watched folder (see
/// `imap::backlog::Mover`): with Gmail's limit of 8 watched folders, 9 of its 15 connections.
const SPARE_SESSIONS: usize = 1;
/// How long shutdown waits for tasks to finish their batch.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);
/// Quiet time after the last file event before a reload.
const RELOAD_DEBOUNCE: Duration = Duration::from_millis(300);
/// systemd is told READY at the latest this long after start, even if an account is still
/// trying to connect (its STATUS says which).
const READY_DEADLINE: Duration = Duration::from_secs(60);

/// How `run` was asked to behave.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Process what is there and exit.
    pub once: bool,
    /// Shadow mode for every account.
    pub dry_run: bool,
}

/// Crates whose debug/trace output would contain credentials or mail content.
pub const WIRE_LEVEL_CRATES: &[&str] = &[
    "async_imap",
    "imap_proto",
    "rustls",
    "tokio_rustls",
    "lettre",
    "hyper",
    "reqwest",
    "oauth2",
];

/// Crates that log every file event at debug level: capped like the wire-level ones so
/// that `MAILTRIAGE_LOG=debug` stays readable.
const NOISY_CRATES: &[&str] = &["notify", "mio", "tokio_util"];

/// Is `target` in one of these crates (the crate itself or one of its modules)?
fn in_crates(target: &str, crates: &[&str]) -> bool {
    crates.iter().any(|c| {
        target
            .strip_prefix(c)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    })
}

/// Sets up logging as configured (human text or JSON lines).
pub fn init_logging(log: &LogConfig) {
    use std::io::IsTerminal;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let filter = tracing_subscriber::EnvFilter::try_from_env("MAILTRIAGE_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&log.level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Protocol libraries log raw wire data (LOGIN and AUTHENTICATE lines, message bodies)
    // at debug/trace: never let that through, whatever level was asked for. A filter of
    // its own, so no directive of MAILTRIAGE_LOG (however specific) can outrank it.
    // The hint says the cap lets every level through somewhere, so the layer's overall
    // level is the filter's: with it, the `log` records of those crates (async-imap's
    // per-response trace lines) are dropped at `log::max_level()` when nobody asked for
    // debug output, instead of being built and converted one by one.
    let cap = tracing_subscriber::filter::filter_fn(|meta| {
        *meta.level() <= tracing::Level::INFO
            || !(in_crates(meta.target(), WIRE_LEVEL_CRATES)
                || in_crates(meta.target(), NOISY_CRATES))
    })
    .with_max_level_hint(tracing::level_filters::LevelFilter::TRACE);
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let registry = tracing_subscriber::registry();
    let _ = match log.format {
        LogFormat::Json => registry
            .with(
                layer
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_filter(filter)
                    .with_filter(cap),
            )
            .try_init(),
        LogFormat::Text => registry
            .with(
                layer
                    .with_target(false)
                    .with_filter(filter)
                    .with_filter(cap),
            )
            .try_init(),
    };
}

/// Sleeps unless cancelled; false when cancelled.
async fn pause(d: Duration, cancel: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => true,
        _ = cancel.cancelled() => false,
    }
}

/// Which watches have completed their first sync (for systemd's READY).
#[derive(Default)]
pub struct Readiness {
    pending: Mutex<BTreeSet<String>>,
    /// Wakes the supervisor when a watch completes its first sync.
    changed: tokio::sync::Notify,
}

impl Readiness {
    fn expect(&self, watch: &str) {
        if let Ok(mut p) = self.pending.lock() {
            p.insert(watch.to_string());
        }
    }

    /// Marks a watch as synced once.
    pub fn done(&self, watch: &str) {
        if let Ok(mut p) = self.pending.lock() {
            if p.remove(watch) {
                self.changed.notify_one();
            }
        }
    }

    fn waiting(&self) -> Vec<String> {
        self.pending
            .lock()
            .map(|p| p.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// Running totals for systemd's STATUS line.
#[derive(Default)]
pub struct Counters {
    pub decided: AtomicU64,
    pub filed: AtomicU64,
    pub failed: AtomicU64,
}

/// What every task shares with the supervisor.
pub struct Shared {
    pub once: bool,
    pub ready: Readiness,
    pub counters: Counters,
    /// Refusals to file, reported once per interval and summed up by `--once`.
    pub refusals: Arc<crate::pipeline::refusals::Refusals>,
}

fn log_report(shared: &Shared, acct: &str, folder: &str, r: &Report) {
    shared
        .counters
        .decided
        .fetch_add(r.decided as u64, Ordering::Relaxed);
    shared
        .counters
        .filed
        .fetch_add(r.filed as u64, Ordering::Relaxed);
    shared
        .counters
        .failed
        .fetch_add(r.failed as u64, Ordering::Relaxed);
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

/// A running account: its configuration, generation and cancellation.
struct Running {
    config: AccountConfig,
    generation: u64,
    cancel: CancellationToken,
}

/// The supervisor: owns the configuration, profiles and tasks; applies reloads.
struct Supervisor {
    cfg: Config,
    opts: RunOptions,
    store: Arc<Store>,
    profiles: HashMap<PathBuf, Arc<LiveProfile>>,
    running: HashMap<String, Running>,
    tasks: Tasks,
    root: CancellationToken,
    shared: Arc<Shared>,
    generation: u64,
    /// Watched folders of current accounts that stopped with an error.
    failed: usize,
    /// Services (the outbox, the metrics endpoint) that stopped with an error.
    failed_services: Vec<String>,
    /// Sending mail, when `smtp:` is configured.
    mail: Option<Arc<crate::outbox::MailSettings>>,
}

impl Supervisor {
    /// Starts every task of one account.
    fn start_account(&mut self, a: &AccountConfig) -> Result<()> {
        let profile = match self.profiles.get(&a.profile) {
            Some(p) => p.clone(),
            None => {
                let p = Profile::load(&a.profile)
                    .map_err(|e| anyhow!("invalid profile for account {}\n{e}", a.name))?;
                info!(profile = %a.profile.display(), version = %p.version, business = %p.business.name, "profile loaded");
                let live = Arc::new(LiveProfile::new(p));
                self.profiles.insert(a.profile.clone(), live.clone());
                live
            }
        };
        self.generation += 1;
        let generation = self.generation;
        let cancel = self.root.child_token();
        let acct = Arc::new(Account {
            config: a.clone(),
            profile,
            store: self.store.clone(),
            max_scan_bytes: self.cfg.max_scan_bytes,
            dry_run: self.opts.dry_run || a.dry_run,
            progress: Default::default(),
            calendars: Default::default(),
            mail: self.mail.clone(),
            spare_sessions: Arc::new(tokio::sync::Semaphore::new(SPARE_SESSIONS)),
            refusals: self.shared.refusals.clone(),
        });
        if let Some(ms) = &self.mail {
            ms.set_account(&a.name, Some(acct.profile.clone()));
        }
        match &a.backend {
            Backend::Imap(imap_cfg) => {
                let tls = imap_connect::tls_config(imap_cfg.ca_file.as_deref())
                    .with_context(|| format!("account {}", a.name))?;
                // One token source per account: its folders share access tokens.
                let tokens = crate::oauth::TokenSource::for_account(&self.cfg, a)
                    .with_context(|| format!("account {}", a.name))?;
                for folder in &a.folders {
                    let watch = format!("{}/{folder}", a.name);
                    self.shared.ready.expect(&watch);
                    let span = tracing::info_span!("watch", account = %a.name, folder = %folder);
                    let fut = imap::task(
                        acct.clone(),
                        (**imap_cfg).clone(),
                        folder.clone(),
                        tls.clone(),
                        tokens.clone(),
                        cancel.clone(),
                        self.shared.clone(),
                    );
                    let owner = Owner::Account {
                        name: a.name.clone(),
                        generation,
                    };
                    self.tasks.spawn(watch, owner, fut.instrument(span));
                }
            }
            Backend::Maildir(root) => {
                self.shared.ready.expect(&a.name);
                let span = tracing::info_span!("watch", account = %a.name, folder = "INBOX");
                let fut = maildir::task(
                    acct.clone(),
                    root.clone(),
                    cancel.clone(),
                    self.shared.clone(),
                );
                let owner = Owner::Account {
                    name: a.name.clone(),
                    generation,
                };
                self.tasks
                    .spawn(a.name.clone(), owner, fut.instrument(span));
            }
        }
        self.running.insert(
            a.name.clone(),
            Running {
                config: a.clone(),
                generation,
                cancel,
            },
        );
        ::metrics::gauge!(metrics::ACCOUNTS).set(self.running.len() as f64);
        Ok(())
    }

    /// Stops an account's tasks (they finish their batch and log out).
    fn stop_account(&mut self, name: &str) {
        if let Some(ms) = &self.mail {
            ms.set_account(name, None);
        }
        if let Some(r) = self.running.remove(name) {
            r.cancel.cancel();
            self.shared.ready.done(name);
            for f in &r.config.folders {
                self.shared.ready.done(&format!("{name}/{f}"));
            }
        }
        ::metrics::gauge!(metrics::ACCOUNTS).set(self.running.len() as f64);
    }

    /// Every file whose change triggers a reload.
    fn watched_files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = self
            .cfg
            .accounts
            .iter()
            .map(|a| a.profile.clone())
            .collect();
        if let Some(f) = &self.cfg.file {
            files.push(f.clone());
        }
        files.sort();
        files.dedup();
        files
    }

    /// Re-reads the configuration and profiles; anything invalid keeps what was in force.
    fn reload(&mut self, why: &str) -> bool {
        systemd::notify("RELOADING=1");
        let ok = self.reload_inner(why);
        ::metrics::counter!(metrics::RELOADS, "result" => if ok { "success" } else { "failure" })
            .increment(1);
        systemd::notify("READY=1");
        ok
    }

    fn reload_inner(&mut self, why: &str) -> bool {
        info!("reloading configuration ({why})");
        let mut ok = true;
        let new_cfg = match &self.cfg.file {
            None => self.cfg.clone(),
            Some(path) => match Config::load(path) {
                Ok(c) => c,
                Err(e) => {
                    for d in &e.diagnostics {
                        error!(file = %d.file, line = d.loc.line, column = d.loc.column, "{}", d.to_string().trim_end());
                    }
                    error!("the configuration was rejected; the previous one stays in force");
                    return false;
                }
            },
        };
        if new_cfg.state != self.cfg.state
            || new_cfg.metrics != self.cfg.metrics
            || new_cfg.log != self.cfg.log
            || new_cfg.smtp != self.cfg.smtp
        {
            warn!(
                "changes to state, metrics, log or smtp settings take effect at the next restart"
            );
        }
        // Profiles: each file is accepted or rejected whole.
        let paths: BTreeSet<PathBuf> = new_cfg.accounts.iter().map(|a| a.profile.clone()).collect();
        let mut broken: BTreeSet<PathBuf> = BTreeSet::new();
        for path in &paths {
            match Profile::load(path) {
                Ok(p) => match self.profiles.get(path) {
                    Some(live) if live.snapshot().version == p.version => {}
                    Some(live) => {
                        info!(profile = %path.display(), old = %live.snapshot().version, new = %p.version, "profile reloaded; the next message uses it");
                        live.replace(p);
                    }
                    None => {
                        self.profiles
                            .insert(path.clone(), Arc::new(LiveProfile::new(p)));
                    }
                },
                Err(e) => {
                    ok = false;
                    broken.insert(path.clone());
                    for d in &e.diagnostics {
                        error!(file = %d.file, line = d.loc.line, column = d.loc.column, "{}", d.to_string().trim_end());
                    }
                    error!(profile = %path.display(), "the profile was rejected; the previous version stays in force");
                }
            }
        }
        // Accounts: removed ones stop, new ones start, changed ones restart; others untouched.
        let old: Vec<String> = self.running.keys().cloned().collect();
        for name in old {
            let keep = new_cfg.accounts.iter().find(|a| a.name == name);
            match keep {
                None => {
                    info!(account = %name, "account removed from the configuration; stopping it");
                    self.stop_account(&name);
                }
                Some(a) if self.running.get(&name).is_some_and(|r| &r.config != a) => {
                    if broken.contains(&a.profile) && !self.profiles.contains_key(&a.profile) {
                        continue;
                    }
                    info!(account = %name, "account settings changed; reconnecting it");
                    self.stop_account(&name);
                    if let Err(e) = self.start_account(a) {
                        ok = false;
                        error!(account = %name, "cannot start the changed account: {e:#}");
                    }
                }
                Some(_) => {}
            }
        }
        for a in &new_cfg.accounts {
            if !self.running.contains_key(&a.name) {
                if !self.profiles.contains_key(&a.profile) {
                    ok = false;
                    error!(account = %a.name, "not started: its profile is invalid");
                    continue;
                }
                info!(account = %a.name, "account added to the configuration; starting it");
                if let Err(e) = self.start_account(a) {
                    ok = false;
                    error!(account = %a.name, "cannot start the new account: {e:#}");
                }
            }
        }
        self.profiles.retain(|p, _| paths.contains(p));
        let (state, metrics_addr, log, smtp) = (
            self.cfg.state.clone(),
            self.cfg.metrics,
            self.cfg.log.clone(),
            self.cfg.smtp.clone(),
        );
        self.cfg = Config {
            state,
            metrics: metrics_addr,
            log,
            smtp,
            ..new_cfg
        };
        if ok {
            info!("configuration reloaded");
        }
        ok
    }

    /// Logs a task's end and counts it when it failed: a watch of a current account (a
    /// stopped or restarted account's old tasks no longer count), or a service.
    fn task_ended(
        &mut self,
        Ended {
            name,
            owner,
            outcome,
        }: Ended,
    ) {
        // A service ends only at shutdown; ending before, it is missed until a restart.
        let then = match (&owner, self.root.is_cancelled()) {
            (Owner::Daemon, false) => "; it stays stopped until mailtriage is restarted",
            _ => "",
        };
        let failed = match outcome {
            Outcome::Stopped => {
                info!(task = %name, "stopped{then}");
                false
            }
            Outcome::Failed(e) => {
                error!(task = %name, "stopped with an error: {e:#}{then}");
                true
            }
            Outcome::Panicked(m) => {
                error!(task = %name, "crashed: {m}{then}");
                true
            }
            Outcome::Aborted => {
                warn!(task = %name, "aborted{then}");
                false
            }
        };
        if !failed {
            return;
        }
        match owner {
            Owner::Account {
                name: account,
                generation,
            } => {
                if self
                    .running
                    .get(&account)
                    .is_some_and(|r| r.generation == generation)
                {
                    self.failed += 1;
                }
            }
            Owner::Daemon => self.failed_services.push(name),
        }
    }

    fn status_line(&self) -> String {
        let c = &self.shared.counters;
        let waiting = self.shared.ready.waiting();
        let mut s = format!(
            "{} account(s); {} messages triaged, {} filed, {} failed",
            self.running.len(),
            c.decided.load(Ordering::Relaxed),
            c.filed.load(Ordering::Relaxed),
            c.failed.load(Ordering::Relaxed)
        );
        if !waiting.is_empty() {
            s.push_str(&format!("; not yet synced: {}", waiting.join(", ")));
        }
        s
    }
}

/// Runs the daemon until shutdown (or, with `once`, until everything present is handled).
pub async fn run(cfg: Config, opts: RunOptions) -> Result<()> {
    let store = Arc::new(Store::open(&cfg.state)?);
    info!(state = %cfg.state.display(), accounts = cfg.accounts.len(), once = opts.once, dry_run = opts.dry_run, "mailtriage starting");
    let root = CancellationToken::new();
    let endpoint = match (cfg.metrics, opts.once) {
        (Some(addr), false) => Some(metrics::Endpoint::bind(addr).await?),
        _ => None,
    };
    // The outbox: alerts, acknowledgements and digests over SMTP, when configured.
    let mail = match &cfg.smtp {
        Some(smtp) => {
            let mut ms = crate::outbox::MailSettings::new(&smtp.from).context("smtp.from")?;
            // XOAUTH2: the named account's OAuth2 token (validated with the config).
            if let Some(name) = &smtp.oauth_account {
                let acct = cfg
                    .account(name)
                    .ok_or_else(|| anyhow!("smtp.oauth_account: no account named {name}"))?;
                ms.tokens = crate::oauth::TokenSource::for_account(&cfg, acct)?;
            }
            Some(Arc::new(ms))
        }
        None => None,
    };
    let mut sup = Supervisor {
        mail: mail.clone(),
        cfg: cfg.clone(),
        opts,
        store: store.clone(),
        profiles: HashMap::new(),
        running: HashMap::new(),
        tasks: Tasks::default(),
        root: root.clone(),
        shared: Arc::new(Shared {
            once: opts.once,
            ready: Readiness::default(),
            counters: Counters::default(),
            refusals: Default::default(),
        }),
        generation: 0,
        failed: 0,
        failed_services: Vec::new(),
    };
    if let Some(endpoint) = endpoint {
        let serving = endpoint.serve(root.child_token());
        sup.tasks
            .spawn("metrics endpoint".into(), Owner::Daemon, serving);
    }
    if let (Some(smtp), Some(ms), false) = (&cfg.smtp, &mail, opts.once) {
        let sending =
            crate::outbox::run(store.clone(), smtp.clone(), ms.clone(), root.child_token());
        sup.tasks.spawn("outbox".into(), Owner::Daemon, async move {
            sending.await;
            Ok(())
        });
    }
    for a in &cfg.accounts {
        sup.start_account(a)?;
    }
    let result = supervise(&mut sup).await;
    match (&cfg.smtp, &mail) {
        (Some(smtp), Some(ms)) if opts.once && result.is_ok() => {
            // --once: one attempt at everything queued; what fails stays for the next run.
            match crate::outbox::drain_once(&store, smtp, ms).await {
                Ok(p) => info!(
                    sent = p.sent,
                    failed = p.failed,
                    deferred = p.deferred,
                    "outbox drained"
                ),
                Err(e) => warn!("cannot send queued mail: {e:#}"),
            }
        }
        _ => {}
    }
    // This run's work, from the counters (counting the whole audit log would scan it).
    let c = &sup.shared.counters;
    info!(
        decided = c.decided.load(Ordering::Relaxed),
        filed = c.filed.load(Ordering::Relaxed),
        failed = c.failed.load(Ordering::Relaxed),
        "mailtriage stopped"
    );
    result?;
    if sup.failed > 0 {
        bail!("{} watched folder(s) stopped with an error", sup.failed);
    }
    if !sup.failed_services.is_empty() {
        bail!(
            "{} stopped with an error",
            sup.failed_services.join(" and ")
        );
    }
    // --once: mail decided but not filed is a failure the caller must hear of, with why.
    let refused = sup.shared.refusals.summaries();
    if sup.opts.once && !refused.is_empty() {
        let lines: Vec<String> = refused.iter().map(|s| s.explain()).collect();
        bail!("{}", lines.join("\n"));
    }
    Ok(())
}

/// The supervisor's loop: signals, reloads, readiness, watchdog, task ends.
async fn supervise(sup: &mut Supervisor) -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    let mut hup = signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?;
    let (tx, mut changes) = tokio::sync::mpsc::channel::<()>(64);
    let mut watch = reload::Rewatch::default();
    let mut rewatch = |files: &[PathBuf], force: bool| {
        let made = watch.follow(files, std::time::Instant::now(), force, |files| {
            reload::FileWatch::new(files, tx.clone())
        });
        reload::log(&made);
    };
    if !sup.opts.once {
        rewatch(&sup.watched_files(), false);
    }
    let tick_every = systemd::watchdog_interval().unwrap_or(Duration::from_secs(30));
    let mut tick = tokio::time::interval(tick_every.min(Duration::from_secs(30)));
    let ready_deadline = tokio::time::sleep(READY_DEADLINE);
    tokio::pin!(ready_deadline);
    let mut ready_sent = false;
    loop {
        if !ready_sent && !sup.opts.once && sup.shared.ready.waiting().is_empty() {
            systemd::notify(&format!("READY=1\nSTATUS={}", sup.status_line()));
            info!("every account has synced; ready");
            ready_sent = true;
        }
        if sup.opts.once && sup.tasks.is_empty() {
            return Ok(());
        }
        tokio::select! {
            _ = term.recv() => { info!("SIGTERM: finishing the batch in flight, then stopping"); break; }
            _ = int.recv() => { info!("SIGINT: finishing the batch in flight, then stopping"); break; }
            _ = hup.recv() => {
                sup.reload("SIGHUP");
                // The owner may have fixed what kept the files from being watched.
                rewatch(&sup.watched_files(), true);
            }
            _ = sup.shared.ready.changed.notified(), if !ready_sent => {}
            Some(()) = changes.recv() => {
                // Debounce: wait for a moment of quiet (editors write in several steps).
                loop {
                    tokio::select! {
                        Some(()) = changes.recv() => continue,
                        _ = tokio::time::sleep(RELOAD_DEBOUNCE) => break,
                    }
                }
                sup.reload("a watched file changed");
            }
            Some(ended) = sup.tasks.next() => sup.task_ended(ended),
            _ = tick.tick() => {
                systemd::notify(&format!("WATCHDOG=1\nSTATUS={}", sup.status_line()));
            }
            _ = &mut ready_deadline, if !ready_sent && !sup.opts.once => {
                warn!(waiting = ?sup.shared.ready.waiting(), "not every account has synced after {}s; reporting ready anyway", READY_DEADLINE.as_secs());
                systemd::notify(&format!("READY=1\nSTATUS={}", sup.status_line()));
                ready_sent = true;
            }
        }
        // The set of watched files follows the configuration (a failed watch is retried).
        if !sup.opts.once {
            rewatch(&sup.watched_files(), false);
        }
    }
    drop(watch);
    systemd::notify("STOPPING=1");
    sup.root.cancel();
    let mut tasks = std::mem::take(&mut sup.tasks);
    let started = tasks.running().len();
    let aborted = tasks
        .shutdown(SHUTDOWN_GRACE, |ended| sup.task_ended(ended))
        .await;
    if aborted.is_empty() {
        info!("all {started} task(s) stopped");
    } else {
        warn!(
            "{} of {started} task(s) stopped; aborted after {}s: {}",
            started - aborted.len(),
            SHUTDOWN_GRACE.as_secs(),
            aborted.join(", ")
        );
    }
    Ok(())
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
            trusted_authserv_ids: Vec::new(),
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
    let listed = std::fs::read_dir(samples)
        .and_then(|entries| {
            entries
                .map(|e| e.map(|e| e.path()))
                .collect::<Result<Vec<_>, _>>()
        })
        .with_context(|| format!("cannot list {}", samples.display()))?;
    let mut files: Vec<PathBuf> = listed
        .into_iter()
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
    fn crate_targets_match_the_crate_and_its_modules_only() {
        for (target, capped) in [
            ("async_imap", true),
            ("async_imap::imap_stream", true),
            ("imap_proto::parser::core", true),
            ("async_imap_extra", false),
            ("mailtriage::daemon", false),
            ("notify::inotify", true),
        ] {
            let got = in_crates(target, WIRE_LEVEL_CRATES) || in_crates(target, NOISY_CRATES);
            assert_eq!(got, capped, "{target}");
        }
    }
}
