//! One IMAP folder's task: connect → select → recover → sync → wait (IDLE or poll) →
//! sync …, dropping the session on any error and reconnecting with backoff.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::backoff::Backoff;
use super::metrics as m;
use super::{log_report, pause, Shared};
use crate::config::{Backfill, ImapConfig, WatchMode};
use crate::mailbox::imap::connect::{self as imap_connect, ConnectError};
use crate::mailbox::imap::{ImapFolder, Woke};
use crate::mailbox::MailSource;
use crate::oauth::{OauthError, TokenSource};
use crate::pipeline::{self, Account, Report};
use crate::store::{self, FolderState};

mod backlog;

use backlog::{work_through, Backlog, Dialer, SECOND_SESSION_FROM};

/// IDLE is re-issued at least this often (servers drop IDLE after 30 minutes).
const MAX_IDLE: Duration = Duration::from_secs(10 * 60);

fn failure_kind(e: &ConnectError) -> &'static str {
    match e {
        ConnectError::Auth { .. } => "auth",
        ConnectError::Tls { .. } | ConnectError::StarttlsRefused { .. } => "tls",
        ConnectError::Unreachable { .. } | ConnectError::Timeout(_) => "network",
        ConnectError::Other(_) => "other",
    }
}

/// Supervises one IMAP folder until `cancel` fires (or, with `once`, one full sync).
pub async fn task(
    acct: Arc<Account>,
    imap: ImapConfig,
    folder: String,
    tls: Arc<tokio_rustls::rustls::ClientConfig>,
    tokens: Option<Arc<TokenSource>>,
    cancel: CancellationToken,
    shared: Arc<Shared>,
) -> Result<()> {
    let name = acct.config.name.clone();
    let watch = format!("{name}/{folder}");
    let mut backoff = Backoff::new(&watch);
    let mut sessions = 0u32;
    // Set when the server refused an access token and a new one was fetched: that one
    // gets a single immediate try; refused as well, it is the usual auth backoff.
    let mut token_retry = false;
    loop {
        if cancel.is_cancelled() {
            return Ok(());
        }
        let secret = if let Some(ts) = &tokens {
            let got = tokio::select! {
                r = ts.access_token() => r,
                _ = cancel.cancelled() => return Ok(()),
            };
            match got {
                Ok(t) => t,
                Err(e) => {
                    if !token_failed(e, &name, &folder, &mut backoff, &cancel, &shared).await? {
                        return Ok(());
                    }
                    continue;
                }
            }
        } else {
            let Some(password) = &imap.password else {
                return Err(anyhow!("account {name}: no password or token configured"));
            };
            // A password command may take a while (up to its 30 s limit): shutdown
            // does not wait for it (dropping the future kills it).
            let got = tokio::select! {
                r = password.resolve() => r,
                _ = cancel.cancelled() => return Ok(()),
            };
            match got {
                Ok(s) => s,
                Err(e) => {
                    if shared.once {
                        return Err(e.context("reading the IMAP password"));
                    }
                    let d = backoff.next(true);
                    error!(account = %name, "cannot read the IMAP password: {e:#}; retrying in {}s", d.as_secs());
                    if !pause(d, &cancel).await {
                        return Ok(());
                    }
                    continue;
                }
            }
        };
        let connected = tokio::select! {
            r = imap_connect::connect(&imap, &tls, &secret) => r,
            _ = cancel.cancelled() => return Ok(()),
        };
        let session = match connected {
            Ok(s) => {
                token_retry = false;
                s
            }
            Err(e) if e.is_auth() && !token_retry && tokens.is_some() => {
                // An access token can be revoked or expire early: fetch a new one and
                // try once more at once.
                token_retry = true;
                info!(account = %name, folder, "{e:#}; fetching a new access token and trying again");
                if let Some(ts) = &tokens {
                    let got = tokio::select! {
                        r = ts.refreshed(&secret) => r,
                        _ = cancel.cancelled() => return Ok(()),
                    };
                    if let Err(e) = got {
                        if !token_failed(e, &name, &folder, &mut backoff, &cancel, &shared).await? {
                            return Ok(());
                        }
                    }
                }
                continue;
            }
            Err(e) => {
                metrics::counter!(m::CONNECT_FAILURES, "account" => name.clone(), "kind" => failure_kind(&e)).increment(1);
                if shared.once {
                    return Err(anyhow!(e));
                }
                let d = backoff.next(e.is_auth());
                token_retry = false;
                warn!(account = %name, folder, host = %imap.host, "{}", connect_failed(&e, &name, tokens.is_some(), d));
                if !pause(d, &cancel).await {
                    return Ok(());
                }
                continue;
            }
        };
        if sessions > 0 {
            metrics::counter!(m::RECONNECTS, "account" => name.clone()).increment(1);
        }
        sessions += 1;
        let started = Instant::now();
        info!(account = %name, folder, host = %imap.host, "connected");
        let work_before = acct.progress();
        let mut progressed = false;
        let dialer = Dialer {
            imap: imap.clone(),
            tls: Arc::clone(&tls),
            secret: secret.clone(),
            tokens: tokens.clone(),
        };
        let outcome = session_loop(
            &acct,
            session,
            &folder,
            &dialer,
            &cancel,
            &shared,
            &mut progressed,
        )
        .await;
        progressed |= acct.progress() > work_before;
        match outcome {
            Ok(()) => return Ok(()),
            Err(e) => {
                if shared.once {
                    return Err(e);
                }
                // A server that accepts and then drops us must not cause a busy loop: only
                // a session that got work done (or lasted a while) resets the backoff.
                if progressed || started.elapsed() > Duration::from_secs(60) {
                    backoff.reset();
                }
                let d = backoff.next_after_session();
                warn!(account = %name, folder, "connection lost: {e:#}; reconnecting in {}s", d.as_secs());
                if !pause(d, &cancel).await {
                    return Ok(());
                }
            }
        }
    }
}

/// The log line for a failed connection: the error with its chain, advice for a refused
/// login, and when the next attempt is.
fn connect_failed(e: &ConnectError, account: &str, oauth: bool, retry_in: Duration) -> String {
    let advice = match (e.is_auth(), oauth) {
        (true, false) => " (check the account's user and password)".to_string(),
        (true, true) => format!(" (a fresh access token was refused too: check the account's user, and that the consent covered IMAP; re-run `mailtriage auth {account}` if in doubt)"),
        _ => String::new(),
    };
    format!("{e:#}{advice}; retrying in {}s", retry_in.as_secs())
}

/// No access token could be had: counted, logged (an error when only the user can fix
/// it, such as a revoked refresh token), then the backoff. False when shut down while
/// waiting; with `--once`, the error itself.
async fn token_failed(
    e: OauthError,
    name: &str,
    folder: &str,
    backoff: &mut Backoff,
    cancel: &CancellationToken,
    shared: &Shared,
) -> Result<bool> {
    metrics::counter!(m::CONNECT_FAILURES, "account" => name.to_string(), "kind" => "oauth")
        .increment(1);
    if shared.once {
        return Err(anyhow!(e));
    }
    let d = backoff.next(e.needs_user());
    if e.needs_user() {
        error!(account = %name, folder, "{e:#}; retrying in {}s", d.as_secs());
    } else {
        warn!(account = %name, folder, "{e:#}; retrying in {}s", d.as_secs());
    }
    Ok(pause(d, cancel).await)
}

/// Decrements the IDLE gauge when dropped (also on errors).
struct IdleGauge;

impl IdleGauge {
    fn enter() -> Self {
        metrics::gauge!(m::IDLE_SESSIONS).increment(1.0);
        IdleGauge
    }
}

impl Drop for IdleGauge {
    fn drop(&mut self) {
        metrics::gauge!(m::IDLE_SESSIONS).decrement(1.0);
    }
}

/// How long a shutdown waits for the command in flight before abandoning it (safe: the
/// plan is journalled before any move).
const ABANDON_AFTER: Duration = Duration::from_secs(5);

/// Runs `fut` to completion unless shutdown is requested; then gives it a short grace
/// and abandons it. `None` means abandoned.
async fn unless_stopped<T>(
    fut: impl std::future::Future<Output = Result<T>>,
    cancel: &CancellationToken,
) -> Result<Option<T>> {
    tokio::pin!(fut);
    tokio::select! {
        r = &mut fut => r.map(Some),
        _ = cancel.cancelled() => match tokio::time::timeout(ABANDON_AFTER, &mut fut).await {
            Ok(r) => r.map(Some),
            Err(_) => Ok(None),
        },
    }
}

/// One session's life: select, sync, then wait and sync until shutdown or an error.
async fn session_loop(
    acct: &Arc<Account>,
    session: imap_connect::ImapSession,
    folder: &str,
    dialer: &Dialer,
    cancel: &CancellationToken,
    shared: &Shared,
    progressed: &mut bool,
) -> Result<()> {
    let timeout = match &acct.config.backend {
        crate::config::Backend::Imap(c) => c.timeout,
        crate::config::Backend::Maildir(_) => Duration::from_secs(60),
    };
    let Some(mut f) = unless_stopped(
        ImapFolder::open(session, &acct.config.name, folder, timeout),
        cancel,
    )
    .await?
    else {
        return Ok(());
    };
    let Some(report) = unless_stopped(sync(&mut f, acct, dialer, cancel), cancel).await? else {
        return Ok(());
    };
    *progressed = true;
    log_report(shared, &acct.config.name, folder, &report);
    shared.ready.done(&format!("{}/{folder}", acct.config.name));
    if shared.once || cancel.is_cancelled() {
        f.logout().await;
        return Ok(());
    }
    let use_idle = acct.config.watch == WatchMode::Idle && f.caps().idle;
    if acct.config.watch == WatchMode::Idle && !f.caps().idle {
        info!(account = %acct.config.name, folder, "the server has no IDLE; polling every {}s", acct.config.poll_interval.as_secs());
    }
    loop {
        let woke = if use_idle {
            let _gauge = IdleGauge::enter();
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
        if woke == Woke::Timeout {
            f.look_anyway();
        }
        let Some(report) = unless_stopped(sync(&mut f, acct, dialer, cancel), cancel).await? else {
            return Ok(());
        };
        log_report(shared, &acct.config.name, folder, &report);
    }
}

/// A background triage's result; a panic in the core is an error, not a crash.
fn joined(
    r: Result<Result<pipeline::Planned>, tokio::task::JoinError>,
) -> Result<pipeline::Planned> {
    r.map_err(|e| anyhow!("triage of a batch failed: {e}"))?
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
async fn sync(
    f: &mut ImapFolder,
    acct: &Arc<Account>,
    dialer: &Dialer,
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
        // One FETCH finds the new mail and its sizes; with nothing announced since the
        // last look and UIDNEXT saying nothing is new, not even that.
        let uids = f.new_mail(st.last_uid, not_before.is_some()).await?;
        if uids.is_empty() {
            if rescan {
                acct.store.set_folder_state(name, &folder, st)?;
            }
            break;
        }
        let mut backlog = Backlog::new(name, &folder, acct);
        if uids.len() >= SECOND_SESSION_FROM && !acct.dry_run {
            backlog.dial(dialer, f);
        }
        let worked = work_through(f, acct, cancel, &mut backlog, &uids, &mut st, not_before).await;
        // A batch being triaged is recorded before the session goes on or gives up, so
        // recovery in the next session never races it.
        backlog.settle().await;
        report.add(worked?);
        if backlog.filer_lost {
            report.add(pipeline::recover(f, acct, Some(sel.uidvalidity)).await?);
        }
        if cancel.is_cancelled() {
            return Ok(report);
        }
        // The server announces mail that arrives while we work (EXISTS): without such
        // news the folder holds nothing newer, and the sync ends without asking again.
        if !f.news_of_mail() {
            break;
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_connection_is_logged_with_its_whole_chain_and_advice() {
        let chained = || {
            ConnectError::Other(
                anyhow!("connection reset by peer").context("reading the CAPABILITY answer"),
            )
        };
        let refused = || ConnectError::Auth {
            user: "info".into(),
            reason: "AUTHENTICATIONFAILED".into(),
        };
        let cases = [
            (
                chained(),
                false,
                "reading the CAPABILITY answer: connection reset by peer; retrying in 8s",
            ),
            (
                refused(),
                false,
                "login refused for info: AUTHENTICATIONFAILED (check the account's user and password); retrying in 8s",
            ),
            (
                refused(),
                true,
                "login refused for info: AUTHENTICATIONFAILED (a fresh access token was refused too: check the account's user, and that the consent covered IMAP; re-run `mailtriage auth shop` if in doubt); retrying in 8s",
            ),
            (
                ConnectError::Timeout("waiting for the greeting"),
                true,
                "timed out while waiting for the greeting; retrying in 8s",
            ),
        ];
        for (e, oauth, want) in cases {
            assert_eq!(
                connect_failed(&e, "shop", oauth, Duration::from_secs(8)),
                want
            );
        }
    }
}
