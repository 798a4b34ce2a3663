//! `mailtriage explain` and `mailtriage triage`: the triage core on files, no server.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Result};

use super::{inputs, out, outln};
use super::{ExplainFormat, TriageFormat};
use crate::mail::{parse_limit, MessageView, DEFAULT_MAX_SCAN_BYTES};
use crate::profile::Profile;
use crate::triage::{explain, triage as run_triage, Context, Decision};

/// Loads the profile given, or the only one in ./profiles.
pub fn resolve_profile(given: Option<&Path>) -> Result<Profile> {
    let path: PathBuf = match given {
        Some(p) => p.to_path_buf(),
        None => {
            let found: Vec<PathBuf> = std::fs::read_dir("profiles")
                .map(|rd| {
                    rd.filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                        .collect()
                })
                .unwrap_or_default();
            match found.as_slice() {
                [one] => one.clone(),
                [] => bail!("no profile given: pass --profile FILE"),
                many => {
                    let mut names: Vec<String> =
                        many.iter().map(|p| p.display().to_string()).collect();
                    names.sort();
                    bail!(
                        "several profiles found; pass --profile with one of: {}",
                        names.join(", ")
                    )
                }
            }
        }
    };
    Profile::load(&path).map_err(|e| anyhow::anyhow!("invalid profile\n{e}"))
}

/// The context offline: no history; busy calendars read from the profile's files and
/// feeds (fetched once).
fn context(addresses: &[String], profile: &Profile) -> Context {
    let calendars = crate::calendar::CalendarCache::default();
    calendars.refresh_feeds_blocking(profile);
    Context {
        account_addresses: addresses.iter().map(|a| a.trim().to_lowercase()).collect(),
        calendars: calendars.snapshot(profile),
        ..Context::default()
    }
}

/// `explain MESSAGE.eml`.
pub fn explain(
    message: &Path,
    profile: Option<&Path>,
    format: ExplainFormat,
    addresses: &[String],
) -> Result<ExitCode> {
    let profile = resolve_profile(profile)?;
    let input = inputs::read_message(message, parse_limit(DEFAULT_MAX_SCAN_BYTES))?;
    let view = MessageView::parse_prefix(&input.bytes, input.size, DEFAULT_MAX_SCAN_BYTES);
    let decision = run_triage(&view, &profile, &context(addresses, &profile));
    match format {
        ExplainFormat::Text => out!("{}", explain::render(&view, &decision)),
        ExplainFormat::Json => outln!("{}", serde_json::to_string_pretty(&decision)?),
    }
    Ok(ExitCode::SUCCESS)
}

/// One line of the table.
fn row(label: &str, d: &Decision) -> [String; 6] {
    [
        label.to_string(),
        d.category.clone(),
        d.recipient.clone().unwrap_or_else(|| "-".into()),
        d.folder.clone().unwrap_or_else(|| "(stays)".into()),
        d.reason.to_string(),
        d.escalation
            .as_ref()
            .map_or("-".to_string(), |e| e.level.to_string()),
    ]
}

/// Prints rows as an aligned table.
fn print_table(header: [&str; 6], rows: &[[String; 6]]) -> Result<()> {
    let mut widths = header.map(|h| h.chars().count());
    for r in rows {
        for (w, cell) in widths.iter_mut().zip(r.iter()) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> Result<()> {
        let parts: Vec<String> = cells
            .iter()
            .zip(widths.iter())
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        outln!("{}", parts.join("  ").trim_end());
        Ok(())
    };
    line(header.to_vec())?;
    for r in rows {
        line(r.iter().map(String::as_str).collect())?;
    }
    Ok(())
}

/// `triage PATH...`.
pub fn triage(
    paths: &[PathBuf],
    profile: Option<&Path>,
    format: TriageFormat,
    addresses: &[String],
) -> Result<ExitCode> {
    let profile = resolve_profile(profile)?;
    // One message at a time, each read only as far as the parser would look at it.
    let inputs = inputs::messages(paths, parse_limit(DEFAULT_MAX_SCAN_BYTES))?;
    let ctx = context(addresses, &profile);
    let mut rows = Vec::new();
    let mut count = 0usize;
    let mut per_folder: BTreeMap<String, usize> = BTreeMap::new();
    for input in inputs {
        let input = input?;
        count += 1;
        let view = MessageView::parse_prefix(&input.bytes, input.size, DEFAULT_MAX_SCAN_BYTES);
        let d = run_triage(&view, &profile, &ctx);
        *per_folder
            .entry(
                d.folder
                    .clone()
                    .unwrap_or_else(|| "(stays in place)".into()),
            )
            .or_default() += 1;
        match format {
            TriageFormat::Table => rows.push(row(&input.label, &d)),
            TriageFormat::Json => {
                let mut v = serde_json::to_value(&d)?;
                if let Some(obj) = v.as_object_mut() {
                    obj.insert("file".into(), input.label.clone().into());
                    obj.insert(
                        "message_id".into(),
                        view.message_id
                            .clone()
                            .map_or(serde_json::Value::Null, Into::into),
                    );
                }
                outln!("{}", serde_json::to_string(&v)?);
            }
        }
    }
    if format == TriageFormat::Table {
        print_table(
            [
                "MESSAGE",
                "CATEGORY",
                "RECIPIENT",
                "FOLDER",
                "REASON",
                "ESCALATION",
            ],
            &rows,
        )?;
        outln!();
        outln!("{count} messages");
        let width = per_folder
            .keys()
            .map(|k| k.chars().count())
            .max()
            .unwrap_or(0);
        for (folder, n) in &per_folder {
            outln!("  {folder:<width$}  {n}");
        }
    } else {
        let summary: BTreeMap<&String, &usize> = per_folder.iter().collect();
        eprintln!(
            "{count} messages; per folder: {}",
            serde_json::to_string(&summary)?
        );
    }
    Ok(ExitCode::SUCCESS)
}
