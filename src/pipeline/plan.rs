//! The plan step: triage a parsed batch against one history snapshot and record every
//! decision (with its escalation actions and the mail it sends) before anything is filed.

use anyhow::{Context as _, Result};
use tracing::info;

use super::{log_decision, plan_actions, uidvalidity_of, Account, Parsed, Plan, Report, TIMING};
use crate::daemon::metrics as m;
use crate::mailbox::names::Naming;
use crate::mailbox::MessageKey;
use crate::mailbox::Signature;
use crate::outbox::MailInput;
use crate::store::outbox::Extras;
use crate::store::{FolderState, NewDecision, Status, StoredDecision};
use crate::triage::{self, Context, History};

/// Triages and records a parsed batch; returns what to file.
pub(super) fn plan(
    account: &str,
    folder: &str,
    acct: &Account,
    parsed: Vec<Parsed>,
    naming: &Naming,
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
    let mut in_batch: std::collections::HashSet<(String, Signature)> = Default::default();
    let mut parsed = parsed.into_iter().peekable();
    while parsed.peek().is_some() {
        let slice: Vec<Parsed> = parsed.by_ref().take(LOOKUP_SLICE).collect();
        let sigs: Vec<String> = slice.iter().map(|p| p.signature.encode()).collect();
        let fps: Vec<(&str, &str)> = slice
            .iter()
            .zip(&sigs)
            .map(|(p, s)| (p.fingerprint.as_str(), s.as_str()))
            .collect();
        let earlier = store.find_by_fingerprints(account, &fps)?;
        for ((m, earlier), sig) in slice.into_iter().zip(earlier).zip(sigs) {
            let Parsed {
                key,
                view,
                fingerprint: fp,
                signature,
            } = m;
            let uidvalidity = uidvalidity_of(&key);
            match seen_before(earlier.as_ref(), &key, uidvalidity, folder) {
                Seen::New if !in_batch.insert((fp.clone(), signature)) => {
                    // Another copy of a message earlier in this batch: the same rule as
                    // for one decided in an earlier batch (below).
                    report.skipped += 1;
                    info!(account, folder, uid = key.uid, message_id = %fp,
                        "another copy of a message decided just now; leaving it where it is");
                    continue;
                }
                Seen::New => {}
                Seen::Leave(prev) => {
                    report.skipped += 1;
                    info!(account, folder, uid = key.uid, message_id = %fp, status = prev.status.as_str(),
                        "already decided earlier; leaving it where it is");
                    continue;
                }
                Seen::Moved(prev) => {
                    // A planned move whose source position changed (UIDVALIDITY): carry it out.
                    store.update_source(prev.id, uidvalidity, key.uid, &key.key)?;
                    resumed.push(Plan {
                        id: prev.id,
                        key: key.clone(),
                        dest: prev.dest.clone(),
                        status: Status::Planned,
                        actions: true,
                    });
                    continue;
                }
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
            log_decision(account, folder, &key, &view, &d, acct.dry_run, naming);
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
                                trusted_authserv: &acct.config.trusted_authserv_ids,
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
                signature: sig,
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

/// Messages parsed ahead of triage in [`plan`], to check for earlier decisions together.
const LOOKUP_SLICE: usize = 50;

/// What an earlier decision about the same message (same fingerprint and signature)
/// means for a message found in the watched folder.
#[derive(Debug)]
enum Seen<'a> {
    /// Never decided: triage it.
    New,
    /// Decided before and then put back here (moved back by a person, or copied here),
    /// or a second copy of a message still being filed: leave it where it is.
    Leave(&'a StoredDecision),
    /// The same planned move, the folder renumbered (UIDVALIDITY changed): carry it out
    /// at the new position.
    Moved(&'a StoredDecision),
}

/// The one rule for mail seen before, shared by the daemon and `run --once` whatever
/// batches the mail came in: a decision that is final, or made at this very position,
/// means "leave it"; a planned one from the same folder under another UIDVALIDITY is
/// the same move renumbered; a planned one at another position of the same numbering
/// is another copy, left where it is.
fn seen_before<'a>(
    prev: Option<&'a StoredDecision>,
    key: &MessageKey,
    uidvalidity: u32,
    folder: &str,
) -> Seen<'a> {
    let Some(prev) = prev else {
        return Seen::New;
    };
    let renumbered = !prev.status.is_final()
        && prev.source_key != key.key
        && prev.folder == folder
        && uidvalidity != 0
        && prev.uidvalidity != uidvalidity;
    if renumbered {
        Seen::Moved(prev)
    } else {
        Seen::Leave(prev)
    }
}
