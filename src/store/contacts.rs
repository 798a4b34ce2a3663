//! Customers and their providers (booking): every assignment is counted per (customer,
//! provider); from [`LEARN_AFTER`] assignments on, the provider is a learned preference.
//!
//! "Not overridden" means: the profile has no `booking.contacts` entry for the customer
//! (that entry wins over anything learned). Staff moving a message to another provider's
//! folder is not detected yet, so it does not unlearn a preference.

use std::collections::BTreeMap;

use anyhow::{Context as _, Result};
use rusqlite::{params, Connection};
use serde::Serialize;

use super::{now, NewDecision, Status, Store};

/// Assignments to the same provider that make a learned preference.
pub const LEARN_AFTER: i64 = 2;

/// How often a customer was assigned to one provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProviderCount {
    pub member: String,
    pub assignments: i64,
    /// Unix time of the first and latest assignment.
    pub first_at: i64,
    pub last_at: i64,
    /// When it became a learned preference (None: not yet).
    pub learned_at: Option<i64>,
}

/// Counts the booking assignments among `rows` (real ones: not dry runs).
pub(super) fn count_assignments(conn: &Connection, rows: &[NewDecision]) -> Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO contact_providers (contact, member, assignments, first_at, last_at, learned_at)
         VALUES (?1, ?2, 1, ?3, ?3, NULL)
         ON CONFLICT (contact, member) DO UPDATE SET
            assignments = assignments + 1,
            last_at = excluded.last_at,
            learned_at = coalesce(learned_at,
                CASE WHEN assignments + 1 >= ?4 THEN excluded.last_at END)",
    )?;
    let t = now();
    for d in rows {
        let (Some(member), false) = (&d.booked_provider, d.dry_run || d.status == Status::DryRun)
        else {
            continue;
        };
        let contact = d.sender.trim().to_lowercase();
        if contact.is_empty() {
            continue;
        }
        stmt.execute(params![contact, member, t, LEARN_AFTER])
            .context("cannot count a booking assignment")?;
    }
    Ok(())
}

/// Every customer's learned preferences, most assignments first (the history snapshot).
pub fn learned(conn: &Connection) -> Result<BTreeMap<String, Vec<String>>> {
    let mut stmt = conn.prepare_cached(
        "SELECT contact, member FROM contact_providers WHERE assignments >= ?1
         ORDER BY contact, assignments DESC, last_at DESC, member",
    )?;
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let rows = stmt.query_map(params![LEARN_AFTER], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })?;
    for row in rows {
        let (contact, member) = row?;
        out.entry(contact).or_default().push(member);
    }
    Ok(out)
}

/// One customer's providers, most assignments first (`history --contact`).
pub fn of_contact(conn: &Connection, contact: &str) -> Result<Vec<ProviderCount>> {
    // A database last written by an older version (opened read-only, not migrated).
    let exists: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'contact_providers'",
        [],
        |r| r.get(0),
    )?;
    if exists == 0 {
        return Ok(Vec::new());
    }
    let mut stmt = conn.prepare(
        "SELECT member, assignments, first_at, last_at, learned_at FROM contact_providers
         WHERE contact = ?1 ORDER BY assignments DESC, last_at DESC, member",
    )?;
    let rows = stmt
        .query_map(params![contact.trim().to_lowercase()], |r| {
            Ok(ProviderCount {
                member: r.get(0)?,
                assignments: r.get(1)?,
                first_at: r.get(2)?,
                last_at: r.get(3)?,
                learned_at: r.get(4)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

impl Store {
    /// Learned preferences of every customer (customer → providers, strongest first).
    pub fn learned_preferences(&self) -> Result<BTreeMap<String, Vec<String>>> {
        learned(&*self.conn()?)
    }

    /// One customer's providers with their assignment counts.
    pub fn contact_providers(&self, contact: &str) -> Result<Vec<ProviderCount>> {
        of_contact(&*self.conn()?, contact)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn booking(sender: &str, provider: &str, id: &str, dry_run: bool) -> NewDecision {
        NewDecision {
            account: "a".into(),
            folder: "INBOX".into(),
            uidvalidity: 1,
            uid: 0,
            source_key: id.into(),
            message_id: Some(id.into()),
            fingerprint: id.into(),
            signature: String::new(),
            subject: "book".into(),
            sender: sender.into(),
            category: "BOOKING".into(),
            recipient: Some(provider.into()),
            reason: "booking_provider".into(),
            escalation: None,
            dest: Some(vec!["BOOKING".into(), provider.into()]),
            decision_json: "{}".into(),
            profile_version: "v".into(),
            dry_run,
            status: if dry_run {
                Status::DryRun
            } else {
                Status::Planned
            },
            booked_provider: Some(provider.into()),
        }
    }

    #[test]
    fn two_assignments_make_a_learned_preference_dry_runs_do_not_count() {
        let dir = std::env::temp_dir().join(format!("mailtriage-contacts-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let s = Store::open(&dir.join("state.db")).expect("opens");
        s.record(
            &[booking("Jane@Example.com", "Marcus Chen", "1", false)],
            None,
        )
        .expect("records");
        s.record(
            &[booking("jane@example.com", "Nancy Reyes", "2", true)],
            None,
        )
        .expect("records");
        s.record(
            &[booking("jane@example.com", "Nancy Reyes", "3", true)],
            None,
        )
        .expect("records");
        assert!(s.learned_preferences().expect("reads").is_empty());
        s.record(
            &[booking("jane@example.com", "Marcus Chen", "4", false)],
            None,
        )
        .expect("records");
        let learned = s.learned_preferences().expect("reads");
        assert_eq!(
            learned.get("jane@example.com"),
            Some(&vec!["Marcus Chen".to_string()])
        );
        let counts = s.contact_providers("JANE@example.com").expect("reads");
        assert_eq!(counts.len(), 1);
        assert_eq!(counts[0].assignments, 2);
        assert!(counts[0].learned_at.is_some());
    }
}
