//! Escalation actions on the message where it arrived: \Flagged and keywords, and a
//! copy into the escalation folder, journalled so a crash never repeats or loses one.

use std::collections::BTreeMap;

use anyhow::Result;
use tracing::{info, warn};

use super::Account;
use crate::mailbox::{normalize_message_id, FileError, MailSource, MessageKey, Signature, Wanted};
use crate::profile::Profile;
use crate::store::outbox::{ActionKind, ActionStatus, NewAction, OpenAction};

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

/// Actions whose recorded argument cannot be read (a damaged state database) are skipped,
/// saying why, instead of being carried out with a guess.
fn skip_unreadable(
    acct: &Account,
    account: &str,
    kind: ActionKind,
    ids: &[i64],
    arg: &str,
    e: &serde_json::Error,
) -> Result<()> {
    let why = format!("its recorded argument {arg:?} cannot be read: {e}");
    warn!(
        account,
        count = ids.len(),
        "skipping escalation actions: {why}"
    );
    acct.store
        .set_actions(ids, kind, ActionStatus::Skipped, Some(&why))
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
pub(super) async fn run_actions<S: MailSource>(
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
        let ids: Vec<i64> = group.iter().map(|a| a.decision_id).collect();
        let m: MarkArg = match serde_json::from_str(&arg) {
            Ok(m) => m,
            Err(e) => {
                skip_unreadable(acct, &account, ActionKind::Mark, &ids, &arg, &e)?;
                continue;
            }
        };
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
        let dest: Vec<String> = match serde_json::from_str(&arg) {
            Ok(dest) => dest,
            Err(e) => {
                let ids: Vec<i64> = group.iter().map(|a| a.decision_id).collect();
                skip_unreadable(acct, &account, ActionKind::Copy, &ids, &arg, &e)?;
                continue;
            }
        };
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
            let keys: Vec<MessageKey> = started.iter().map(|a| key_of(a)).collect();
            let ids: Vec<Option<String>> = started
                .iter()
                .map(|a| a.message_id.as_deref().map(normalize_message_id))
                .collect();
            let wanted: Vec<Wanted<'_>> = started
                .iter()
                .zip(&keys)
                .zip(&ids)
                .map(|((a, key), id)| Wanted {
                    key,
                    message_id: id.as_deref(),
                    signature: Signature::decode(&a.signature),
                })
                .collect();
            let found = src.find_copies(&dest, &wanted).await?;
            for (a, f) in started.iter().zip(found) {
                if f.is_some() {
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
                    folder = crate::mailbox::shown(&src.naming(), &dest),
                    "copied escalated message(s)"
                );
            }
            Err(FileError::Refused(why)) => {
                warn!(
                    account,
                    count = ids.len(),
                    folder = crate::mailbox::shown(&src.naming(), &dest),
                    "the server refused to copy escalated messages: {why}; retrying later"
                );
                store.set_actions(&ids, ActionKind::Copy, ActionStatus::Failed, Some(&why))?;
            }
            Err(FileError::Broken(e)) => {
                return Err(e.context(format!(
                    "copying into {}",
                    crate::mailbox::shown(&src.naming(), &dest)
                )))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::MessageView;
    use crate::triage::{self, Context};

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
            Some(crate::matching::Level::HIGH)
        );
        assert!(plan_actions(&p, &d, None).is_empty());
        let manual = profile("manual_only");
        let d = decide(&manual, "I will call my lawyer.");
        assert!(d.escalation.is_none());
        assert!(plan_actions(&manual, &d, None).is_empty());
    }
}
