//! Classification (SPEC §4): a score per category from the distinct keywords found in the
//! subject and new text; URGENT wins at its threshold, otherwise the highest qualifying
//! score, ties by category order, and below every threshold the default category.

use std::collections::BTreeMap;

use super::decision::{round, CategoryDetail, Classification, KeywordHit};
use crate::matching::matcher::{Hit, Matcher, Scan, SetId};
use crate::profile::Profile;

/// The outcome of classification.
#[derive(Debug, Clone)]
pub struct Classified {
    /// Index into the profile's categories.
    pub category: usize,
    pub scores: BTreeMap<String, f64>,
    pub explanation: Classification,
}

/// Where a hit was found, as the receipt says it.
pub fn found_in(h: &Hit) -> String {
    match (h.found.subject, h.found.body) {
        (true, true) => "subject+body",
        (true, false) => "subject",
        _ => "body",
    }
    .to_string()
}

/// Whether a hit lies in the subject or the opening of the new text (its first
/// [`super::URGENCY_SCAN_BYTES`]): what escalation, and a category that escalates on its
/// own, judge a message by — an emergency is not buried on page eight of a digest.
pub fn in_opening(h: &Hit) -> bool {
    h.found.subject || h.first_body_pos < super::URGENCY_SCAN_BYTES
}

/// Scores one keyword set: Σ distinct hits × (subject_boost when in the subject) × factor.
pub fn score_set(
    matcher: &Matcher,
    scan: &Scan,
    set: SetId,
    subject_boost: f64,
    factor: f64,
) -> (f64, Vec<KeywordHit>) {
    score_set_within(matcher, scan, set, subject_boost, factor, false)
}

/// [`score_set`]; with `opening_only`, hits past the opening score nothing (they are
/// listed, found in "body, past the opening").
fn score_set_within(
    matcher: &Matcher,
    scan: &Scan,
    set: SetId,
    subject_boost: f64,
    factor: f64,
    opening_only: bool,
) -> (f64, Vec<KeywordHit>) {
    let mut total = 0.0;
    let mut hits = Vec::new();
    for h in scan.set(set) {
        let weight = matcher.weight(set, h.entry);
        if opening_only && !in_opening(h) {
            hits.push(KeywordHit {
                keyword: matcher.label(set, h.entry).to_string(),
                weight,
                points: 0.0,
                found_in: "body, past the opening".to_string(),
            });
            continue;
        }
        let boost = if h.found.subject { subject_boost } else { 1.0 };
        let points = weight * boost * factor;
        total += points;
        hits.push(KeywordHit {
            keyword: matcher.label(set, h.entry).to_string(),
            weight,
            points: round(points),
            found_in: found_in(h),
        });
    }
    (round(total), hits)
}

/// Classifies a scanned message; `forced` is a category set by a sender rule.
pub fn classify(profile: &Profile, scan: &Scan, forced: Option<usize>) -> Classified {
    let mut details = Vec::new();
    let mut scores = BTreeMap::new();
    for (i, cat) in profile.categories.iter().enumerate() {
        // A category that escalates on its own is judged by the opening, like escalation.
        let opening_only = profile
            .escalation
            .category_levels
            .get(i)
            .is_some_and(Option::is_some);
        let (score, hits) = score_set_within(
            &profile.matcher,
            scan,
            cat.set,
            cat.subject_boost,
            1.0,
            opening_only,
        );
        scores.insert(cat.name.clone(), score);
        details.push(CategoryDetail {
            category: cat.name.clone(),
            score,
            threshold: cat.threshold,
            hits,
        });
    }
    let qualifies = |d: &CategoryDetail| d.score > 0.0 && d.score >= d.threshold;
    let urgent = details
        .iter()
        .position(|d| d.category == "URGENT" && qualifies(d));
    // Highest qualifying score; the earlier category (declared order) wins a tie.
    let mut ranked: Vec<usize> = (0..details.len())
        .filter(|&i| qualifies(&details[i]))
        .collect();
    ranked.sort_by(|&a, &b| {
        details[b]
            .score
            .partial_cmp(&details[a].score)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.cmp(&b))
    });
    let (category, rule) = if let Some(f) = forced {
        (f, "sender_rule")
    } else if let Some(u) = urgent {
        (u, "urgent_threshold")
    } else if let Some(&best) = ranked.first() {
        let tied = ranked
            .get(1)
            .is_some_and(|&second| details[second].score == details[best].score);
        (best, if tied { "tie_break" } else { "highest_score" })
    } else {
        (profile.routing.default_category, "default_category")
    };
    let runner_up = ranked
        .iter()
        .find(|&&i| i != category)
        .map(|&i| details[i].category.clone());
    let details = details
        .into_iter()
        .enumerate()
        .filter(|(i, d)| *i == category || d.score != 0.0)
        .map(|(_, d)| d)
        .collect();
    Classified {
        category,
        scores,
        explanation: Classification {
            rule: rule.to_string(),
            details,
            runner_up,
        },
    }
}
