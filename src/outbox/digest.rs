//! The daily digest: once a day, at the profile's time in the business's time zone,
//! each chosen member gets the day's counts per category and the day's escalations.
//! Queued through the outbox with the key (digest, account:date, address), so it is
//! sent once per day however often the scheduler looks and whatever restarts happen.

use std::collections::BTreeMap;

use anyhow::Result;
use chrono::{NaiveDate, TimeZone as _};
use tracing::info;

use super::{compose, MailSettings};
use crate::profile::Profile;
use crate::store::outbox::DigestRow;
use crate::store::Store;

/// (subject, text) of a member's digest for `date` from the day's decisions.
pub fn render(
    profile: &Profile,
    member: &str,
    date: NaiveDate,
    rows: &[DigestRow],
) -> (String, String) {
    let mine: Vec<&DigestRow> = rows
        .iter()
        .filter(|r| r.recipient.as_deref() == Some(member))
        .collect();
    let mut per_category: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &mine {
        *per_category.entry(r.category.as_str()).or_default() += 1;
    }
    let escalated: Vec<&&DigestRow> = mine.iter().filter(|r| r.escalation.is_some()).collect();
    let subject = format!(
        "{}: {} message(s) for {member} on {date}{}",
        profile.business.name,
        mine.len(),
        if escalated.is_empty() {
            String::new()
        } else {
            format!(", {} escalated", escalated.len())
        }
    );
    let mut text = format!(
        "Mail routed to {member} at {} on {date}\n\n",
        profile.business.name
    );
    if mine.is_empty() {
        text.push_str("Nothing today.\n");
    }
    for (cat, n) in &per_category {
        text.push_str(&format!("  {cat:<12} {n}\n"));
    }
    if !escalated.is_empty() {
        text.push_str("\nEscalations:\n");
        for r in escalated {
            text.push_str(&format!(
                "  [{}] {} - {} (in {})\n",
                r.escalation.as_deref().unwrap_or("-"),
                compose::one_line(&r.subject, 100),
                compose::one_line(&r.sender, 100),
                r.folder.as_deref().unwrap_or("the inbox"),
            ));
        }
    }
    text.push_str("\n-- \nSent by mailtriage.\n");
    (subject, text)
}

/// Queues the digests whose time has come today and that are not queued yet.
pub fn queue_due(store: &Store, settings: &MailSettings, at: i64) -> Result<usize> {
    let accounts = settings
        .accounts
        .lock()
        .map(|a| a.clone())
        .unwrap_or_default();
    let mut queued = 0;
    for (account, live) in accounts {
        let profile = live.snapshot();
        let Some(dg) = &profile.digest else { continue };
        let tz = profile.business.timezone;
        let Some(local) = tz.timestamp_opt(at, 0).single() else {
            continue;
        };
        let minute = local
            .time()
            .signed_duration_since(chrono::NaiveTime::MIN)
            .num_minutes();
        if minute < i64::from(dg.at_minute) {
            continue;
        }
        let date = local.date_naive();
        let ref_key = format!("{account}:{date}");
        let start = date
            .and_hms_opt(0, 0, 0)
            .and_then(|d| tz.from_local_datetime(&d).earliest())
            .map_or(at - 86_400, |d| d.timestamp());
        let mut rows: Option<Vec<DigestRow>> = None;
        for &i in &dg.members {
            let Some(member) = profile.members.get(i) else {
                continue;
            };
            let Some(addr) = member.email.as_deref() else {
                continue;
            };
            if store.queued("digest", &ref_key, &addr.to_lowercase())? {
                continue;
            }
            let rows = match &rows {
                Some(r) => r,
                None => rows.insert(store.decisions_between(&account, start, at + 1)?),
            };
            let (subject, text) = render(&profile, &member.name, date, rows);
            let mail = compose::digest(
                &settings.sender,
                &account,
                &ref_key,
                &member.name,
                addr,
                &subject,
                text,
            )?;
            if store.enqueue(&mail)? {
                queued += 1;
                info!(account = %account, member = %member.name, %date, "digest queued");
            }
        }
    }
    Ok(queued)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_queued_once_after_its_local_time_and_not_before() {
        let dir = std::env::temp_dir().join(format!("mt-digest-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store::open(&dir.join("state.db")).expect("opens");
        let p = Profile::from_bytes(
            "p.yaml",
            b"business: {name: B, timezone: America/Toronto}\nteam:\n  - {name: Mark Johnson, email: mark@example.com, roles: [owner]}\n  - {name: No Mail, roles: [owner]}\ndigest: {time: \"18:00\"}\n",
        )
        .expect("valid");
        let settings = MailSettings::new("T <alerts@example.com>").expect("sender");
        settings.set_account(
            "a",
            Some(std::sync::Arc::new(crate::profile::LiveProfile::new(p))),
        );
        // 2026-03-02 17:59 and 18:00 in Toronto (UTC-5).
        let before = chrono::Utc
            .with_ymd_and_hms(2026, 3, 2, 22, 59, 0)
            .single()
            .map(|t| t.timestamp())
            .expect("time");
        assert_eq!(queue_due(&store, &settings, before).expect("runs"), 0);
        assert_eq!(queue_due(&store, &settings, before + 60).expect("runs"), 1);
        assert_eq!(
            queue_due(&store, &settings, before + 3600).expect("runs"),
            0
        );
        assert!(store
            .queued("digest", "a:2026-03-02", "mark@example.com")
            .expect("reads"));
        // The next local day gets its own, at its own 18:00.
        assert_eq!(
            queue_due(&store, &settings, before + 86_400).expect("runs"),
            0
        );
        assert_eq!(
            queue_due(&store, &settings, before + 86_400 + 60).expect("runs"),
            1
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn digest_counts_the_members_mail_and_lists_escalations() {
        let p = Profile::from_bytes(
            "p.yaml",
            b"business: {name: Hot Tub Man}\nteam:\n  - {name: Mark Johnson, email: mark@example.com, roles: [owner]}\ndigest: {time: \"18:00\"}\n",
        )
        .expect("valid");
        assert_eq!(
            p.digest.as_ref().map(|d| (d.at_minute, d.members.clone())),
            Some((18 * 60, vec![0]))
        );
        let row = |cat: &str, esc: Option<&str>, who: &str| DigestRow {
            recipient: Some(who.into()),
            category: cat.into(),
            escalation: esc.map(String::from),
            subject: "Broken\r\nheater".into(),
            sender: "pat@example.com".into(),
            folder: Some("SUPPORT/Mark Johnson".into()),
        };
        let rows = vec![
            row("SALES", None, "Mark Johnson"),
            row("SUPPORT", Some("URGENT"), "Mark Johnson"),
            row("SUPPORT", None, "Mark Johnson"),
            row("SUPPORT", None, "Someone Else"),
        ];
        let date = NaiveDate::from_ymd_opt(2026, 3, 2).expect("date");
        let (subject, text) = render(&p, "Mark Johnson", date, &rows);
        assert_eq!(
            subject,
            "Hot Tub Man: 3 message(s) for Mark Johnson on 2026-03-02, 1 escalated"
        );
        assert!(
            text.contains("  SALES        1\n  SUPPORT      2\n"),
            "{text}"
        );
        assert!(
            text.contains("[URGENT] Broken heater - pat@example.com (in SUPPORT/Mark Johnson)"),
            "{text}"
        );
    }
}
