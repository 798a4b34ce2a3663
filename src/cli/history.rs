//! `mailtriage history`, `mailtriage stats` and `mailtriage explain --message-id`: reading
//! the audit log (read-only, safe while the daemon runs).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context as _, Result};
use rusqlite::{params, Connection};
use serde::Serialize;

use super::{out, outln};
use crate::config::Config;
use crate::store::{self, Store};
use crate::triage::decision::Decision;
use crate::triage::explain::{render_with, Header};
use crate::yaml::durations::parse_duration;

/// Output format for history and stats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// Finds the state database: --state, else the configuration's (as `run` finds it),
/// else the demo's.
pub fn state_path(state: Option<&Path>, config: Option<&Path>) -> Result<PathBuf> {
    if let Some(s) = state {
        return Ok(s.to_path_buf());
    }
    if let Some(c) = super::run::discover(config) {
        let cfg = Config::load(&c).map_err(|e| anyhow!("invalid configuration\n{e}"))?;
        return Ok(cfg.state);
    }
    let demo = PathBuf::from("var/demo-state.db");
    if demo.is_file() {
        return Ok(demo);
    }
    bail!("no state database: pass --state FILE or --config FILE (or run the demo first)")
}

fn open(path: &Path) -> Result<Connection> {
    if !path.is_file() {
        bail!(
            "{} does not exist (has the daemon run yet?)",
            path.display()
        );
    }
    Store::open_readonly(path)
}

fn since_ts(since: &str) -> Result<i64> {
    let secs = parse_duration(since).map_err(|e| anyhow!("--since: {e}"))?;
    Ok(store::now() - i64::try_from(secs).unwrap_or(i64::MAX / 2))
}

fn format_time(ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

/// One row of history.
#[derive(Debug, Serialize)]
struct Row {
    time: String,
    account: String,
    message_id: Option<String>,
    from: String,
    subject: String,
    category: String,
    recipient: Option<String>,
    folder: Option<String>,
    reason: String,
    escalation: Option<String>,
    status: String,
}

/// Which decisions `history` shows.
pub struct Filter<'a> {
    /// How far back, e.g. 7d.
    pub since: &'a str,
    /// Only this recipient.
    pub member: Option<&'a str>,
    /// Only mail from this customer address.
    pub contact: Option<&'a str>,
    /// Most rows (0: all).
    pub limit: usize,
}

/// A customer's providers, for `history --contact`.
#[derive(Debug, Serialize)]
struct ContactReport<'a> {
    contact: String,
    /// Providers they were assigned to, most often first; `learned` once it counts as a preference.
    providers: Vec<ContactProvider>,
    learned_preferences: Vec<String>,
    decisions: &'a [Row],
}

#[derive(Debug, Serialize)]
struct ContactProvider {
    member: String,
    assignments: i64,
    last: String,
    learned: bool,
}

/// `history`.
pub fn history(db: &Path, f: &Filter<'_>, format: Format) -> Result<ExitCode> {
    let conn = open(db)?;
    let contact = f.contact.map(|c| c.trim().to_lowercase());
    let mut stmt = conn.prepare(
        "SELECT decided_at, account, message_id, sender, subject, category, recipient, dest_folder,
                reason, escalation, status
         FROM decisions
         WHERE decided_at >= ?1 AND (?2 IS NULL OR recipient = ?2)
           AND (?4 IS NULL OR lower(sender) = ?4)
         ORDER BY decided_at DESC, id DESC
         LIMIT ?3",
    )?;
    let limit = if f.limit == 0 {
        i64::MAX
    } else {
        i64::try_from(f.limit).unwrap_or(i64::MAX)
    };
    let rows: Vec<Row> = stmt
        .query_map(params![since_ts(f.since)?, f.member, limit, contact], |r| {
            Ok(Row {
                time: format_time(r.get(0)?),
                account: r.get(1)?,
                message_id: r.get(2)?,
                from: r.get(3)?,
                subject: r.get(4)?,
                category: r.get(5)?,
                recipient: r.get(6)?,
                folder: r.get(7)?,
                reason: r.get(8)?,
                escalation: r.get(9)?,
                status: r.get(10)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let report = match &contact {
        Some(c) => {
            let providers: Vec<ContactProvider> = store::contacts_of(&conn, c)?
                .into_iter()
                .map(|p| ContactProvider {
                    learned: p.assignments >= store::LEARN_AFTER,
                    member: p.member,
                    assignments: p.assignments,
                    last: format_time(p.last_at),
                })
                .collect();
            Some(ContactReport {
                contact: c.clone(),
                learned_preferences: providers
                    .iter()
                    .filter(|p| p.learned)
                    .map(|p| p.member.clone())
                    .collect(),
                providers,
                decisions: &rows,
            })
        }
        None => None,
    };
    match format {
        Format::Json => match &report {
            Some(r) => outln!("{}", serde_json::to_string(r)?),
            None => {
                for r in &rows {
                    outln!("{}", serde_json::to_string(r)?);
                }
            }
        },
        Format::Table => {
            if let Some(r) = &report {
                outln!("Contact   {}", r.contact);
                if r.providers.is_empty() {
                    outln!("  no booking assignments recorded");
                }
                for p in &r.providers {
                    outln!(
                        "  {:<24} {} booking(s), last {} UTC{}",
                        p.member,
                        p.assignments,
                        p.last,
                        if p.learned {
                            "  — learned preference"
                        } else {
                            ""
                        }
                    );
                }
                outln!(
                    "  learned preferences: {} (a booking.contacts entry in the profile overrides them)",
                    if r.learned_preferences.is_empty() {
                        "none".to_string()
                    } else {
                        r.learned_preferences.join(", ")
                    }
                );
                outln!();
            }
            let cut = |s: &str, n: usize| {
                let t: String = s.chars().take(n).collect();
                if s.chars().count() > n {
                    format!("{t}…")
                } else {
                    t
                }
            };
            outln!(
                "{:<16}  {:<10}  {:<26}  {:<32}  {:<8}  {:<18}  {:<30}  {:<7}  {}",
                "TIME (UTC)",
                "ACCOUNT",
                "FROM",
                "SUBJECT",
                "CATEGORY",
                "RECIPIENT",
                "REASON",
                "ESC",
                "STATUS"
            );
            for r in &rows {
                outln!(
                    "{:<16}  {:<10}  {:<26}  {:<32}  {:<8}  {:<18}  {:<30}  {:<7}  {}",
                    r.time,
                    cut(&r.account, 10),
                    cut(&r.from, 26),
                    cut(&r.subject, 32),
                    r.category,
                    cut(r.recipient.as_deref().unwrap_or("-"), 18),
                    r.reason,
                    r.escalation.as_deref().unwrap_or("-"),
                    r.status
                );
            }
            outln!(
                "{} decision(s) since {} ago{}{}",
                rows.len(),
                f.since,
                f.member.map(|m| format!(" for {m}")).unwrap_or_default(),
                contact
                    .as_deref()
                    .map(|c| format!(" from {c}"))
                    .unwrap_or_default()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Per-member statistics.
#[derive(Debug, Default, Serialize)]
struct MemberStats {
    total: u64,
    by_category: BTreeMap<String, u64>,
    escalations: BTreeMap<String, u64>,
    reasons: BTreeMap<String, u64>,
}

/// `stats`.
pub fn stats(db: &Path, since: &str, format: Format) -> Result<ExitCode> {
    let conn = open(db)?;
    let mut stmt = conn.prepare(
        "SELECT coalesce(recipient, '(nobody)'), category, reason, escalation, count(*)
         FROM decisions WHERE decided_at >= ?1
         GROUP BY 1, 2, 3, 4",
    )?;
    let mut members: BTreeMap<String, MemberStats> = BTreeMap::new();
    let rows = stmt.query_map(params![since_ts(since)?], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, Option<String>>(3)?,
            r.get::<_, i64>(4)?,
        ))
    })?;
    for row in rows {
        let (who, category, reason, escalation, n) = row?;
        let n = u64::try_from(n).unwrap_or(0);
        let m = members.entry(who).or_default();
        m.total += n;
        *m.by_category.entry(category).or_default() += n;
        *m.reasons.entry(reason).or_default() += n;
        if let Some(level) = escalation {
            *m.escalations.entry(level).or_default() += n;
        }
    }
    if format == Format::Json {
        outln!("{}", serde_json::to_string_pretty(&members)?);
        return Ok(ExitCode::SUCCESS);
    }
    let total: u64 = members.values().map(|m| m.total).sum();
    outln!("{total} message(s) triaged in the last {since}");
    for (who, m) in &members {
        outln!();
        outln!("{who}: {}", m.total);
        let cats: Vec<String> = m
            .by_category
            .iter()
            .map(|(c, n)| format!("{c} {n}"))
            .collect();
        outln!("  by category: {}", cats.join(", "));
        if !m.escalations.is_empty() {
            let esc: Vec<String> = ["URGENT", "HIGH", "MEDIUM"]
                .iter()
                .filter_map(|l| m.escalations.get(*l).map(|n| format!("{l} {n}")))
                .collect();
            outln!("  escalations: {}", esc.join(", "));
        }
        let mut reasons: Vec<(&String, &u64)> = m.reasons.iter().collect();
        reasons.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let top: Vec<String> = reasons
            .iter()
            .take(3)
            .map(|(r, n)| format!("{r} {n}"))
            .collect();
        outln!("  top reasons: {}", top.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}

/// `explain --message-id ID`: the stored receipt of past decisions about that message.
pub fn explain_stored(db: &Path, message_id: &str, json: bool) -> Result<ExitCode> {
    let conn = open(db)?;
    // The fingerprint of a message with a Message-ID is that ID trimmed and lowercased
    // (`pipeline::message_fingerprint`); it is indexed, the raw ID is not.
    let id = message_id
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim()
        .to_lowercase();
    let mut stmt = conn.prepare(
        "SELECT account, sender, subject, decision_json, decided_at, status, profile_version
         FROM decisions WHERE fingerprint = ?1 ORDER BY id",
    )?;
    let rows: Vec<(String, String, String, String, i64, String, String)> = stmt
        .query_map(params![id], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })?
        .collect::<rusqlite::Result<_>>()?;
    if rows.is_empty() {
        bail!("no decision recorded for Message-ID <{id}>");
    }
    for (i, (account, sender, subject, decision, at, status, version)) in rows.iter().enumerate() {
        if json {
            outln!("{decision}");
            continue;
        }
        let d: Decision =
            serde_json::from_str(decision).context("a stored decision is unreadable")?;
        if i > 0 {
            outln!();
        }
        outln!(
            "Decided   {} UTC, account {account}, profile version {version}, status {status}",
            format_time(*at)
        );
        out!(
            "{}",
            render_with(
                &Header {
                    message_id: Some(id.to_string()),
                    from: sender.clone(),
                    subject: subject.clone(),
                },
                &d
            )
        );
    }
    Ok(ExitCode::SUCCESS)
}
