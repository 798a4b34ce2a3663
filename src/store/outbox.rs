//! The journal of escalation actions and the outbox of mail to send.
//!
//! Both are written in the same transaction as the decision they follow from, before the
//! mail server is touched ("plan, then act"): a crash at any point leaves a row that says
//! what is still to do, and the unique keys make sure nothing is planned twice.
//!
//! - `actions`: one row per (decision, kind) — `mark` (set \Flagged and keywords) and
//!   `copy` (copy into the escalation folder). `planned` → `done`; a copy is marked
//!   `started` just before the server is asked, so that after a crash recovery looks in
//!   the escalation folder before copying again.
//! - `outbox`: one row per (purpose, reference, recipient) — an alert per message and
//!   member, an acknowledgement per sender and day, a digest per member and day. The
//!   message is rendered when queued, so a resend is byte-identical (same Message-ID).

use anyhow::{Context, Result};
use rusqlite::{params, OptionalExtension};

use super::{now, Store, MAX_ATTEMPTS};

/// What an action does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ActionKind {
    /// Set \Flagged and/or keywords on the message where it is.
    Mark,
    /// Copy the message into a folder (the original is filed as usual).
    Copy,
}

impl ActionKind {
    /// The kind as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Mark => "mark",
            ActionKind::Copy => "copy",
        }
    }

    fn parse(s: &str) -> ActionKind {
        if s == "copy" {
            ActionKind::Copy
        } else {
            ActionKind::Mark
        }
    }
}

/// Where an action stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionStatus {
    Planned,
    /// The server was (possibly) asked; the outcome is not recorded yet.
    Started,
    Done,
    /// Not carried out on purpose (the message left, the server cannot).
    Skipped,
    /// Refused by the server MAX_ATTEMPTS times.
    Failed,
}

impl ActionStatus {
    /// The status as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionStatus::Planned => "planned",
            ActionStatus::Started => "started",
            ActionStatus::Done => "done",
            ActionStatus::Skipped => "skipped",
            ActionStatus::Failed => "failed",
        }
    }

    fn parse(s: &str) -> ActionStatus {
        match s {
            "started" => ActionStatus::Started,
            "done" => ActionStatus::Done,
            "skipped" => ActionStatus::Skipped,
            "failed" => ActionStatus::Failed,
            _ => ActionStatus::Planned,
        }
    }
}

/// An action to record with its decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAction {
    pub kind: ActionKind,
    /// JSON: `{"flag":true,"keywords":[…]}` for a mark, the folder levels for a copy.
    pub arg: String,
}

/// A message to queue for sending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMail {
    /// `alert`, `ack` or `digest`.
    pub purpose: String,
    /// What it is about: a message fingerprint, a date, …
    pub ref_key: String,
    /// The recipient's address, lowercased.
    pub rcpt: String,
    pub account: String,
    /// The envelope sender (MAIL FROM).
    pub envelope_from: String,
    /// The whole message, ready to send.
    pub message: Vec<u8>,
    /// What the rate limits count ('' for none): an alert's recipient and the sender it
    /// is about, an acknowledgement's mailbox ([`crate::outbox::reflect::mailbox_key`]).
    pub about: String,
    /// When non-zero: not queued if mail of this purpose with the same `about` was queued
    /// within this many seconds.
    pub once_per_secs: u64,
    /// When non-zero: at most this many messages of this purpose are queued per hour.
    pub per_hour: u32,
    /// When non-zero: at most this many per hour whose `about` is at the same domain.
    pub per_domain_per_hour: u32,
}

/// Why a message was not queued.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Held {
    /// Mail with the same `about` went out `secs` ago.
    Recent { secs: i64 },
    /// The hourly cap, in all or for one domain.
    Cap { what: String, max: u32 },
}

/// Everything recorded together with one decision.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extras {
    pub actions: Vec<NewAction>,
    pub mail: Vec<NewMail>,
}

/// An action still to carry out, with the message it applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenAction {
    pub decision_id: i64,
    pub kind: ActionKind,
    pub arg: String,
    pub status: ActionStatus,
    pub uid: u32,
    pub source_key: String,
    pub message_id: Option<String>,
    /// The decision's message signature ('' when recorded before version 5).
    pub signature: String,
}

/// A queued message due for (another) attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutMail {
    pub id: i64,
    pub purpose: String,
    pub rcpt: String,
    pub envelope_from: String,
    pub message: Vec<u8>,
    pub attempts: i64,
}

/// Outbox rows by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    pub pending: i64,
    pub sent: i64,
    pub failed: i64,
}

/// Inserts an action and the queued mail of one decision (inside the caller's transaction).
pub(super) fn insert_extras(tx: &rusqlite::Transaction<'_>, id: i64, x: &Extras) -> Result<()> {
    let t = now();
    for a in &x.actions {
        tx.prepare_cached(
            "INSERT OR IGNORE INTO actions (decision_id, kind, arg, status, updated_at)
             VALUES (?1, ?2, ?3, 'planned', ?4)",
        )?
        .execute(params![id, a.kind.as_str(), a.arg, t])
        .context("cannot record an escalation action")?;
    }
    for m in &x.mail {
        insert_mail(tx, m, t)?;
    }
    Ok(())
}

/// Whether a rate limit holds `m` back.
fn held(conn: &rusqlite::Connection, m: &NewMail, t: i64) -> Result<Option<Held>> {
    if m.once_per_secs > 0 && !m.about.is_empty() {
        let since = t.saturating_sub(i64::try_from(m.once_per_secs).unwrap_or(i64::MAX));
        let last: Option<i64> = conn
            .prepare_cached(
                "SELECT max(created_at) FROM outbox
                 WHERE purpose = ?1 AND about = ?2 AND created_at > ?3",
            )?
            .query_row(params![m.purpose, m.about, since], |r| r.get(0))
            .context("cannot read the outbox")?;
        if let Some(at) = last {
            return Ok(Some(Held::Recent {
                secs: (t - at).max(0),
            }));
        }
    }
    let hour_ago = t - 3600;
    if m.per_hour > 0 {
        let n: i64 = conn
            .prepare_cached("SELECT count(*) FROM outbox WHERE purpose = ?1 AND created_at > ?2")?
            .query_row(params![m.purpose, hour_ago], |r| r.get(0))
            .context("cannot read the outbox")?;
        if n >= i64::from(m.per_hour) {
            return Ok(Some(Held::Cap {
                what: "in all".into(),
                max: m.per_hour,
            }));
        }
    }
    let domain = crate::outbox::reflect::domain_of(&m.about);
    if m.per_domain_per_hour > 0 && !domain.is_empty() {
        let n: i64 = conn
            .prepare_cached(
                "SELECT count(*) FROM outbox
                 WHERE purpose = ?1 AND created_at > ?2 AND about LIKE ?3 ESCAPE '\\'",
            )?
            .query_row(
                params![m.purpose, hour_ago, format!("%@{}", like_escaped(domain))],
                |r| r.get(0),
            )
            .context("cannot read the outbox")?;
        if n >= i64::from(m.per_domain_per_hour) {
            return Ok(Some(Held::Cap {
                what: format!("to {domain}"),
                max: m.per_domain_per_hour,
            }));
        }
    }
    Ok(None)
}

/// `s` with LIKE's wildcards escaped (`\` is the escape character).
fn like_escaped(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// Queues one message unless the same (purpose, reference, recipient) is queued already
/// or a rate limit holds it back; true when it was queued now.
fn insert_mail(conn: &rusqlite::Connection, m: &NewMail, t: i64) -> Result<bool> {
    match held(conn, m, t)? {
        None => {}
        Some(Held::Recent { secs }) => {
            let why = if m.purpose == "alert" {
                "escalation.alert_once_per"
            } else {
                "one a day per sender"
            };
            tracing::info!(
                account = %m.account,
                rcpt = %m.rcpt,
                "not sending {} another {}: one about the same sender went out {} min ago ({why})",
                m.rcpt,
                m.purpose,
                secs / 60
            );
            return Ok(false);
        }
        Some(Held::Cap { what, max }) => {
            tracing::warn!(
                account = %m.account,
                rcpt = %m.rcpt,
                "not sending {} an {}: {max} went out {what} in the last hour, the most allowed (acknowledgement.max_per_hour / max_per_domain_per_hour)",
                m.rcpt,
                m.purpose
            );
            return Ok(false);
        }
    }
    let n = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO outbox (purpose, ref_key, rcpt, account, envelope_from,
                message, status, next_attempt_at, created_at, about)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', ?7, ?7, ?8)",
        )?
        .execute(params![
            m.purpose,
            m.ref_key,
            m.rcpt,
            m.account,
            m.envelope_from,
            m.message,
            t,
            m.about
        ])
        .context("cannot queue a message in the outbox")?;
    Ok(n > 0)
}

impl Store {
    /// Actions of a folder still to carry out (planned, or started and unconfirmed),
    /// optionally only those of some decisions.
    pub fn open_actions(
        &self,
        account: &str,
        folder: &str,
        ids: Option<&[i64]>,
    ) -> Result<Vec<OpenAction>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT a.decision_id, a.kind, a.arg, a.status, d.uid, d.source_key, d.message_id,
                d.signature
             FROM actions a JOIN decisions d ON d.id = a.decision_id
             WHERE a.status IN ('planned', 'started') AND a.attempts < ?3
               AND d.account = ?1 AND d.folder = ?2
             ORDER BY a.decision_id, a.kind",
        )?;
        let rows = stmt
            .query_map(params![account, folder, MAX_ATTEMPTS], |r| {
                Ok(OpenAction {
                    decision_id: r.get(0)?,
                    kind: ActionKind::parse(&r.get::<_, String>(1)?),
                    arg: r.get(2)?,
                    status: ActionStatus::parse(&r.get::<_, String>(3)?),
                    uid: r.get::<_, i64>(4)? as u32,
                    source_key: r.get(5)?,
                    message_id: r.get(6)?,
                    signature: r.get(7)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(match ids {
            None => rows,
            Some(ids) => {
                let want: std::collections::HashSet<i64> = ids.iter().copied().collect();
                rows.into_iter()
                    .filter(|a| want.contains(&a.decision_id))
                    .collect()
            }
        })
    }

    /// Sets the status of actions of one kind (`Failed` counts an attempt and stays
    /// open until MAX_ATTEMPTS).
    pub fn set_actions(
        &self,
        ids: &[i64],
        kind: ActionKind,
        status: ActionStatus,
        error: Option<&str>,
    ) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "UPDATE actions SET
                    status = CASE WHEN ?3 = 'failed' AND attempts + 1 < ?6 THEN 'planned' ELSE ?3 END,
                    attempts = attempts + (CASE WHEN ?3 = 'failed' THEN 1 ELSE 0 END),
                    last_error = ?4, updated_at = ?5
                 WHERE decision_id = ?1 AND kind = ?2",
            )?;
            let t = now();
            for id in ids {
                stmt.execute(params![
                    id,
                    kind.as_str(),
                    status.as_str(),
                    error,
                    t,
                    MAX_ATTEMPTS
                ])?;
            }
        }
        tx.commit().context("cannot update escalation actions")?;
        Ok(())
    }

    /// Status of one action (tests and `explain`).
    pub fn action_status(&self, decision_id: i64, kind: ActionKind) -> Result<Option<String>> {
        let conn = self.conn()?;
        conn.query_row(
            "SELECT status FROM actions WHERE decision_id = ?1 AND kind = ?2",
            params![decision_id, kind.as_str()],
            |r| r.get(0),
        )
        .optional()
        .context("cannot read an action")
    }

    /// Queues a message on its own (digests); false when it was queued before.
    pub fn enqueue(&self, m: &NewMail) -> Result<bool> {
        let conn = self.conn()?;
        insert_mail(&conn, m, now())
    }

    /// Is a message with this key queued (in any state)?
    pub fn queued(&self, purpose: &str, ref_key: &str, rcpt: &str) -> Result<bool> {
        let conn = self.conn()?;
        Ok(conn
            .query_row(
                "SELECT 1 FROM outbox WHERE purpose = ?1 AND ref_key = ?2 AND rcpt = ?3",
                params![purpose, ref_key, rcpt],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// Pending messages due at `at`, oldest first.
    pub fn due_mail(&self, at: i64, limit: usize) -> Result<Vec<OutMail>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT id, purpose, rcpt, envelope_from, message, attempts FROM outbox
             WHERE status = 'pending' AND next_attempt_at <= ?1 ORDER BY id LIMIT ?2",
        )?;
        let rows = stmt
            .query_map(params![at, i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
                Ok(OutMail {
                    id: r.get(0)?,
                    purpose: r.get(1)?,
                    rcpt: r.get(2)?,
                    envelope_from: r.get(3)?,
                    message: r.get(4)?,
                    attempts: r.get(5)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// When the next pending message is due, if any.
    pub fn next_due(&self) -> Result<Option<i64>> {
        let conn = self.conn()?;
        conn.query_row(
            "SELECT min(next_attempt_at) FROM outbox WHERE status = 'pending'",
            [],
            |r| r.get(0),
        )
        .context("cannot read the outbox")
    }

    /// Records that the server accepted a message. One statement, right after the
    /// server's answer: the window in which a crash causes a resend is this write.
    pub fn mark_sent(&self, id: i64) -> Result<()> {
        let conn = self.conn()?;
        conn.execute(
            "UPDATE outbox SET status = 'sent', sent_at = ?2, attempts = attempts + 1,
                last_error = NULL WHERE id = ?1",
            params![id, now()],
        )
        .context("cannot record a sent message")?;
        Ok(())
    }

    /// Records a failed attempt: retried at `next_at`, or given up (`failed`).
    pub fn mark_attempt_failed(
        &self,
        id: i64,
        error: &str,
        next_at: i64,
        give_up: bool,
    ) -> Result<()> {
        let conn = self.conn()?;
        conn.execute(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, next_attempt_at = ?3,
                status = CASE WHEN ?4 THEN 'failed' ELSE 'pending' END WHERE id = ?1",
            params![id, error, next_at, give_up],
        )
        .context("cannot record a failed send")?;
        Ok(())
    }

    /// Puts every pending message due before `until` off to `until` (an outage: no
    /// point trying the rest of the queue now); returns how many.
    pub fn defer_due(&self, until: i64) -> Result<usize> {
        let conn = self.conn()?;
        conn.execute(
            "UPDATE outbox SET next_attempt_at = ?1 WHERE status = 'pending' AND next_attempt_at < ?1",
            params![until],
        )
        .context("cannot defer the outbox")
    }

    /// Outbox rows by status.
    pub fn outbox_counts(&self) -> Result<OutboxCounts> {
        let conn = self.conn()?;
        let mut c = OutboxCounts::default();
        let mut stmt =
            conn.prepare_cached("SELECT status, count(*) FROM outbox GROUP BY status")?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        for (s, n) in rows {
            match s.as_str() {
                "pending" => c.pending = n,
                "sent" => c.sent = n,
                _ => c.failed += n,
            }
        }
        Ok(c)
    }

    /// Decisions of an account between two times (a digest's day): (recipient,
    /// category, escalation level, subject, sender), oldest first.
    pub fn decisions_between(
        &self,
        account: &str,
        from: i64,
        until: i64,
    ) -> Result<Vec<DigestRow>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT recipient, category, escalation, subject, sender, dest_folder FROM decisions
             WHERE account = ?1 AND decided_at >= ?2 AND decided_at < ?3 AND dry_run = 0
             ORDER BY id",
        )?;
        let rows = stmt
            .query_map(params![account, from, until], |r| {
                Ok(DigestRow {
                    recipient: r.get(0)?,
                    category: r.get(1)?,
                    escalation: r.get(2)?,
                    subject: r.get(3)?,
                    sender: r.get(4)?,
                    folder: r.get(5)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }
}

/// One decision as a digest sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestRow {
    pub recipient: Option<String>,
    pub category: String,
    pub escalation: Option<String>,
    pub subject: String,
    pub sender: String,
    pub folder: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::super::{NewDecision, Status};
    use super::*;

    fn store(name: &str) -> Store {
        let dir =
            std::env::temp_dir().join(format!("mailtriage-outbox-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Store::open(&dir.join("state.db")).expect("opens")
    }

    fn decision(key: &str) -> NewDecision {
        NewDecision {
            account: "a".into(),
            folder: "INBOX".into(),
            uidvalidity: 1,
            uid: 1,
            source_key: key.into(),
            message_id: Some(format!("{key}@x")),
            fingerprint: format!("{key}@x"),
            signature: String::new(),
            subject: "s".into(),
            sender: "c@example.com".into(),
            category: "SUPPORT".into(),
            recipient: Some("Mark".into()),
            reason: "category_role".into(),
            escalation: Some("URGENT".into()),
            dest: Some(vec!["SUPPORT".into()]),
            decision_json: "{}".into(),
            profile_version: "v".into(),
            dry_run: false,
            status: Status::Planned,
            booked_provider: None,
        }
    }

    fn mail(rcpt: &str) -> NewMail {
        NewMail {
            purpose: "alert".into(),
            ref_key: "m1@x".into(),
            rcpt: rcpt.into(),
            account: "a".into(),
            envelope_from: "alerts@example.com".into(),
            message: b"Subject: x\r\n\r\nbody\r\n".to_vec(),
            about: "c@example.com".into(),
            once_per_secs: 0,
            per_hour: 0,
            per_domain_per_hour: 0,
        }
    }

    #[test]
    fn a_decision_recorded_twice_queues_its_alert_once() {
        let s = store("once");
        let x = Extras {
            actions: vec![NewAction {
                kind: ActionKind::Copy,
                arg: "[\"ESC\"]".into(),
            }],
            mail: vec![mail("mark@example.com")],
        };
        let ids = s
            .record_with(&[decision("k1")], std::slice::from_ref(&x), None)
            .expect("records");
        s.record_with(&[decision("k1")], &[x], None)
            .expect("records again");
        assert_eq!(s.outbox_counts().expect("counts").pending, 1);
        let open = s.open_actions("a", "INBOX", None).expect("reads");
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].decision_id, ids[0]);
        // A refused copy stays open until MAX_ATTEMPTS, then is failed for good.
        for _ in 0..MAX_ATTEMPTS {
            s.set_actions(&ids, ActionKind::Copy, ActionStatus::Failed, Some("NO"))
                .expect("updates");
        }
        assert!(s
            .open_actions("a", "INBOX", None)
            .expect("reads")
            .is_empty());
        assert_eq!(
            s.action_status(ids[0], ActionKind::Copy).expect("reads"),
            Some("failed".into())
        );
    }

    #[test]
    fn outbox_retries_then_sends_once() {
        let s = store("retry");
        assert!(s.enqueue(&mail("a@example.com")).expect("queues"));
        assert!(!s.enqueue(&mail("a@example.com")).expect("dedupes"));
        let due = s.due_mail(now(), 10).expect("reads");
        assert_eq!(due.len(), 1);
        s.mark_attempt_failed(due[0].id, "connection refused", now() + 60, false)
            .expect("updates");
        assert!(s.due_mail(now(), 10).expect("reads").is_empty());
        assert_eq!(s.next_due().expect("reads"), Some(now() + 60));
        let later = s.due_mail(now() + 61, 10).expect("reads");
        assert_eq!(later[0].attempts, 1);
        s.mark_sent(later[0].id).expect("updates");
        assert!(s.due_mail(now() + 3600, 10).expect("reads").is_empty());
        let c = s.outbox_counts().expect("counts");
        assert_eq!((c.pending, c.sent, c.failed), (0, 1, 0));
    }

    #[test]
    fn alerts_about_one_sender_are_limited_per_member() {
        let s = store("limit");
        // As compose::alert counts: the member and the sender the alert is about.
        let alert = |ref_key: &str, rcpt: &str, about: &str| NewMail {
            ref_key: ref_key.into(),
            about: format!("{rcpt} {about}"),
            once_per_secs: 3600,
            ..mail(rcpt)
        };
        // Three escalated messages from one customer in a row: one alert to Mark.
        let x = |m: NewMail| Extras {
            actions: Vec::new(),
            mail: vec![m],
        };
        s.record_with(
            &[decision("k1"), decision("k2"), decision("k3")],
            &[
                x(alert("m1@x", "mark@example.com", "angry@example.net")),
                x(alert("m2@x", "mark@example.com", "angry@example.net")),
                // Another member about the same sender, and Mark about someone else.
                x(alert("m3@x", "sarah@example.com", "angry@example.net")),
            ],
            None,
        )
        .expect("records");
        assert!(s
            .enqueue(&alert("m4@x", "mark@example.com", "other@example.net"))
            .expect("queues"));
        assert!(!s
            .enqueue(&alert("m5@x", "mark@example.com", "angry@example.net"))
            .expect("limited"));
        // With no limit every alert is queued.
        assert!(s
            .enqueue(&NewMail {
                once_per_secs: 0,
                ..alert("m6@x", "mark@example.com", "angry@example.net")
            })
            .expect("queues"));
        assert_eq!(s.outbox_counts().expect("counts").pending, 4);
        let limited_at = |secs_ago: i64| {
            s.conn()
                .expect("conn")
                .execute(
                    "UPDATE outbox SET created_at = ?1 WHERE about LIKE '% angry@example.net'",
                    params![now() - secs_ago],
                )
                .expect("ages the rows");
        };
        // An hour later Mark may hear about that sender again.
        limited_at(3601);
        assert!(s
            .enqueue(&alert("m7@x", "mark@example.com", "angry@example.net"))
            .expect("queues"));
    }
}
