//! The pipeline for a batch of new messages, step by step:
//!
//! fetch → parse → classify → escalate → choose recipient → plan (record) → act → file →
//! record → notify
//!
//! The plan — every decision with its destination, status `planned`, its escalation
//! actions and the mail it sends — is written to the state database in one transaction
//! *before* the server is touched. Escalation actions (\Flagged and keywords, a copy
//! into the escalation folder) are carried out next, on the message where it arrived;
//! filing then moves one group per destination (flags travel with the message) and
//! marks the rows `filed` (or `failed`, to be retried). The outbox worker sends the
//! queued alerts and acknowledgements. After a crash, [`recover`] re-reads the plan and
//! finishes it without duplicating or losing a message, a flag or a copy.
//!
//! This file holds the stages and filing; `plan.rs` triages and records a batch,
//! `actions.rs` carries out escalation actions, and `recover.rs` settles what an
//! earlier run left planned.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Result;
use tracing::info;

use crate::config::AccountConfig;
use crate::daemon::metrics as m;
use crate::mail::MessageView;
use crate::mailbox::names::Naming;
use crate::mailbox::{shown, Fetched, FileError, MailSource, MessageKey, Moved, Signature};
use crate::outbox::MailSettings;
use crate::profile::LiveProfile;
use crate::store::{FolderState, Status, Store};
use crate::triage::Decision;

mod actions;
mod plan;
mod recover;
pub mod refusals;

pub use actions::plan_actions;
use actions::run_actions;
use plan::plan;
pub use recover::recover;

/// What the pipeline needs to know about the account it works for.
pub struct Account {
    pub config: AccountConfig,
    pub profile: Arc<LiveProfile>,
    pub store: Arc<Store>,
    pub max_scan_bytes: usize,
    /// Shadow mode: decide and record, never move.
    pub dry_run: bool,
    /// Counts work recorded (decisions, filings): a session that moved it forward is healthy.
    pub progress: std::sync::atomic::AtomicU64,
    /// Busy calendars of the profile's booking providers, re-read on their interval.
    pub calendars: crate::calendar::CalendarCache,
    /// Sending mail (alerts, acknowledgements), when an `smtp:` block is configured.
    pub mail: Option<Arc<MailSettings>>,
    /// Sessions beyond one per watched folder that this account may open: a folder with
    /// a large backlog borrows one to file on while its own session keeps fetching.
    pub spare_sessions: Arc<tokio::sync::Semaphore>,
    /// Where refusals to file are reported and tallied (shared by the daemon's accounts).
    pub refusals: Arc<refusals::Refusals>,
}

impl Account {
    /// Notes that work was recorded.
    pub fn note_progress(&self) {
        self.progress
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Work recorded so far.
    pub fn progress(&self) -> u64 {
        self.progress.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Counts of what happened to a batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Report {
    pub decided: usize,
    pub filed: usize,
    pub left: usize,
    pub failed: usize,
    /// Already decided earlier (e.g. moved back into the inbox by a person).
    pub skipped: usize,
}

impl Report {
    /// Adds another report's counts.
    pub fn add(&mut self, o: Report) {
        self.decided += o.decided;
        self.filed += o.filed;
        self.left += o.left;
        self.failed += o.failed;
        self.skipped += o.skipped;
    }
}

/// A message's dedupe key: its Message-ID, or a hash of its header when it has none.
/// Messages that share it are told apart by their [`Signature`].
pub fn message_fingerprint(view: &MessageView, signature: &Signature) -> String {
    match &view.message_id {
        Some(id) if !id.trim().is_empty() => id.trim().to_lowercase(),
        _ => format!("h:{:016x}", signature.header),
    }
}

/// A planned action on one message.
struct Plan {
    id: i64,
    key: MessageKey,
    dest: Option<Vec<String>>,
    status: Status,
    /// Escalation actions may wait for it (planned with it, or it was decided before):
    /// filing looks them up in the store first. Most mail has none, and a filing session
    /// then never waits for the store.
    actions: bool,
}

/// Decisions recorded but not yet filed: batches of a backlog accumulate here so that
/// one move per destination carries thousands of messages (servers charge per MOVE, not
/// per message). Dropping it unfiled is safe: the plans are in the store and recovery
/// finishes them.
#[derive(Default)]
pub struct Planned {
    plans: Vec<Plan>,
    report: Report,
}

impl Planned {
    /// Messages waiting to be filed or left.
    pub fn len(&self) -> usize {
        self.plans.len()
    }

    /// Nothing waiting.
    pub fn is_empty(&self) -> bool {
        self.plans.is_empty()
    }

    /// What deciding these messages reported so far.
    pub fn report(&self) -> Report {
        self.report
    }

    /// `n` plans moving messages 1..=n to one destination (for tests elsewhere).
    #[cfg(test)]
    pub(crate) fn moving(n: u32, dest: &str) -> Planned {
        Planned {
            plans: (1..=n)
                .map(|uid| Plan {
                    id: i64::from(uid),
                    key: MessageKey {
                        uid,
                        key: format!("1:{uid}"),
                    },
                    dest: Some(vec![dest.to_string()]),
                    status: Status::Planned,
                    actions: false,
                })
                .collect(),
            report: Report::default(),
        }
    }

    /// Takes in another batch's plans.
    pub fn extend(&mut self, o: Planned) {
        self.plans.extend(o.plans);
        self.report.add(o.report);
    }

    /// Takes out what is worth filing now: every plan that moves nothing (mail left in
    /// place, dry runs) and the plans of each destination with at least `min_group`
    /// messages waiting. The rest waits for more of its kind.
    pub fn take_ready(&mut self, min_group: usize) -> Planned {
        let mut waiting: BTreeMap<&[String], usize> = BTreeMap::new();
        for p in &self.plans {
            if let Some(dest) = p.moving_to() {
                *waiting.entry(dest).or_default() += 1;
            }
        }
        let full: std::collections::BTreeSet<Vec<String>> = waiting
            .into_iter()
            .filter(|&(_, n)| n >= min_group)
            .map(|(dest, _)| dest.to_vec())
            .collect();
        let (ready, rest) = std::mem::take(&mut self.plans)
            .into_iter()
            .partition(|p| p.moving_to().is_none_or(|d| full.contains(d)));
        self.plans = rest;
        Planned {
            plans: ready,
            report: std::mem::take(&mut self.report),
        }
    }
}

impl Planned {
    /// Splits into what moves nothing (with the report) and one group per destination,
    /// the largest first: units of work that either of two sessions can file.
    pub fn into_groups(self) -> (Planned, Vec<Planned>) {
        let mut groups: BTreeMap<Vec<String>, Vec<Plan>> = BTreeMap::new();
        let mut stays = Vec::new();
        for p in self.plans {
            match p.moving_to() {
                Some(dest) => groups.entry(dest.to_vec()).or_default().push(p),
                None => stays.push(p),
            }
        }
        let mut groups: Vec<Planned> = groups
            .into_values()
            .map(|plans| Planned {
                plans,
                report: Report::default(),
            })
            .collect();
        // Stable: equal sizes stay in name order.
        groups.sort_by_key(|g| std::cmp::Reverse(g.len()));
        let stays = Planned {
            plans: stays,
            report: self.report,
        };
        (stays, groups)
    }
}

impl Plan {
    /// Where this plan moves its message, if it moves it.
    fn moving_to(&self) -> Option<&[String]> {
        match (&self.dest, self.status) {
            (Some(dest), Status::Planned) => Some(dest),
            _ => None,
        }
    }
}

/// One line per decision: what every operator wants to grep for.
fn log_decision(
    acct: &str,
    folder: &str,
    key: &MessageKey,
    view: &MessageView,
    d: &Decision,
    dry_run: bool,
    naming: &Naming,
) {
    let subject = if view.subject.is_empty() {
        "(no subject)"
    } else {
        view.subject.as_str()
    };
    let dest = match d.folder_path.as_deref().filter(|p| !p.is_empty()) {
        Some(levels) => shown(naming, levels),
        None => "(stays)".to_string(),
    };
    info!(
        account = acct,
        folder,
        uid = key.uid,
        message_id = view.message_id.as_deref().unwrap_or("-"),
        category = %d.category,
        recipient = d.recipient.as_deref().unwrap_or("-"),
        reason = %d.reason,
        escalation = d.escalation.as_ref().map_or("-", |e| e.level.as_str()),
        dest,
        "{}{subject:?} → {dest}",
        if dry_run { "[dry run] " } else { "" },
    );
}

/// Processes new messages of one folder: every step of the pipeline, in order.
/// `state` is the folder's sync state after this batch (recorded with the plan);
/// messages delivered before `not_before` (Unix time) are ignored, not triaged.
pub async fn process_new_mail<S: MailSource>(
    src: &mut S,
    acct: &Account,
    keys: &[MessageKey],
    state: Option<FolderState>,
    not_before: Option<i64>,
) -> Result<Report> {
    let planned = decide(src, acct, keys, state, not_before).await?;
    file_planned(src, acct, planned).await
}

/// Fetches, triages and records a batch: every step before filing.
pub async fn decide<S: MailSource>(
    src: &mut S,
    acct: &Account,
    keys: &[MessageKey],
    state: Option<FolderState>,
    not_before: Option<i64>,
) -> Result<Planned> {
    let fetched = fetch_batch(src, acct, keys, not_before).await?;
    plan_fetched(src.account(), src.folder(), acct, fetched, state)
}

/// A fetched batch waiting to be triaged.
pub struct FetchedBatch {
    messages: Vec<Fetched>,
    /// Messages dropped because they were delivered before the rescan's baseline.
    ignored: usize,
    /// How the source names destinations (for the decisions' log lines).
    naming: Naming,
}

/// The fetch step of [`decide`]: messages delivered before `not_before` are dropped.
pub async fn fetch_batch<S: MailSource>(
    src: &mut S,
    acct: &Account,
    keys: &[MessageKey],
    not_before: Option<i64>,
) -> Result<FetchedBatch> {
    // Calendar feeds due for a refresh are fetched here, where waiting is allowed, so
    // the triage that follows only reads what is cached.
    acct.calendars.refresh_feeds(&acct.profile.snapshot()).await;
    let started = std::time::Instant::now();
    let mut messages = src
        .fetch(keys, acct.max_scan_bytes, not_before.is_some())
        .await?;
    tracing::debug!(target: TIMING,
        account = src.account(),
        folder = src.folder(),
        messages = messages.len(),
        ms = started.elapsed().as_millis() as u64,
        "fetched a batch"
    );
    let before = messages.len();
    if let Some(t) = not_before {
        messages.retain(|m| m.internal_date.is_none_or(|d| d >= t));
    }
    let ignored = before - messages.len();
    Ok(FetchedBatch {
        messages,
        ignored,
        naming: src.naming(),
    })
}

/// A fetched batch, parsed: each message's key, view and fingerprint ([`parse_batch`]).
/// The raw messages are gone by now.
pub struct ParsedBatch {
    messages: Vec<Parsed>,
    ignored: usize,
    naming: Naming,
}

/// One parsed message of a batch.
struct Parsed {
    key: MessageKey,
    view: MessageView,
    fingerprint: String,
    signature: Signature,
}

/// Parses a fetched batch: pure and CPU-bound, so a backlog parses one batch
/// ([`parse_in_background`]) while the batch before it is triaged.
pub fn parse_batch(batch: FetchedBatch, max_scan_bytes: usize) -> ParsedBatch {
    let messages = batch
        .messages
        .into_iter()
        .map(|m| {
            let view = MessageView::parse_for_triage(&m.raw, max_scan_bytes);
            let fingerprint = message_fingerprint(&view, &m.signature);
            Parsed {
                key: m.key,
                view,
                fingerprint,
                signature: m.signature,
            }
        })
        .collect();
    ParsedBatch {
        messages,
        ignored: batch.ignored,
        naming: batch.naming,
    }
}

/// [`parse_batch`] on a blocking thread.
pub fn parse_in_background(
    batch: FetchedBatch,
    max_scan_bytes: usize,
) -> tokio::task::JoinHandle<ParsedBatch> {
    tokio::task::spawn_blocking(move || parse_batch(batch, max_scan_bytes))
}

/// The rest of [`decide`]: parse → classify → escalate → choose recipient → plan
/// (recorded before any move). CPU-bound; [`plan_in_background`] runs it off the
/// session's task so the next fetch overlaps it.
pub fn plan_fetched(
    account: &str,
    folder: &str,
    acct: &Account,
    batch: FetchedBatch,
    state: Option<FolderState>,
) -> Result<Planned> {
    plan_parsed(
        account,
        folder,
        acct,
        parse_batch(batch, acct.max_scan_bytes),
        state,
    )
}

/// [`plan_fetched`] after parsing: classify → escalate → choose recipient → plan.
pub fn plan_parsed(
    account: &str,
    folder: &str,
    acct: &Account,
    batch: ParsedBatch,
    state: Option<FolderState>,
) -> Result<Planned> {
    let started = std::time::Instant::now();
    let count = batch.messages.len();
    let (plans, mut report) = plan(account, folder, acct, batch.messages, &batch.naming, state)?;
    tracing::debug!(target: TIMING,
        account,
        folder,
        messages = count,
        ms = started.elapsed().as_millis() as u64,
        "triaged and recorded a batch"
    );
    report.skipped += batch.ignored;
    Ok(Planned { plans, report })
}

/// [`plan_parsed`] on a blocking thread, inside the caller's tracing span. The batch's
/// decisions (and `state`) are recorded when the returned handle completes; callers
/// await it before filing or giving up the session, so recovery never races it.
pub fn plan_in_background(
    account: String,
    folder: String,
    acct: Arc<Account>,
    batch: ParsedBatch,
    state: Option<FolderState>,
) -> tokio::task::JoinHandle<Result<Planned>> {
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || {
        span.in_scope(|| plan_parsed(&account, &folder, &acct, batch, state))
    })
}

/// Files what `decide` planned, one move per destination, and records the outcome.
pub async fn file_planned<S: MailSource>(
    src: &mut S,
    acct: &Account,
    planned: Planned,
) -> Result<Report> {
    let mut writes = StatusWrites::default();
    let filed = file(src, acct, (planned.plans, planned.report), &mut writes).await;
    let recorded = writes.finish().await;
    let report = filed?;
    recorded?;
    Ok(report)
}

/// [`file_planned`] leaving the outcomes' store writes running in `writes`, for the
/// caller to finish later: the session goes on to its next command meanwhile.
pub async fn file_planned_deferred<S: MailSource>(
    src: &mut S,
    acct: &Account,
    planned: Planned,
    writes: &mut StatusWrites,
) -> Result<Report> {
    file(src, acct, (planned.plans, planned.report), writes).await
}

/// Outcomes of moves being written to the store on blocking threads, so that a store
/// write never holds up the session. Each write touches its own decisions (a message is
/// moved once); [`StatusWrites::finish`] waits for all of them.
#[derive(Default)]
pub struct StatusWrites(Vec<tokio::task::JoinHandle<Result<()>>>);

impl StatusWrites {
    fn start(&mut self, acct: &Account, ids: Vec<i64>, status: Status, error: Option<String>) {
        let store = Arc::clone(&acct.store);
        self.0.push(tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            store.set_status(&ids, status, error.as_deref())?;
            tracing::debug!(target: TIMING, decisions = ids.len(), status = status.as_str(),
                ms = started.elapsed().as_millis() as u64, "recorded outcomes");
            Ok(())
        }));
    }

    /// Records decisions filed, with where the server said each message went.
    fn filed(&mut self, acct: &Account, filed: Vec<(i64, Option<(u32, u32)>)>) {
        let store = Arc::clone(&acct.store);
        self.0.push(tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            store.set_filed(&filed)?;
            tracing::debug!(target: TIMING, decisions = filed.len(), status = "filed",
                ms = started.elapsed().as_millis() as u64, "recorded outcomes");
            Ok(())
        }));
    }

    /// Waits for every write started; the first failure, if any.
    pub async fn finish(&mut self) -> Result<()> {
        let mut first = Ok(());
        for h in self.0.drain(..) {
            let r = h
                .await
                .map_err(|e| anyhow::anyhow!("recording a move's outcome failed: {e}"))
                .and_then(|r| r);
            if first.is_ok() {
                first = r;
            }
        }
        first
    }

    /// Like [`StatusWrites::finish`], except for the newest write, which may go on while
    /// the session starts its next move (at most two are ever in flight).
    pub async fn finish_older(&mut self) -> Result<()> {
        let newest = self.0.pop();
        let r = self.finish().await;
        self.0.extend(newest);
        r
    }
}

/// The log target of the timings of fetches, batches and moves: `MAILTRIAGE_LOG=
/// warn,mailtriage::timing=debug` shows them without the per-message lines.
const TIMING: &str = "mailtriage::timing";

/// The UIDVALIDITY part of an IMAP key ("uidvalidity:uid"); 0 for Maildir.
fn uidvalidity_of(k: &MessageKey) -> u32 {
    k.key
        .split_once(':')
        .filter(|_| k.uid != 0)
        .and_then(|(v, _)| v.parse().ok())
        .unwrap_or(0)
}

/// Each plan's id with where the move put its message, when the server said.
fn positions(group: &[&Plan], moved: &Moved) -> Vec<(i64, Option<(u32, u32)>)> {
    group.iter().map(|p| (p.id, moved.of(p.key.uid))).collect()
}

/// Files planned messages, one move per destination; records the outcome.
async fn file<S: MailSource>(
    src: &mut S,
    acct: &Account,
    planned: (Vec<Plan>, Report),
    writes: &mut StatusWrites,
) -> Result<Report> {
    let (plans, mut report) = planned;
    // Escalation actions first, on the message where it is: flags travel with the move.
    let ids: Vec<i64> = plans.iter().filter(|p| p.actions).map(|p| p.id).collect();
    if !ids.is_empty() {
        run_actions(src, acct, Some(&ids)).await?;
    }
    let mut groups: BTreeMap<Vec<String>, Vec<&Plan>> = BTreeMap::new();
    for p in &plans {
        match p.moving_to() {
            Some(dest) => groups.entry(dest.to_vec()).or_default().push(p),
            None => report.left += 1,
        }
    }
    // Each outcome is written to the store on a blocking thread while the next move is on
    // the server.
    for (dest, group) in groups {
        let keys: Vec<MessageKey> = group.iter().map(|p| p.key.clone()).collect();
        let ids: Vec<i64> = group.iter().map(|p| p.id).collect();
        let dest_name = shown(&src.naming(), &dest);
        let started = std::time::Instant::now();
        let outcome = src.file(&keys, &dest).await;
        metrics::histogram!(m::FILING_SECONDS).record(started.elapsed().as_secs_f64());
        tracing::debug!(target: TIMING,
            account = src.account(),
            folder = src.folder(),
            dest = dest_name,
            messages = ids.len(),
            ms = started.elapsed().as_millis() as u64,
            ok = outcome.is_ok(),
            "moved a group"
        );
        match outcome {
            Ok(moved) => {
                acct.note_progress();
                report.filed += ids.len();
                metrics::counter!(m::FILED, "account" => src.account().to_string())
                    .increment(ids.len() as u64);
                writes.filed(acct, positions(&group, &moved));
            }
            Err(FileError::Refused(why)) => {
                metrics::counter!(m::FILING_ERRORS, "account" => src.account().to_string(), "kind" => "refused").increment(1);
                acct.refusals
                    .note(src.account(), src.folder(), &dest_name, ids.len(), &why);
                report.failed += ids.len();
                writes.start(acct, ids, Status::Failed, Some(why));
            }
            Err(FileError::Broken(e)) => {
                // The plan stays `planned`; recovery finishes it after reconnecting.
                metrics::counter!(m::FILING_ERRORS, "account" => src.account().to_string(), "kind" => "broken").increment(1);
                return Err(e.context(format!("filing into {dest_name}")));
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plan for message `uid`, moving it to `dest` (one level).
    fn plan(uid: u32, dest: Option<&str>, status: Status) -> Plan {
        Plan {
            id: i64::from(uid),
            key: MessageKey {
                uid,
                key: format!("1:{uid}"),
            },
            dest: dest.map(|d| vec![d.to_string()]),
            status,
            actions: false,
        }
    }

    #[test]
    fn full_destinations_and_mail_that_stays_are_ready_the_rest_waits() {
        let mut planned = Planned {
            plans: vec![
                plan(1, Some("A"), Status::Planned),
                plan(2, Some("B"), Status::Planned),
                plan(3, None, Status::Left),
                plan(4, Some("A"), Status::Planned),
                plan(5, Some("B"), Status::DryRun),
            ],
            report: Report {
                decided: 5,
                ..Report::default()
            },
        };
        let ready = planned.take_ready(2);
        let uids = |p: &Planned| p.plans.iter().map(|p| p.key.uid).collect::<Vec<_>>();
        // A has two waiting; B has one to move (a dry run moves nothing).
        assert_eq!(uids(&ready), vec![1, 3, 4, 5]);
        assert_eq!(uids(&planned), vec![2]);
        assert_eq!((ready.report().decided, planned.report().decided), (5, 0));
        assert_eq!(uids(&planned.take_ready(2)), Vec::<u32>::new());
        assert_eq!(uids(&planned.take_ready(1)), vec![2]);
    }

    #[test]
    fn groups_are_whole_destinations_largest_first_and_what_stays_keeps_the_report() {
        // A: 3 moves, B: 2, C: 1, D: 1; a message left in place and a failed one stay.
        let dests = ["A", "B", "A", "C", "B", "A", "D"];
        let mut plans: Vec<Plan> = dests
            .iter()
            .zip(1..)
            .map(|(d, uid)| plan(uid, Some(d), Status::Planned))
            .collect();
        plans.push(plan(8, None, Status::Left));
        plans.push(plan(9, Some("B"), Status::Failed));
        let planned = Planned {
            plans,
            report: Report {
                decided: 9,
                ..Report::default()
            },
        };
        let (stays, groups) = planned.into_groups();
        let uids = |p: &Planned| p.plans.iter().map(|p| p.key.uid).collect::<Vec<_>>();
        assert_eq!(uids(&stays), vec![8, 9]);
        assert_eq!(stays.report().decided, 9);
        // Largest first; C and D (one each) in name order.
        let got: Vec<Vec<u32>> = groups.iter().map(uids).collect();
        assert_eq!(got, vec![vec![1, 3, 6], vec![2, 5], vec![4], vec![7]]);
        assert!(groups.iter().all(|g| g.report().decided == 0));
        // Nothing to move: no groups.
        let left = Planned {
            plans: vec![plan(1, None, Status::Left)],
            report: Report::default(),
        };
        let (stays, groups) = left.into_groups();
        assert!(groups.is_empty());
        assert_eq!(stays.len(), 1);
    }
}
