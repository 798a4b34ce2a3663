//! A backlog on one IMAP folder: batches fetched ahead of the parse and triage threads,
//! decided messages shelved by destination and filed between fetches or on a second
//! session, so the server, the parser and the triage core stay busy together.

use std::sync::Arc;

use anyhow::{anyhow, Context as _, Result};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn, Instrument as _};

use super::joined;
use crate::config::{ImapConfig, SecretString};
use crate::daemon::{BATCH, FILE_BATCH, FILE_GROUP};
use crate::mailbox::imap::connect as imap_connect;
use crate::mailbox::imap::ImapFolder;
use crate::mailbox::MessageKey;
use crate::oauth::TokenSource;
use crate::pipeline::{self, Account, Report};
use crate::store::FolderState;

/// Fetches, triages and files `uids`, keeping the server, the parse thread and the triage
/// thread busy: batches are fetched ahead while the one before is parsed and the one
/// before that triaged, and decided messages are filed a destination at a time once
/// [`FILE_GROUP`] messages wait for it (a move costs the server per command as well as
/// per message), everything once [`FILE_BATCH`] do. Filing happens between fetches, or
/// on a second session when the backlog is large and one can be had ([`Mover`]).
pub(super) async fn work_through(
    f: &mut ImapFolder,
    acct: &Arc<Account>,
    cancel: &CancellationToken,
    backlog: &mut Backlog,
    uids: &[u32],
    st: &mut FolderState,
    not_before: Option<i64>,
) -> Result<Report> {
    let uidvalidity = f.selected().uidvalidity;
    let mut report = Report::default();
    for chunk in uids.chunks(BATCH) {
        let keys: Vec<MessageKey> = chunk
            .iter()
            .map(|&uid| MessageKey {
                uid,
                key: format!("{uidvalidity}:{uid}"),
            })
            .collect();
        let fetched = pipeline::fetch_batch(f, acct, &keys, not_before).await?;
        if cancel.is_cancelled() {
            break;
        }
        *st = FolderState {
            last_uid: chunk.iter().copied().max().unwrap_or(st.last_uid),
            ..*st
        };
        // Parsed on a thread of its own, while the batch before it is triaged.
        let parsing = pipeline::parse_in_background(fetched, acct.max_scan_bytes);
        backlog.queue.push_back((parsing, *st));
        backlog.advance(false).await?;
        // Memory stays bounded: at most QUEUED batches wait for the triage thread.
        while backlog.queue.len() > QUEUED {
            backlog.advance(true).await?;
        }
        report.add(backlog.file_ready(f, false).await?);
    }
    if cancel.is_cancelled() {
        // Stopping: what was fetched but not triaged is fetched again next time.
        backlog.queue.clear();
    }
    while backlog.busy() {
        backlog.advance(true).await?;
        report.add(backlog.file_ready(f, false).await?);
    }
    report.add(backlog.file_ready(f, true).await?);
    Ok(report)
}

/// Fetched batches waiting for the triage thread, beyond the one it works on.
const QUEUED: usize = 1;

/// Backlogs of at least this many messages are filed on a second session (when the
/// account has one to spare), so that moves no longer hold up fetching.
pub(super) const SECOND_SESSION_FROM: usize = 2 * BATCH;

/// What opening one more session on the account takes: the same server, TLS settings
/// and credentials as the session it helps (its password; or, with OAuth2, a current
/// access token, since a session can outlive the one it logged in with).
pub(super) struct Dialer {
    pub imap: ImapConfig,
    pub tls: Arc<tokio_rustls::rustls::ClientConfig>,
    pub secret: SecretString,
    pub tokens: Option<Arc<TokenSource>>,
}

/// A spawned task that is aborted when its handle is dropped: a sync abandoned at
/// shutdown takes its helpers with it. (Stopping between commands is safe: every plan
/// is journalled before its move.)
struct Helper<T>(tokio::task::JoinHandle<T>);

impl<T> Helper<T> {
    fn is_finished(&self) -> bool {
        self.0.is_finished()
    }

    async fn join(mut self) -> Result<T> {
        (&mut self.0)
            .await
            .map_err(|e| anyhow!("a helper of the sync failed: {e}"))
    }
}

impl<T> Drop for Helper<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Where a backlog's decided messages are filed.
enum Mover {
    /// On the session that fetches them.
    Own,
    /// A second session is being opened (holding the account's spare-session permit);
    /// until it is, the own session files.
    Dialing(
        Helper<Option<ImapFolder>>,
        tokio::sync::OwnedSemaphorePermit,
    ),
    /// A second session files the groups put on the shelf while the first one fetches.
    Filer {
        shelf: Arc<Shelf>,
        done: Helper<Result<Report>>,
    },
}

/// Destination groups waiting to be moved: the fetching session puts them here, the
/// second session takes them in order, and at the end both take from it until it is
/// empty, the largest groups first, so that they finish close together.
#[derive(Default)]
struct Shelf {
    state: std::sync::Mutex<ShelfState>,
    /// Wakes the second session (its only waiter) when groups arrive or the shelf closes.
    changed: tokio::sync::Notify,
}

#[derive(Default)]
struct ShelfState {
    groups: std::collections::VecDeque<pipeline::Planned>,
    /// Nothing more will be put here.
    closed: bool,
}

impl Shelf {
    fn state(&self) -> std::sync::MutexGuard<'_, ShelfState> {
        // Only this module's short, panic-free sections hold the lock.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn put(&self, groups: Vec<pipeline::Planned>) {
        if groups.is_empty() {
            return;
        }
        self.state().groups.extend(groups);
        self.changed.notify_one();
    }

    /// Nothing more will come: what is left is ordered largest first.
    fn close(&self) {
        {
            let mut st = self.state();
            st.closed = true;
            st.groups
                .make_contiguous()
                .sort_by_key(|g| std::cmp::Reverse(g.len()));
        }
        self.changed.notify_one();
    }

    /// The next group, if one is waiting.
    fn take(&self) -> Option<pipeline::Planned> {
        self.state().groups.pop_front()
    }

    /// Messages waiting on the shelf.
    fn waiting(&self) -> usize {
        self.state().groups.iter().map(pipeline::Planned::len).sum()
    }

    /// Every group still waiting.
    fn take_all(&self) -> Vec<pipeline::Planned> {
        self.state().groups.drain(..).collect()
    }

    /// The next group, waiting for one; `None` once the shelf is closed and empty.
    async fn next(&self) -> Option<pipeline::Planned> {
        loop {
            {
                let mut st = self.state();
                if let Some(g) = st.groups.pop_front() {
                    return Some(g);
                }
                if st.closed {
                    return None;
                }
            }
            // A notification sent since the check is kept for this call (one waiter).
            self.changed.notified().await;
        }
    }
}

/// Opens a second session on the folder for [`file_on`]; `None` when it cannot be had
/// (a server's connection limit, say): the backlog is then filed as before, on the
/// fetching session.
async fn dial(
    d: Arc<Dialer>,
    acct: Arc<Account>,
    folder: String,
    uidvalidity: u32,
) -> Option<ImapFolder> {
    let name = &acct.config.name;
    let secret = match &d.tokens {
        Some(ts) => match ts.access_token().await {
            Ok(t) => t,
            Err(e) => {
                info!(account = %name, folder, "no second session for the backlog ({e:#}); filing on the first one");
                return None;
            }
        },
        None => d.secret.clone(),
    };
    let session = match imap_connect::connect(&d.imap, &d.tls, &secret).await {
        Ok(s) => s,
        Err(e) => {
            info!(account = %name, folder, "no second session for the backlog ({e:#}); filing on the first one");
            return None;
        }
    };
    match ImapFolder::open(session, name, &folder, d.imap.timeout).await {
        Ok(f) if f.selected().uidvalidity == uidvalidity => Some(f),
        Ok(f) => {
            // The folder changed under us: its UIDs mean other messages now.
            f.logout().await;
            None
        }
        Err(e) => {
            info!(account = %name, folder, "no second session for the backlog ({e:#}); filing on the first one");
            None
        }
    }
}

/// A second session's work: files the groups on the shelf as they come, recording the
/// outcomes; logs out once the shelf is closed and empty. Its report covers every group
/// it took.
async fn file_on(
    mut f: ImapFolder,
    acct: Arc<Account>,
    shelf: Arc<Shelf>,
    _permit: tokio::sync::OwnedSemaphorePermit,
) -> Result<Report> {
    let mut report = Report::default();
    let mut writes = pipeline::StatusWrites::default();
    let mut filed = Ok(());
    while let Some(group) = shelf.next().await {
        filed = async {
            // The last group's outcome is still being written while this one moves.
            writes.finish_older().await?;
            report.add(pipeline::file_planned_deferred(&mut f, &acct, group, &mut writes).await?);
            Ok::<_, anyhow::Error>(())
        }
        .await;
        if filed.is_err() {
            break;
        }
    }
    let recorded = writes.finish().await;
    filed.context("filing on the second session")?;
    recorded?;
    f.logout().await;
    Ok(report)
}

/// A backlog in progress: fetched batches waiting to be triaged (with the folder state
/// each one completes), the batch being triaged, and decided messages waiting to be filed.
pub(super) struct Backlog {
    account: String,
    folder: String,
    acct: Arc<Account>,
    /// Fetched batches being parsed or waiting for the triage thread.
    queue:
        std::collections::VecDeque<(tokio::task::JoinHandle<pipeline::ParsedBatch>, FolderState)>,
    triaging: Option<tokio::task::JoinHandle<Result<pipeline::Planned>>>,
    planned: pipeline::Planned,
    /// Outcomes of earlier moves still being written to the store.
    writes: pipeline::StatusWrites,
    mover: Mover,
    /// The second session failed: what it did not confirm is left for recovery.
    pub(super) filer_lost: bool,
}

impl Backlog {
    pub(super) fn new(account: &str, folder: &str, acct: &Arc<Account>) -> Backlog {
        Backlog {
            account: account.to_string(),
            folder: folder.to_string(),
            acct: Arc::clone(acct),
            queue: Default::default(),
            triaging: None,
            planned: Default::default(),
            writes: Default::default(),
            mover: Mover::Own,
            filer_lost: false,
        }
    }

    /// Starts opening a second session to file on, if the account has one to spare.
    pub(super) fn dial(&mut self, d: &Dialer, f: &ImapFolder) {
        let Ok(permit) = Arc::clone(&self.acct.spare_sessions).try_acquire_owned() else {
            return;
        };
        let d = Arc::new(Dialer {
            imap: d.imap.clone(),
            tls: Arc::clone(&d.tls),
            secret: d.secret.clone(),
            tokens: d.tokens.clone(),
        });
        let opening = dial(
            d,
            Arc::clone(&self.acct),
            self.folder.clone(),
            f.selected().uidvalidity,
        )
        .instrument(tracing::Span::current());
        self.mover = Mover::Dialing(Helper(tokio::spawn(opening)), permit);
    }

    /// The second session, once it is open, starts filing; one that could not be had
    /// leaves the filing to the own session.
    async fn check_dialing(&mut self, all: bool) -> Result<()> {
        let Mover::Dialing(h, _) = &self.mover else {
            return Ok(());
        };
        if !h.is_finished() && !all {
            return Ok(());
        }
        let Mover::Dialing(h, permit) = std::mem::replace(&mut self.mover, Mover::Own) else {
            return Ok(());
        };
        if !h.is_finished() {
            // Still not open with everything decided: not worth waiting for.
            return Ok(());
        }
        if let Some(f2) = h.join().await? {
            let shelf = Arc::new(Shelf::default());
            let work = file_on(f2, Arc::clone(&self.acct), Arc::clone(&shelf), permit)
                .instrument(tracing::Span::current());
            self.mover = Mover::Filer {
                shelf,
                done: Helper(tokio::spawn(work)),
            };
        }
        Ok(())
    }

    /// Batches queued or being triaged.
    fn busy(&self) -> bool {
        self.triaging.is_some() || !self.queue.is_empty()
    }

    /// Collects the batch being triaged once it is done (waiting for it with `wait`), and
    /// starts on the next queued one. Batches are triaged one at a time, in order, so the
    /// recorded folder state only moves forward.
    async fn advance(&mut self, wait: bool) -> Result<()> {
        if let Some(h) = self.triaging.take() {
            if !wait && !h.is_finished() {
                self.triaging = Some(h);
                return Ok(());
            }
            self.planned.extend(joined(h.await)?);
        }
        if let Some((parsing, state)) = self.queue.pop_front() {
            let (account, folder, acct) = (
                self.account.clone(),
                self.folder.clone(),
                Arc::clone(&self.acct),
            );
            self.triaging = Some(tokio::spawn(
                async move {
                    let batch = parsing
                        .await
                        .map_err(|e| anyhow!("parsing a batch failed: {e}"))?;
                    joined(
                        pipeline::plan_in_background(account, folder, acct, batch, Some(state))
                            .await,
                    )
                }
                .instrument(tracing::Span::current()),
            ));
        }
        Ok(())
    }

    /// Files what is ready (everything with `all`, or once FILE_BATCH messages wait).
    /// With a second session, its moves go on the shelf for it, and what moves nothing is
    /// settled here; at the end this session takes groups from the shelf as well.
    async fn file_ready(&mut self, f: &mut ImapFolder, all: bool) -> Result<Report> {
        self.check_dialing(all).await?;
        let mut report = self.check_filer().await;
        let mut ready = if all || self.planned.len() >= FILE_BATCH {
            std::mem::take(&mut self.planned)
        } else {
            self.planned.take_ready(FILE_GROUP)
        };
        // The previous round's writes are done by now (a fetch went by); waiting for them
        // keeps their number bounded and surfaces a failed one.
        self.writes.finish().await?;
        if ready.is_empty() && !all {
            report.add(ready.report());
            return Ok(report);
        }
        let shelf = match &self.mover {
            Mover::Filer { shelf, .. } => Some(Arc::clone(shelf)),
            _ => None,
        };
        if let Some(shelf) = &shelf {
            let (stays, groups) = ready.into_groups();
            shelf.put(groups);
            ready = stays;
            // A second session that falls behind (a slow server) is helped, which also
            // slows the fetching down: what waits for a move stays bounded.
            while !all && shelf.waiting() >= FILE_BATCH {
                let Some(group) = shelf.take() else { break };
                self.writes.finish_older().await?;
                report.add(
                    pipeline::file_planned_deferred(f, &self.acct, group, &mut self.writes).await?,
                );
            }
        }
        report.add(if ready.is_empty() {
            ready.report()
        } else {
            pipeline::file_planned_deferred(f, &self.acct, ready, &mut self.writes).await?
        });
        if all {
            if let Some(shelf) = shelf {
                shelf.close();
                while let Some(group) = shelf.take() {
                    self.writes.finish_older().await?;
                    report.add(
                        pipeline::file_planned_deferred(f, &self.acct, group, &mut self.writes)
                            .await?,
                    );
                }
            }
            self.writes.finish().await?;
            let filed = self.finish_filer().await;
            report.add(self.lost_filer(filed));
        }
        Ok(report)
    }

    /// A second session that stopped before the end failed: its error is logged, and the
    /// groups it left on the shelf come back to this session.
    async fn check_filer(&mut self) -> Report {
        let Mover::Filer { shelf, done } = &self.mover else {
            return Report::default();
        };
        if !done.is_finished() {
            return Report::default();
        }
        let back = shelf.take_all();
        for group in back {
            self.planned.extend(group);
        }
        let filed = self.finish_filer().await;
        self.lost_filer(filed)
    }

    /// The second session's report; when it failed, the error is logged and the backlog
    /// goes on without it. Whatever it had not confirmed stays planned in the store, and
    /// [`sync`] settles it on this session (as recovery after a restart would).
    fn lost_filer(&mut self, filed: Result<Report>) -> Report {
        match filed {
            Ok(r) => r,
            Err(e) => {
                warn!(account = %self.account, folder = %self.folder, "the second session failed: {e:#}; filing on the first one");
                self.filer_lost = true;
                Report::default()
            }
        }
    }

    /// Lets the second session file what is on the shelf, and closes it; its report.
    async fn finish_filer(&mut self) -> Result<Report> {
        match std::mem::replace(&mut self.mover, Mover::Own) {
            Mover::Filer { shelf, done } => {
                shelf.close();
                done.join().await?
            }
            // A session still being opened is abandoned (the task is aborted).
            Mover::Dialing(..) | Mover::Own => Ok(Report::default()),
        }
    }

    /// Waits for the batch being triaged (its decisions are recorded; filing them is left
    /// to recovery) and drops the queued ones (not recorded: fetched again next time).
    pub(super) async fn settle(&mut self) {
        self.queue.clear();
        if let Err(e) = self.writes.finish().await {
            warn!(account = %self.account, folder = %self.folder, "{e:#}");
        }
        // What the second session was sent is filed (or journalled) before recovery
        // looks at the folder again.
        if let Err(e) = self.finish_filer().await {
            warn!(account = %self.account, folder = %self.folder, "{e:#}");
        }
        if let Some(h) = self.triaging.take() {
            if let Err(e) = joined(h.await) {
                warn!(account = %self.account, folder = %self.folder, "{e:#}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipeline::Planned;
    use std::time::Duration;

    #[tokio::test]
    async fn the_shelf_hands_out_groups_in_order_and_the_largest_first_once_closed() {
        let shelf = Arc::new(Shelf::default());
        let waiting = {
            let shelf = Arc::clone(&shelf);
            tokio::spawn(async move { shelf.next().await.map(|g| g.len()) })
        };
        tokio::task::yield_now().await;
        shelf.put(vec![Planned::moving(2, "A")]);
        // The second session, waiting on an empty shelf, is woken by what arrives.
        assert_eq!(waiting.await.ok().flatten(), Some(2));
        // While the backlog runs, groups go out in the order they came.
        shelf.put(vec![Planned::moving(1, "B"), Planned::moving(3, "C")]);
        assert_eq!(shelf.take().map(|g| g.len()), Some(1));
        shelf.put(Vec::new());
        shelf.put(vec![Planned::moving(2, "D")]);
        // Closed: the largest first, then nothing, for either session.
        shelf.close();
        assert_eq!(shelf.next().await.map(|g| g.len()), Some(3));
        assert_eq!(shelf.take().map(|g| g.len()), Some(2));
        assert!(shelf.take().is_none());
        assert!(shelf.next().await.is_none());
    }

    #[tokio::test]
    async fn a_closed_shelf_releases_a_waiting_second_session() {
        let shelf = Arc::new(Shelf::default());
        let waiting = {
            let shelf = Arc::clone(&shelf);
            tokio::spawn(async move { shelf.next().await.is_none() })
        };
        tokio::task::yield_now().await;
        shelf.close();
        let released = tokio::time::timeout(Duration::from_secs(5), waiting).await;
        assert!(matches!(released, Ok(Ok(true))));
    }
}
