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

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use tracing::{info, warn};

use crate::config::AccountConfig;
use crate::daemon::metrics as m;
use crate::mail::MessageView;
use crate::mailbox::{normalize_message_id, Fetched, FileError, MailSource, MessageKey};
use crate::outbox::{MailInput, MailSettings};
use crate::profile::compile::fingerprint;
use crate::profile::{LiveProfile, Profile};
use crate::store::outbox::{ActionKind, ActionStatus, Extras, NewAction, OpenAction};
use crate::store::{FolderState, NewDecision, Status, Store, StoredDecision};
use crate::triage::{self, Context, Decision, History};

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
pub fn message_fingerprint(view: &MessageView, raw: &[u8]) -> String {
    match &view.message_id {
        Some(id) if !id.trim().is_empty() => id.trim().to_lowercase(),
        _ => {
            let end = raw
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .or_else(|| raw.windows(2).position(|w| w == b"\n\n"))
                .unwrap_or(raw.len().min(4096));
            format!("h:{}", fingerprint(&[raw.get(..end).unwrap_or_default()]))
        }
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
) {
    let subject = if view.subject.is_empty() {
        "(no subject)"
    } else {
        view.subject.as_str()
    };
    let dest = d.folder.as_deref().unwrap_or("(stays)");
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
    Ok(FetchedBatch { messages, ignored })
}

/// A fetched batch, parsed: each message's key, view and fingerprint ([`parse_batch`]).
/// The raw messages are gone by now.
pub struct ParsedBatch {
    messages: Vec<Parsed>,
    ignored: usize,
}

/// One parsed message of a batch.
struct Parsed {
    key: MessageKey,
    view: MessageView,
    fingerprint: String,
}

/// Parses a fetched batch: pure and CPU-bound, so a backlog parses one batch
/// ([`parse_in_background`]) while the batch before it is triaged.
pub fn parse_batch(batch: FetchedBatch, max_scan_bytes: usize) -> ParsedBatch {
    let messages = batch
        .messages
        .into_iter()
        .map(|m| {
            let view = MessageView::parse_for_triage(&m.raw, max_scan_bytes);
            let fingerprint = message_fingerprint(&view, &m.raw);
            Parsed {
                key: m.key,
                view,
                fingerprint,
            }
        })
        .collect();
    ParsedBatch {
        messages,
        ignored: batch.ignored,
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
    let (plans, mut report) = plan(account, folder, acct, batch.messages, state)?;
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

/// Triages and records a parsed batch; returns what to file.
fn plan(
    account: &str,
    folder: &str,
    acct: &Account,
    parsed: Vec<Parsed>,
    state: Option<FolderState>,
) -> Result<(Vec<Plan>, Report)> {
    let profile = acct.profile.snapshot();
    let store = &acct.store;
    // The snapshot the pure core may consult: history and busy calendars.
    let ctx = Context {
        account_addresses: acct.config.addresses.clone(),
        history: History {
            load_7d: store.load_7d(crate::store::now())?,
            learned: if profile.booking.is_some() {
                store.learned_preferences()?
            } else {
                Default::default()
            },
        },
        calendars: acct.calendars.snapshot(&profile),
    };
    let mut report = Report::default();
    let today = chrono::Utc::now()
        .with_timezone(&profile.business.timezone)
        .date_naive()
        .to_string();
    let mut extras: Vec<Extras> = Vec::new();
    let mut rows: Vec<NewDecision> = Vec::new();
    let mut keys: Vec<MessageKey> = Vec::new();
    let mut resumed: Vec<Plan> = Vec::new();
    // One read of the store checks a slice for earlier decisions (one lock of the
    // database, not one per message).
    let mut parsed = parsed.into_iter().peekable();
    while parsed.peek().is_some() {
        let slice: Vec<Parsed> = parsed.by_ref().take(LOOKUP_SLICE).collect();
        let fps: Vec<&str> = slice.iter().map(|p| p.fingerprint.as_str()).collect();
        let earlier = store.find_by_fingerprints(account, &fps)?;
        for (m, earlier) in slice.into_iter().zip(earlier) {
            let Parsed {
                key,
                view,
                fingerprint: fp,
            } = m;
            if let Some(prev) = earlier {
                if prev.status.is_final() || prev.source_key == key.key {
                    report.skipped += 1;
                    info!(account, folder, uid = key.uid, message_id = %fp, status = prev.status.as_str(),
                    "already decided earlier; leaving it where it is");
                    continue;
                }
                // A planned move whose source position changed (UIDVALIDITY): carry it out.
                store.update_source(prev.id, uidvalidity_of(&key), key.uid, &key.key)?;
                resumed.push(Plan {
                    id: prev.id,
                    key: key.clone(),
                    dest: prev.dest.clone(),
                    status: Status::Planned,
                    actions: true,
                });
                continue;
            }
            // classify → escalate → choose recipient: the pure core, one profile snapshot.
            let started = std::time::Instant::now();
            let d = triage::triage(&view, &profile, &ctx);
            metrics::histogram!(m::TRIAGE_SECONDS).record(started.elapsed().as_secs_f64());
            metrics::counter!(m::TRIAGED, "account" => account.to_string(), "category" => d.category.clone(),
            "recipient" => d.recipient.clone().unwrap_or_else(|| "-".into()), "reason" => d.reason.as_str()).increment(1);
            if let Some(e) = &d.escalation {
                metrics::counter!(m::ESCALATIONS, "account" => account.to_string(), "level" => e.level.as_str()).increment(1);
            }
            log_decision(account, folder, &key, &view, &d, acct.dry_run);
            let dest = d.folder_path.clone().filter(|p| !p.is_empty());
            let status = match (&dest, acct.dry_run) {
                (_, true) => Status::DryRun,
                (None, false) => Status::Left,
                (Some(_), false) => Status::Planned,
            };
            // Escalation actions and mail: planned with the decision, never in shadow mode.
            let x = if acct.dry_run {
                Extras::default()
            } else {
                Extras {
                    actions: plan_actions(&profile, &d, dest.as_deref()),
                    mail: acct.mail.as_ref().map_or_else(Vec::new, |ms| {
                        crate::outbox::plan_mail(
                            &ms.sender,
                            &MailInput {
                                account,
                                profile: &profile,
                                view: &view,
                                decision: &d,
                                fingerprint: &fp,
                                own_addresses: &acct.config.addresses,
                                today: &today,
                            },
                        )
                    }),
                }
            };
            if acct.mail.is_none()
                && d.escalation
                    .as_ref()
                    .is_some_and(|e| !e.actions.notify.is_empty())
            {
                tracing::debug!(
                    account,
                    "an alert is configured but no `smtp:` block is: not sending it"
                );
            }
            extras.push(x);
            rows.push(NewDecision {
                account: account.to_string(),
                folder: folder.to_string(),
                uidvalidity: uidvalidity_of(&key),
                uid: key.uid,
                source_key: key.key.clone(),
                message_id: view.message_id.clone(),
                fingerprint: fp,
                subject: view.subject.chars().take(300).collect(),
                sender: view.from_address().unwrap_or_default().to_string(),
                category: d.category.clone(),
                recipient: d.recipient.clone(),
                reason: d.reason.to_string(),
                escalation: d.escalation.as_ref().map(|e| e.level.to_string()),
                dest,
                decision_json: serde_json::to_string(&d).context("cannot encode a decision")?,
                profile_version: profile.version.clone(),
                dry_run: acct.dry_run,
                status,
                booked_provider: d
                    .booking
                    .as_ref()
                    .filter(|_| d.reason == triage::Reason::BookingProvider)
                    .and_then(|b| b.provider.clone()),
            });
            keys.push(key);
        }
    }
    report.decided = rows.len();
    let folder_state = state.map(|s| (account, folder, s));
    let recording = std::time::Instant::now();
    let ids = store.record_with(&rows, &extras, folder_state)?;
    tracing::debug!(target: TIMING, account, folder, decisions = rows.len(),
        ms = recording.elapsed().as_millis() as u64, "recorded decisions");
    acct.note_progress();
    if let Some(ms) = &acct.mail {
        if extras.iter().any(|x| !x.mail.is_empty()) {
            ms.wake.notify_one();
        }
    }
    let mut plans: Vec<Plan> = ids
        .into_iter()
        .zip(rows)
        .zip(keys)
        .enumerate()
        .map(|(i, ((id, row), key))| Plan {
            id,
            key,
            dest: row.dest,
            status: row.status,
            actions: extras.get(i).is_some_and(|x| !x.actions.is_empty()),
        })
        .collect();
    plans.extend(resumed);
    Ok((plans, report))
}

/// The log target of the timings of fetches, batches and moves: `MAILTRIAGE_LOG=
/// warn,mailtriage::timing=debug` shows them without the per-message lines.
const TIMING: &str = "mailtriage::timing";

/// Messages parsed ahead of triage in [`plan`], to check for earlier decisions together.
const LOOKUP_SLICE: usize = 50;

/// The UIDVALIDITY part of an IMAP key ("uidvalidity:uid"); 0 for Maildir.
fn uidvalidity_of(k: &MessageKey) -> u32 {
    k.key
        .split_once(':')
        .filter(|_| k.uid != 0)
        .and_then(|(v, _)| v.parse().ok())
        .unwrap_or(0)
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
        let started = std::time::Instant::now();
        let outcome = src.file(&keys, &dest).await;
        metrics::histogram!(m::FILING_SECONDS).record(started.elapsed().as_secs_f64());
        tracing::debug!(target: TIMING,
            account = src.account(),
            folder = src.folder(),
            dest = dest.join("/"),
            messages = ids.len(),
            ms = started.elapsed().as_millis() as u64,
            ok = outcome.is_ok(),
            "moved a group"
        );
        match outcome {
            Ok(()) => {
                acct.note_progress();
                report.filed += ids.len();
                metrics::counter!(m::FILED, "account" => src.account().to_string())
                    .increment(ids.len() as u64);
                writes.start(acct, ids, Status::Filed, None);
            }
            Err(FileError::Refused(why)) => {
                metrics::counter!(m::FILING_ERRORS, "account" => src.account().to_string(), "kind" => "refused").increment(1);
                warn!(account = src.account(), folder = src.folder(), dest = dest.join("/"), count = ids.len(),
                    "the server refused to file {} message(s): {why}; they stay in {} and will be retried", ids.len(), src.folder());
                report.failed += ids.len();
                writes.start(acct, ids, Status::Failed, Some(why));
            }
            Err(FileError::Broken(e)) => {
                // The plan stays `planned`; recovery finishes it after reconnecting.
                metrics::counter!(m::FILING_ERRORS, "account" => src.account().to_string(), "kind" => "broken").increment(1);
                return Err(e.context(format!("filing into {}", dest.join("/"))));
            }
        }
    }
    Ok(report)
}

/// Finishes what a previous run (or a failed attempt) planned but did not confirm:
/// present in the source → file it (or, on a server without atomic moves whose
/// destination already holds the copy, only remove the source); gone from the source →
/// filed if the destination holds it, otherwise someone else moved it. The destinations
/// are checked with one batched search per folder.
pub async fn recover<S: MailSource>(
    src: &mut S,
    acct: &Account,
    uidvalidity: Option<u32>,
) -> Result<Report> {
    // Actions planned or started before the stop (their messages are still here).
    run_actions(src, acct, None).await?;
    let pending: Vec<StoredDecision> = acct
        .store
        .pending(src.account(), src.folder())?
        .into_iter()
        .filter(|d| uidvalidity.is_none_or(|v| d.uidvalidity == v))
        .collect();
    let mut report = Report::default();
    if pending.is_empty() {
        return Ok(report);
    }
    info!(
        account = src.account(),
        folder = src.folder(),
        count = pending.len(),
        "finishing filing planned before the last stop"
    );
    // In slices, each settled before the next: a session cut in the middle of a large
    // recovery (up to FILE_BATCH planned messages) still moves it forward, and counts as
    // progress, instead of starting over with the whole set every time.
    let mut pending = pending;
    while !pending.is_empty() {
        let rest = pending.split_off(pending.len().min(RECOVERY_SLICE));
        let slice = std::mem::replace(&mut pending, rest);
        report.add(recover_slice(src, acct, slice).await?);
    }
    Ok(report)
}

/// Planned decisions settled per step of [`recover`].
const RECOVERY_SLICE: usize = 500;

/// Settles one slice of planned decisions: filed already (copy found), copied but not
/// removed (remove now), still here (file now), or gone (someone else moved it).
async fn recover_slice<S: MailSource>(
    src: &mut S,
    acct: &Account,
    pending: Vec<StoredDecision>,
) -> Result<Report> {
    let mut report = Report::default();
    let keys: Vec<MessageKey> = pending
        .iter()
        .map(|d| MessageKey {
            uid: d.uid,
            key: d.source_key.clone(),
        })
        .collect();
    let present: std::collections::HashSet<MessageKey> =
        src.present(&keys).await?.into_iter().collect();
    let atomic = src.atomic_moves();
    let mut by_dest: BTreeMap<Vec<String>, Vec<StoredDecision>> = BTreeMap::new();
    for d in pending {
        match d.dest.clone() {
            Some(dest) => by_dest.entry(dest).or_default().push(d),
            None => acct.store.set_status(&[d.id], Status::Left, None)?,
        }
    }
    let mut refile: Vec<Plan> = Vec::new();
    for (dest, rows) in by_dest {
        let key_of = |d: &StoredDecision| MessageKey {
            uid: d.uid,
            key: d.source_key.clone(),
        };
        // Only where a copy could exist: gone from the source, or copy-then-delete moves.
        let ids: Vec<String> = rows
            .iter()
            .filter(|d| !atomic || !present.contains(&key_of(d)))
            .filter_map(|d| d.message_id.as_deref().map(normalize_message_id))
            .collect();
        let there = src.holds_many(&dest, &ids).await?;
        let mut filed: Vec<i64> = Vec::new();
        // Copied before the stop, not yet removed from the source: removed together below.
        let mut strip: Vec<(i64, MessageKey)> = Vec::new();
        for d in rows {
            let key = key_of(&d);
            let in_source = present.contains(&key);
            let copied = match d.message_id.as_deref() {
                Some(id) => there.contains(&normalize_message_id(id)),
                None if in_source && atomic => false,
                None => src.holds_key(&dest, &key).await?,
            };
            match (in_source, copied) {
                (true, false) => refile.push(Plan {
                    id: d.id,
                    key,
                    dest: Some(dest.clone()),
                    status: Status::Planned,
                    actions: true,
                }),
                (true, true) => strip.push((d.id, key)),
                (false, true) => filed.push(d.id),
                (false, false) => {
                    warn!(account = src.account(), folder = src.folder(), uid = d.uid, message_id = d.message_id.as_deref().unwrap_or("-"),
                        "a message planned for {} left the folder before it was filed (moved or deleted by someone else)", dest.join("/"));
                    acct.store.set_status(&[d.id], Status::Gone, None)?;
                }
            }
        }
        if !strip.is_empty() {
            let keys: Vec<MessageKey> = strip.iter().map(|(_, k)| k.clone()).collect();
            let ids: Vec<i64> = strip.iter().map(|(id, _)| *id).collect();
            match src.file_remove_source(&keys).await {
                Ok(()) => filed.extend(ids),
                Err(FileError::Refused(why)) => {
                    acct.store.set_status(&ids, Status::Failed, Some(&why))?
                }
                Err(FileError::Broken(e)) => {
                    // What was settled so far stays settled; the rest is looked at again.
                    acct.store.set_status(&filed, Status::Filed, None)?;
                    return Err(e);
                }
            }
        }
        if !filed.is_empty() {
            acct.store.set_status(&filed, Status::Filed, None)?;
            report.filed += filed.len();
            acct.note_progress();
        }
    }
    let mut writes = StatusWrites::default();
    let filed = file(src, acct, (refile, Report::default()), &mut writes).await;
    writes.finish().await?;
    report.add(filed?);
    Ok(report)
}

/// What a `mark` action sets.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct MarkArg {
    flag: bool,
    keywords: Vec<String>,
}

/// The mailbox actions an escalated decision asks for (pure): a mark when \Flagged or
/// keywords are wanted, a copy when the level has `copy_to` (unless that is where the
/// message is filed anyway).
pub fn plan_actions(
    profile: &Profile,
    d: &crate::triage::Decision,
    dest: Option<&[String]>,
) -> Vec<NewAction> {
    let Some(e) = &d.escalation else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if e.actions.flag || !e.actions.keywords.is_empty() {
        let arg = MarkArg {
            flag: e.actions.flag,
            keywords: e.actions.keywords.clone(),
        };
        out.push(NewAction {
            kind: ActionKind::Mark,
            arg: serde_json::to_string(&arg).unwrap_or_default(),
        });
    }
    let copy_to = profile
        .escalation
        .actions
        .get(e.level as usize)
        .and_then(|a| a.copy_to.clone())
        .filter(|c| !c.is_empty() && Some(c.as_slice()) != dest);
    if let Some(levels) = copy_to {
        out.push(NewAction {
            kind: ActionKind::Copy,
            arg: serde_json::to_string(&levels).unwrap_or_default(),
        });
    }
    out
}

fn key_of(a: &OpenAction) -> MessageKey {
    MessageKey {
        uid: a.uid,
        key: a.source_key.clone(),
    }
}

/// Carries out open escalation actions of this folder (only those of `only`'s decisions,
/// when given): marks grouped by what they set, copies grouped by folder. A copy is
/// journalled `started` before the server is asked; a started copy is looked for in the
/// escalation folder before it is made again, so a crash never leaves two copies.
async fn run_actions<S: MailSource>(
    src: &mut S,
    acct: &Account,
    only: Option<&[i64]>,
) -> Result<()> {
    let store = &acct.store;
    let open = store.open_actions(src.account(), src.folder(), only)?;
    if open.is_empty() {
        return Ok(());
    }
    let keys: Vec<MessageKey> = open.iter().map(key_of).collect();
    let present: std::collections::HashSet<MessageKey> =
        src.present(&keys).await?.into_iter().collect();
    let mut marks: BTreeMap<String, Vec<&OpenAction>> = BTreeMap::new();
    let mut copies: BTreeMap<String, Vec<&OpenAction>> = BTreeMap::new();
    for a in &open {
        if !present.contains(&key_of(a)) {
            store.set_actions(
                &[a.decision_id],
                a.kind,
                ActionStatus::Skipped,
                Some("the message left the folder first"),
            )?;
            continue;
        }
        match a.kind {
            ActionKind::Mark => marks.entry(a.arg.clone()).or_default().push(a),
            ActionKind::Copy => copies.entry(a.arg.clone()).or_default().push(a),
        }
    }
    let account = src.account().to_string();
    for (arg, group) in marks {
        let m: MarkArg = serde_json::from_str(&arg).unwrap_or_default();
        let ids: Vec<i64> = group.iter().map(|a| a.decision_id).collect();
        let keys: Vec<MessageKey> = group.iter().map(|a| key_of(a)).collect();
        match src.mark(&keys, m.flag, &m.keywords).await {
            Ok(skipped) => {
                let note = (!skipped.is_empty())
                    .then(|| format!("the folder does not keep keywords {}", skipped.join(" ")));
                store.set_actions(&ids, ActionKind::Mark, ActionStatus::Done, note.as_deref())?;
            }
            Err(FileError::Refused(why)) => {
                warn!(
                    account,
                    count = ids.len(),
                    "the server refused to flag escalated messages: {why}; retrying later"
                );
                store.set_actions(&ids, ActionKind::Mark, ActionStatus::Failed, Some(&why))?;
            }
            Err(FileError::Broken(e)) => return Err(e.context("flagging escalated messages")),
        }
    }
    for (arg, group) in copies {
        let dest: Vec<String> = serde_json::from_str(&arg).unwrap_or_default();
        if dest.is_empty() {
            let ids: Vec<i64> = group.iter().map(|a| a.decision_id).collect();
            store.set_actions(
                &ids,
                ActionKind::Copy,
                ActionStatus::Skipped,
                Some("no folder"),
            )?;
            continue;
        }
        // Interrupted before: maybe copied already.
        let started: Vec<&OpenAction> = group
            .iter()
            .copied()
            .filter(|a| a.status == ActionStatus::Started)
            .collect();
        let mut copied: Vec<i64> = Vec::new();
        if !started.is_empty() {
            let ids: Vec<String> = started
                .iter()
                .filter_map(|a| a.message_id.as_deref().map(normalize_message_id))
                .collect();
            let there = src.holds_many(&dest, &ids).await?;
            for a in &started {
                let found = match a.message_id.as_deref() {
                    Some(id) if there.contains(&normalize_message_id(id)) => true,
                    // No Message-ID, or a backend that finds copies by key (Maildir).
                    _ => src.holds_key(&dest, &key_of(a)).await?,
                };
                if found {
                    copied.push(a.decision_id);
                }
            }
            store.set_actions(&copied, ActionKind::Copy, ActionStatus::Done, None)?;
        }
        let todo: Vec<&OpenAction> = group
            .into_iter()
            .filter(|a| !copied.contains(&a.decision_id))
            .collect();
        if todo.is_empty() {
            continue;
        }
        let ids: Vec<i64> = todo.iter().map(|a| a.decision_id).collect();
        let keys: Vec<MessageKey> = todo.iter().map(|a| key_of(a)).collect();
        store.set_actions(&ids, ActionKind::Copy, ActionStatus::Started, None)?;
        match src.copy_to(&keys, &dest).await {
            Ok(()) => {
                store.set_actions(&ids, ActionKind::Copy, ActionStatus::Done, None)?;
                info!(
                    account,
                    count = ids.len(),
                    folder = dest.join("/"),
                    "copied escalated message(s)"
                );
            }
            Err(FileError::Refused(why)) => {
                warn!(
                    account,
                    count = ids.len(),
                    folder = dest.join("/"),
                    "the server refused to copy escalated messages: {why}; retrying later"
                );
                store.set_actions(&ids, ActionKind::Copy, ActionStatus::Failed, Some(&why))?;
            }
            Err(FileError::Broken(e)) => {
                return Err(e.context(format!("copying into {}", dest.join("/"))))
            }
        }
    }
    Ok(())
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

    fn decide(profile: &Profile, body: &str) -> crate::triage::Decision {
        let raw = format!("From: pat@example.com\r\nSubject: Heater\r\n\r\n{body}\r\n");
        let view = MessageView::parse(raw.as_bytes(), 65536);
        triage::triage(&view, profile, &Context::default())
    }

    fn profile(mode: &str) -> Profile {
        let yaml = format!(
            "business: {{name: B}}\nteam:\n  - {{name: Mark Johnson, email: m@example.com, roles: [owner]}}\nescalation:\n  mode: {mode}\n  actions:\n    URGENT: {{flag: true, copy_to: ESCALATED, notify: [recipient]}}\n    HIGH: {{flag: false, keywords: []}}\n"
        );
        Profile::from_bytes("p.yaml", yaml.as_bytes()).expect("valid")
    }

    #[test]
    fn actions_follow_the_level_and_manual_only_plans_none() {
        let p = profile("keyword_only");
        let d = decide(&p, "I will call my lawyer.");
        let acts = plan_actions(&p, &d, d.folder_path.as_deref());
        assert_eq!(
            acts,
            vec![
                NewAction {
                    kind: ActionKind::Mark,
                    arg: r#"{"flag":true,"keywords":["$Escalated","$Priority_URGENT"]}"#.into()
                },
                NewAction {
                    kind: ActionKind::Copy,
                    arg: r#"["ESCALATED"]"#.into()
                },
            ]
        );
        // Copying into the folder it is filed in would make a duplicate: no copy.
        let esc = vec!["ESCALATED".to_string()];
        assert_eq!(plan_actions(&p, &d, Some(&esc)).len(), 1);
        // HIGH with neither flag nor keywords: nothing to do on the mailbox.
        let d = decide(&p, "This is unacceptable.");
        assert_eq!(
            d.escalation.as_ref().map(|e| e.level),
            Some(crate::triage::decision::Level::HIGH)
        );
        assert!(plan_actions(&p, &d, None).is_empty());
        let manual = profile("manual_only");
        let d = decide(&manual, "I will call my lawyer.");
        assert!(d.escalation.is_none());
        assert!(plan_actions(&manual, &d, None).is_empty());
    }
}
