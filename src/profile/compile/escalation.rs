//! The `escalation` section: mode, lexicon, levels and their actions.

use std::collections::BTreeMap;

use super::folders::plain_folder;
use super::keywords::{plain_set, too_long};
use crate::matching::matcher::{Entry, KeywordSet};
use crate::matching::Level;
use crate::profile::raw::{KeywordLevel, RawAction, RawEscalation};
use crate::profile::rules::{Layered, ListKind, BASE, PROFILE};
use crate::profile::{Action, EscalationRules};
use crate::yaml::checker::{Checker, DiagExt};
use crate::yaml::diag::did_you_mean;
use crate::yaml::durations::parse_duration;
use crate::yaml::Path;

pub(super) fn escalation(
    c: &mut Checker<'_>,
    raw: &RawEscalation,
    packs: &Layered,
    member_names: &[&str],
    cat_names: &[String],
    sets: &mut Vec<KeywordSet>,
) -> EscalationRules {
    let pack = &packs.escalation;
    let p = Path::root().key("escalation");
    let mode = raw
        .mode
        .or(pack.mode)
        .unwrap_or(crate::profile::EscalationMode::SentimentThenKeyword);
    let threshold = raw
        .sentiment_threshold
        .or(pack.sentiment_threshold)
        .unwrap_or(-0.5);
    let mut in_scale = true;
    if !(-1.0..=1.0).contains(&threshold) {
        in_scale = false;
        c.at_value(
            &p.key("sentiment_threshold"),
            format!("{threshold} is outside the sentiment scale"),
        )
        .expect_("a number between -1 (very negative) and 1 (very positive), e.g. -0.5");
    }
    let levels = |r: &RawEscalation| r.sentiment_levels.clone().unwrap_or_default();
    let (rl, pl) = (levels(raw), levels(pack));
    let urgent_at = rl.URGENT.or(pl.URGENT).unwrap_or(-0.8);
    let high_at = rl.HIGH.or(pl.HIGH).unwrap_or(-0.6);
    for (key, v) in [("URGENT", urgent_at), ("HIGH", high_at)] {
        if !(-1.0..=1.0).contains(&v) {
            in_scale = false;
            c.at_value(
                &p.key("sentiment_levels").key(key),
                format!("{v} is outside the sentiment scale"),
            )
            .expect_("a number between -1 and 1");
        }
    }
    if in_scale && (urgent_at > high_at || high_at > threshold) {
        let at = if raw.sentiment_levels.is_some() {
            p.key("sentiment_levels")
        } else {
            p.key("sentiment_threshold")
        };
        c.at_value(
            &at,
            format!("sentiment levels must satisfy URGENT ({urgent_at}) ≤ HIGH ({high_at}) ≤ sentiment_threshold ({threshold})"),
        )
        .expect_("stronger negativity for higher priority, e.g. URGENT -0.8, HIGH -0.6, threshold -0.5");
    }
    // keywords
    let mut merged: BTreeMap<String, KeywordLevel> = pack.keywords.clone();
    for (k, lvl) in &raw.keywords {
        merged.insert(k.clone(), *lvl);
    }
    let mut set = KeywordSet::default();
    let mut lv = Vec::new();
    for (k, lvl) in &merged {
        let level = match lvl {
            KeywordLevel::URGENT => Level::URGENT,
            KeywordLevel::HIGH => Level::HIGH,
            KeywordLevel::MEDIUM => Level::MEDIUM,
            KeywordLevel::None => continue,
        };
        if k.trim().trim_end_matches('*').trim().is_empty() {
            c.at_key(
                &p.key("keywords").key(k),
                "an empty keyword matches nothing",
            )
            .expect_("a word or phrase");
            continue;
        }
        if let Some(msg) = too_long(k) {
            c.at_key(&p.key("keywords").key(k), msg)
                .expect_("a word or a short phrase");
            continue;
        }
        set.entries.push(Entry {
            keyword: k.clone(),
            weight: 1.0,
            origin: if raw.keywords.contains_key(k) {
                PROFILE
            } else {
                packs.sources.of(ListKind::Escalation, "", k)
            },
        });
        lv.push(level);
    }
    sets.push(set);
    let esc_set = sets.len() - 1;
    let urgency: Vec<String> = raw
        .urgency
        .clone()
        .or_else(|| pack.urgency.clone())
        .unwrap_or_default();
    let urgency_origin = if raw.urgency.is_some() { PROFILE } else { BASE };
    sets.push(plain_set(&urgency, urgency_origin));
    let urgency_set = sets.len() - 1;
    let mass_mail: Vec<String> = pack
        .mass_mail
        .iter()
        .chain(raw.mass_mail.iter())
        .cloned()
        .collect();
    let mut mass = plain_set(&mass_mail, BASE);
    for e in &mut mass.entries {
        if raw.mass_mail.contains(&e.keyword) {
            e.origin = PROFILE;
        }
    }
    sets.push(mass);
    let mass_mail_set = sets.len() - 1;
    // actions
    let pick = |level: Level| -> (Option<RawAction>, Option<RawAction>) {
        let get = |r: &RawEscalation| {
            r.actions.as_ref().and_then(|a| match level {
                Level::URGENT => a.URGENT.clone(),
                Level::HIGH => a.HIGH.clone(),
                Level::MEDIUM => a.MEDIUM.clone(),
            })
        };
        (get(raw), get(pack))
    };
    let mut actions: [Action; 3] = Default::default();
    for level in Level::ALL {
        let (own, builtin) = pick(level);
        let from_profile = own.is_some();
        let a = own.or(builtin).unwrap_or_default();
        let ap = p.key("actions").key(level.as_str());
        let mut notify = Vec::new();
        for (i, n) in a.notify.clone().unwrap_or_default().iter().enumerate() {
            let ok = n == "recipient" || n == "fallback" || member_names.contains(&n.as_str());
            if !ok && from_profile {
                let mut cands: Vec<&str> = vec!["recipient", "fallback"];
                cands.extend(member_names.iter().copied());
                c.at_value(
                    &ap.key("notify").index(i),
                    format!("`{n}` is neither `recipient`, `fallback` nor a team member"),
                )
                .expect_(format!("one of: {}", cands.join(", ")))
                .suggest_(did_you_mean(n, cands.iter().copied()));
            }
            if ok {
                notify.push(n.clone());
            }
        }
        let keywords = match &a.keywords {
            Some(k) => {
                for (i, kw) in k.iter().enumerate() {
                    let valid = !kw.is_empty()
                        && !kw.starts_with('\\')
                        && kw
                            .chars()
                            .all(|ch| ch.is_ascii_graphic() && !"(){%*\"\\]".contains(ch));
                    if !valid {
                        c.at_value(
                            &ap.key("keywords").index(i),
                            format!("`{kw}` cannot be an IMAP keyword"),
                        )
                        .expect_("a word of letters, digits, $ or _ such as $Escalated");
                    }
                }
                k.clone()
            }
            None => vec![
                "$Escalated".to_string(),
                format!("$Priority_{}", level.as_str()),
            ],
        };
        let copy_to = a
            .copy_to
            .as_ref()
            .map(|f| plain_folder(c, &ap.key("copy_to"), f));
        actions[level as usize] = Action {
            flag: a.flag.unwrap_or(false),
            keywords,
            notify,
            copy_to,
        };
    }
    let mut sentiment_neutral: Vec<String> = pack
        .sentiment_neutral
        .iter()
        .chain(raw.sentiment_neutral.iter())
        .map(|w| w.trim().to_lowercase())
        .filter(|w| !w.is_empty())
        .collect();
    sentiment_neutral.sort();
    sentiment_neutral.dedup();
    let mut levels_by_name = pack.categories.clone();
    for (cat, level) in &raw.categories {
        let at = p.key("categories").key(cat);
        if super::category_ref(c, &at, cat, cat_names).is_some() {
            levels_by_name.insert(cat.clone(), *level);
        }
    }
    let category_levels = cat_names
        .iter()
        .map(|n| match levels_by_name.get(n) {
            Some(KeywordLevel::URGENT) => Some(Level::URGENT),
            Some(KeywordLevel::HIGH) => Some(Level::HIGH),
            Some(KeywordLevel::MEDIUM) => Some(Level::MEDIUM),
            Some(KeywordLevel::None) | None => None,
        })
        .collect();
    let mut names: Vec<String> = pack
        .names
        .iter()
        .chain(raw.names.iter())
        .map(|w| w.trim().to_lowercase())
        .filter(|w| !w.is_empty())
        .collect();
    names.sort();
    names.dedup();
    let alert_once_per_secs = alert_once_per(c, &p, raw, pack);
    EscalationRules {
        alert_once_per_secs,
        mass_mail_set,
        category_levels,
        names,
        sentiment_neutral,
        mode,
        threshold,
        urgent_at,
        high_at,
        set: esc_set,
        levels: lv,
        urgency_set,
        actions,
    }
}

/// `escalation.alert_once_per`: `0` (no limit) or a duration of at most a week; 1 h when
/// not given.
fn alert_once_per(c: &mut Checker<'_>, p: &Path, raw: &RawEscalation, pack: &RawEscalation) -> u64 {
    const DEFAULT: u64 = 3600;
    let Some(text) = raw.alert_once_per.as_ref().or(pack.alert_once_per.as_ref()) else {
        return DEFAULT;
    };
    if text.trim() == "0" {
        return 0;
    }
    match parse_duration(text) {
        Ok(secs) if secs <= 7 * 24 * 3600 => secs,
        Ok(_) => {
            c.at_value(
                &p.key("alert_once_per"),
                format!("`{text}` is longer than a week"),
            )
            .expect_("a duration such as 1h, 30m or 1d; 0 for no limit");
            DEFAULT
        }
        Err(e) => {
            c.at_value(&p.key("alert_once_per"), e)
                .expect_("a duration such as 1h, 30m or 1d; 0 for no limit");
            DEFAULT
        }
    }
}
