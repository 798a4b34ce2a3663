//! `mailtriage check`: validate profiles and preview, for each member, which mail will
//! reach them — categories, roles, top keywords, name triggers and folders.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use super::{out, outln};
use crate::matching::names::Kind;
use crate::matching::Level;
use crate::profile::rules::{BASE, PROFILE};
use crate::profile::{NotRouted, Profile};

/// The profiles to check: those given, or every profiles/*.yaml.
fn targets(files: &[PathBuf]) -> Vec<PathBuf> {
    if !files.is_empty() {
        return files.to_vec();
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("profiles")
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

/// Runs `check`.
pub fn run(files: &[PathBuf], show_words: bool) -> Result<ExitCode> {
    let targets = targets(files);
    if targets.is_empty() {
        anyhow::bail!("nothing to check: pass profile files, or run where profiles/*.yaml exist");
    }
    let mut failed = 0;
    for (i, path) in targets.iter().enumerate() {
        if i > 0 {
            outln!();
        }
        if is_daemon_config(path) {
            failed += check_config(path, show_words)?;
            continue;
        }
        match Profile::load(path) {
            Ok(p) => out!("{}", shown(&p, show_words)),
            Err(e) => {
                failed += 1;
                eprint!("{e}");
                eprintln!("{}: rejected", path.display());
            }
        }
    }
    Ok(if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The preview, or with `--words` every word in force.
fn shown(p: &Profile, show_words: bool) -> String {
    if show_words {
        words(p)
    } else {
        preview(p)
    }
}

/// Does this YAML file look like the daemon configuration (it has `accounts:`)?
fn is_daemon_config(path: &std::path::Path) -> bool {
    let Ok(bytes) = std::fs::read(path) else {
        return false;
    };
    match crate::yaml::Document::parse(&path.display().to_string(), &bytes) {
        Ok(doc) => match &doc.root.value {
            crate::yaml::Value::Map(entries) => entries.iter().any(|(k, _)| k.name == "accounts"),
            _ => false,
        },
        Err(_) => path.file_name().is_some_and(|n| n == "mailtriage.yaml"),
    }
}

/// Checks a mailtriage.yaml and every profile it uses; returns how many files failed.
fn check_config(path: &std::path::Path, show_words: bool) -> Result<usize> {
    let cfg = match crate::config::Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            eprint!("{e}");
            eprintln!("{}: rejected", path.display());
            return Ok(1);
        }
    };
    outln!(
        "{}: OK — state {}, {} account(s): {}",
        path.display(),
        cfg.state.display(),
        cfg.accounts.len(),
        cfg.accounts
            .iter()
            .map(|a| a.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    for line in crate::oauth::status_lines(&cfg) {
        outln!("{line}");
    }
    let mut failed = 0;
    let mut seen = std::collections::BTreeSet::new();
    for a in &cfg.accounts {
        if !seen.insert(a.profile.clone()) {
            continue;
        }
        outln!();
        match Profile::load(&a.profile) {
            Ok(p) => out!("{}", shown(&p, show_words)),
            Err(e) => {
                failed += 1;
                eprint!("{e}");
                eprintln!(
                    "{}: rejected (used by account {})",
                    a.profile.display(),
                    a.name
                );
            }
        }
    }
    Ok(failed)
}

/// Every word of a keyword set as (word or pattern, weight, origin), heaviest first.
fn words_of(p: &Profile, set: usize) -> Vec<(&str, f64, &'static str)> {
    let Some(s) = p.matcher.set(set) else {
        return Vec::new();
    };
    let mut entries: Vec<(&str, f64, &'static str)> = s
        .entries
        .iter()
        .map(|e| (e.keyword.as_str(), e.weight, e.origin))
        .chain(
            s.patterns
                .iter()
                .map(|pe| (pe.source.as_str(), pe.weight, pe.origin)),
        )
        .collect();
    entries.sort_by(|a, b| {
        b.1.partial_cmp(&a.1)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| a.0.cmp(b.0))
    });
    entries
}

/// The `n` heaviest words of a set; words not from the base pack say where they are from.
fn top_keywords(p: &Profile, set: usize, n: usize) -> String {
    let entries = words_of(p, set);
    let shown: Vec<String> = entries
        .iter()
        .take(n)
        .map(|(k, _, origin)| {
            if *origin == BASE {
                (*k).to_string()
            } else {
                format!("{k} ({origin})")
            }
        })
        .collect();
    let more = entries.len().saturating_sub(n);
    if more > 0 {
        format!("{} … (+{more})", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

fn folder_of(p: &Profile, category: &str, member: &str, role: &str) -> String {
    p.routing.folder.render(category, member, role).join("/")
}

/// What member `mi` provides for booking: services, hours, busy calendar.
fn provider_line(p: &Profile, mi: usize) -> Option<String> {
    let b = p.booking.as_ref()?;
    let pr = b.provider_of(mi)?;
    let cat = p.categories.get(b.category)?;
    let services: Vec<String> = pr
        .services
        .iter()
        .filter_map(|(si, rank)| {
            b.services.get(*si).map(|s| {
                let r = match rank {
                    crate::profile::ServiceRank::Primary => "primary",
                    crate::profile::ServiceRank::Secondary => "secondary",
                };
                format!("{} ({r})", s.name)
            })
        })
        .collect();
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let hours: Vec<String> = pr
        .hours
        .iter()
        .zip(DAYS)
        .filter(|(r, _)| !r.is_empty())
        .map(|(r, d)| {
            let ranges: Vec<String> = r
                .iter()
                .map(|(a, b)| format!("{:02}:{:02}-{:02}:{:02}", a / 60, a % 60, b / 60, b % 60))
                .collect();
            format!("{d} {}", ranges.join(","))
        })
        .collect();
    let calendar = match &pr.busy_calendar {
        None => "no busy calendar".to_string(),
        Some(src) => match crate::calendar::load_blocking(src, p.business.timezone) {
            Ok(c) => format!(
                "busy calendar {} ({} busy time(s){})",
                src.describe(),
                c.busy.len(),
                c.note().map(|n| format!("; {n}")).unwrap_or_default()
            ),
            Err(e) => format!("busy calendar UNREADABLE: {e:#} (treated as free)"),
        },
    };
    Some(format!(
        "  • booking requests as provider → {}
      offers: {}
      hours: {}
      {calendar}",
        folder_of(p, &cat.name, &p.members.get(mi)?.name, ""),
        if services.is_empty() {
            "nothing yet".to_string()
        } else {
            services.join(", ")
        },
        if hours.is_empty() {
            "none (never available)".to_string()
        } else {
            hours.join("; ")
        },
    ))
}

/// Which rule packs are in force and how many words each contributes.
fn rules_line(p: &Profile) -> String {
    let mut count: std::collections::BTreeMap<&str, usize> = Default::default();
    for set in 0..p.matcher.len() {
        for (_, _, origin) in words_of(p, set) {
            *count.entry(origin).or_default() += 1;
        }
    }
    let mut packs: Vec<String> = vec![format!("base ({} words)", count.get(BASE).unwrap_or(&0))];
    for name in &p.business.industries {
        packs.push(format!(
            "{name} ({} words)",
            count.get(name.as_str()).unwrap_or(&0)
        ));
    }
    let how = if p.business.industries.is_empty() {
        "no business.industry: only the business-neutral base"
    } else {
        "packs from business.industry"
    };
    format!(
        "  Rules: {} + this profile ({} words); {how}. `check --words` lists every word.",
        packs.join(" + "),
        count.get(PROFILE).unwrap_or(&0)
    )
}

/// Every word of every list, with its weight and the pack it came from (`check --words`).
pub fn words(p: &Profile) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}: words in force", p.file);
    let _ = writeln!(out, "{}", rules_line(p));
    let mut list = |title: String, set: usize, level_of: &dyn Fn(usize) -> Option<String>| {
        let words = words_of(p, set);
        if words.is_empty() {
            return;
        }
        let _ = writeln!(out, "\n{title}");
        for (i, (w, weight, origin)) in words.iter().enumerate() {
            let level = level_of(i).map(|l| format!("  {l}")).unwrap_or_default();
            let _ = writeln!(out, "  {weight:>6}  {w:<32} {origin}{level}");
        }
    };
    for c in &p.categories {
        list(
            format!("Category {} (threshold {})", c.name, c.threshold),
            c.set,
            &|_| None,
        );
    }
    for r in &p.roles {
        list(
            format!("Role {} ({}, weight {})", r.id, r.label, r.weight),
            r.set,
            &|_| None,
        );
    }
    let e = &p.escalation;
    let levels: std::collections::HashMap<&str, Level> = p
        .matcher
        .set(e.set)
        .map(|s| {
            s.entries
                .iter()
                .map(|x| x.keyword.as_str())
                .chain(s.patterns.iter().map(|x| x.source.as_str()))
                .zip(e.levels.iter().copied())
                .collect()
        })
        .unwrap_or_default();
    let esc_words = words_of(p, e.set);
    list("Escalation keywords (level)".to_string(), e.set, &|i| {
        esc_words
            .get(i)
            .and_then(|(w, _, _)| levels.get(w))
            .map(|l| l.to_string())
    });
    list(
        "Mass-mail wording (never escalated)".to_string(),
        e.mass_mail_set,
        &|_| None,
    );
    list(
        "Urgency words (booking)".to_string(),
        e.urgency_set,
        &|_| None,
    );
    out
}

/// The responsibilities preview of a profile.
pub fn preview(p: &Profile) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: OK — {} ({} members, {} roles, categories {})",
        p.file,
        p.business.name,
        p.members.len(),
        p.roles.len(),
        p.categories
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(out, "{}", rules_line(p));
    let fallback = p.routing.fallback_role;
    for (mi, m) in p.members.iter().enumerate() {
        let _ = writeln!(out);
        let contact = m
            .email
            .as_deref()
            .map(|e| format!(" <{e}>"))
            .unwrap_or_default();
        let _ = writeln!(out, "Email routing for {}{contact}", m.name);
        let labels: Vec<String> = m
            .roles
            .iter()
            .filter_map(|&r| p.roles.get(r))
            .map(|r| format!("{} ({}, weight {})", r.label, r.id, r.weight))
            .collect();
        let _ = writeln!(out, "  Roles: {}", labels.join(" + "));
        for (ci, cat) in p.categories.iter().enumerate() {
            let via: Vec<usize> = m
                .roles
                .iter()
                .copied()
                .filter(|&r| {
                    p.roles
                        .get(r)
                        .is_some_and(|role| role.categories.contains(&ci))
                })
                .collect();
            let Some(&first) = via.first() else { continue };
            let labels: Vec<&str> = via
                .iter()
                .filter_map(|&r| p.roles.get(r))
                .map(|r| r.label.as_str())
                .collect();
            let others: Vec<&str> = p
                .members
                .iter()
                .enumerate()
                .filter(|(oi, o)| *oi != mi && o.roles.iter().any(|r| via.contains(r)))
                .map(|(_, o)| o.name.as_str())
                .collect();
            let is_booking = p.booking.as_ref().is_some_and(|b| b.category == ci);
            let shared = if is_booking {
                "  (booking requests the providers below cannot take: nobody offers the service, or staff named)".to_string()
            } else if others.is_empty() {
                String::new()
            } else {
                format!(
                    "  (shared with {}: higher content score, then lower load)",
                    others.join(", ")
                )
            };
            let role_id = p
                .roles
                .get(first)
                .map(|r| r.id.as_str())
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  • {} mail → {}   as {}{shared}",
                cat.name,
                folder_of(p, &cat.name, &m.name, role_id),
                labels.join(" + ")
            );
        }
        for &ci in &p.routing.content_match {
            let Some(cat) = p.categories.get(ci) else {
                continue;
            };
            let about: Vec<String> = m
                .roles
                .iter()
                .filter_map(|&r| p.roles.get(r))
                .filter(|r| {
                    p.matcher
                        .set(r.set)
                        .is_some_and(|s| !s.entries.is_empty() || !s.patterns.is_empty())
                })
                .map(|r| format!("{} [{}]", r.label, top_keywords(p, r.set, 6)))
                .collect();
            if !about.is_empty() {
                let _ = writeln!(
                    out,
                    "  • {} mail when their roles score highest → {}\n      about: {}",
                    cat.name,
                    folder_of(p, &cat.name, &m.name, ""),
                    about.join("; ")
                );
            }
        }
        if let Some(line) = provider_line(p, mi) {
            let _ = writeln!(out, "{line}");
        }
        if fallback.is_some_and(|f| m.roles.contains(&f)) {
            let _ = writeln!(
                out,
                "  • fallback: MANAGER mail no role matched, and categories nobody else handles"
            );
        }
        if !m.addresses.is_empty() {
            let _ = writeln!(out, "  • any mail addressed to {}", m.addresses.join(", "));
        }
        let triggers: Vec<String> = p
            .names
            .triggers(mi)
            .into_iter()
            .map(|(t, k)| match k {
                Kind::First => format!("\"{t}\" (capitalised)"),
                _ => format!("\"{t}\""),
            })
            .collect();
        if !triggers.is_empty() {
            let _ = writeln!(out, "  • any mention of {}", triggers.join(", "));
        }
        let alerts: Vec<String> = crate::triage::Level::ALL
            .iter()
            .rev()
            .filter_map(|&l| {
                let a = &p.escalation.actions[l as usize];
                let mut why = Vec::new();
                if a.notify.iter().any(|n| n == "recipient") {
                    why.push("as recipient");
                }
                if a.notify.iter().any(|n| n == "fallback")
                    && fallback.is_some_and(|f| m.roles.contains(&f))
                {
                    why.push("as fallback");
                }
                if a.notify.contains(&m.name) {
                    why.push("by name");
                }
                (!why.is_empty()).then(|| format!("{l} ({})", why.join(", ")))
            })
            .collect();
        if !alerts.is_empty() {
            let _ = writeln!(out, "  Escalation alerts: {}", alerts.join("; "));
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "Categories");
    for (ci, c) in p.categories.iter().enumerate() {
        let handlers: Vec<&str> = p
            .roles
            .iter()
            .filter(|r| r.categories.contains(&ci))
            .map(|r| r.id.as_str())
            .collect();
        let how = if p.routing.content_match.contains(&ci) {
            "content match over every member's roles".to_string()
        } else if handlers.is_empty() {
            "no role handles it → fallback role holder".to_string()
        } else {
            format!("handled by {}", handlers.join(", "))
        };
        let dflt = if ci == p.routing.default_category {
            ", default"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "  {:<9} threshold {}{dflt}; {how}\n            keywords: {}",
            c.name,
            c.threshold,
            top_keywords(p, c.set, 8)
        );
    }
    let _ = writeln!(out);
    let nr = |n: &NotRouted| match n {
        NotRouted::Leave => "left in place".to_string(),
        NotRouted::Folder(f) => format!("filed in {}", f.join("/")),
    };
    let _ = writeln!(
        out,
        "Not routed to people: lists {}, bulk {}, auto-replies {}, own mail {}",
        nr(&p.routing.lists),
        nr(&p.routing.bulk),
        nr(&p.routing.auto_replies),
        nr(&p.routing.own_mail)
    );
    let mode = serde_json::to_value(p.escalation.mode)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "Escalation: {mode}, sentiment threshold {} (HIGH at {}, URGENT at {})",
        p.escalation.threshold, p.escalation.high_at, p.escalation.urgent_at
    );
    for (text, members) in p.names.ambiguous() {
        let who: Vec<&str> = members
            .iter()
            .filter_map(|&i| p.members.get(i))
            .map(|m| m.name.as_str())
            .collect();
        let _ = writeln!(
            out,
            "note: \"{text}\" names several members ({}); it is ignored — full names still count",
            who.join(", ")
        );
    }
    for m in p.members.iter().filter(|m| m.email.is_none()) {
        let _ = writeln!(
            out,
            "note: {} has no email: mail addressed to them cannot be recognised, and alerts cannot reach them",
            m.name
        );
    }
    out
}
