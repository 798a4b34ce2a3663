//! Recovery: finishing what a previous run (or a failed attempt) planned but did not
//! confirm, without duplicating or losing a message.

use std::collections::BTreeMap;

use anyhow::Result;
use tracing::{info, warn};

use super::{file, run_actions, Account, Plan, Report, StatusWrites};
use crate::mailbox::{
    normalize_message_id, FileError, Found, MailSource, MessageKey, Signature, Wanted,
};
use crate::store::{Status, StoredDecision};

/// Finishes what a previous run (or a failed attempt) planned but did not confirm:
/// present in the source → file it (or, on a server without atomic moves whose
/// destination already holds the copy, only remove the source); gone from the source →
/// filed if the destination holds it, otherwise someone else moved it. The destinations
/// are checked with one batched search per folder, each message found by its
/// Message-ID and signature (by size and signature when it has no Message-ID), so a
/// move that completed just before a crash is recorded as filed, with where it went.
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

/// Where a message is in a folder: (UIDVALIDITY, UID), when known.
type Position = Option<(u32, u32)>;

fn key_of(d: &StoredDecision) -> MessageKey {
    MessageKey {
        uid: d.uid,
        key: d.source_key.clone(),
    }
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
    let keys: Vec<MessageKey> = pending.iter().map(key_of).collect();
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
        let keys: Vec<MessageKey> = rows.iter().map(key_of).collect();
        let ids: Vec<Option<String>> = rows
            .iter()
            .map(|d| d.message_id.as_deref().map(normalize_message_id))
            .collect();
        // Only where a copy could exist: gone from the source, or copy-then-delete moves.
        let look: Vec<usize> = (0..rows.len())
            .filter(|&i| !atomic || !present.contains(&keys[i]))
            .collect();
        let wanted: Vec<Wanted<'_>> = look
            .iter()
            .map(|&i| Wanted {
                key: &keys[i],
                message_id: ids[i].as_deref(),
                signature: Signature::decode(&rows[i].signature),
            })
            .collect();
        let found = src.find_copies(&dest, &wanted).await?;
        let mut there: Vec<Option<Found>> = vec![None; rows.len()];
        for (&i, f) in look.iter().zip(found) {
            there[i] = f;
        }
        let mut filed: Vec<(i64, Position)> = Vec::new();
        // Copied before the stop, not yet removed from the source: removed together below.
        let mut strip: Vec<(i64, MessageKey, Position)> = Vec::new();
        for ((d, key), copy) in rows.iter().zip(keys).zip(there) {
            let in_source = present.contains(&key);
            match (in_source, copy) {
                (true, None) => refile.push(Plan {
                    id: d.id,
                    key,
                    dest: Some(dest.clone()),
                    status: Status::Planned,
                    actions: true,
                }),
                (true, Some(c)) => strip.push((d.id, key, c.position)),
                (false, Some(c)) => filed.push((d.id, c.position)),
                (false, None) => {
                    warn!(account = src.account(), folder = src.folder(), uid = d.uid, message_id = d.message_id.as_deref().unwrap_or("-"),
                        "a message planned for {} left the folder before it was filed (moved or deleted by someone else)", crate::mailbox::shown(&src.naming(), &dest));
                    acct.store.set_status(&[d.id], Status::Gone, None)?;
                }
            }
        }
        if !strip.is_empty() {
            let keys: Vec<MessageKey> = strip.iter().map(|(_, k, _)| k.clone()).collect();
            match src.file_remove_source(&keys).await {
                Ok(()) => filed.extend(strip.iter().map(|(id, _, at)| (*id, *at))),
                Err(FileError::Refused(why)) => {
                    let ids: Vec<i64> = strip.iter().map(|(id, _, _)| *id).collect();
                    acct.store.set_status(&ids, Status::Failed, Some(&why))?
                }
                Err(FileError::Broken(e)) => {
                    // What was settled so far stays settled; the rest is looked at again.
                    acct.store.set_filed(&filed)?;
                    return Err(e);
                }
            }
        }
        if !filed.is_empty() {
            acct.store.set_filed(&filed)?;
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
