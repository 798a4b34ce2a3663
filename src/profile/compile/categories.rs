//! Categories: the built-in pack, then the profile's overrides and additions, then
//! BOOKING when the profile has a `booking:` section; their order, thresholds and
//! subject boosts. One keyword set per category.

use std::collections::{BTreeMap, BTreeSet};

use super::super::raw::{RawCategory, RawProfile};
use super::super::rules::{Layered, ListKind, PROFILE};
use super::super::Category;
use super::category_ref;
use super::keywords::{keyword_set, merge_category, merge_keywords};
use crate::matching::matcher::KeywordSet;
use crate::yaml::checker::{Checker, DiagExt};
use crate::yaml::Path;

/// Checks and compiles the categories, in their order; adds their keyword sets to `sets`.
pub(super) fn categories(
    c: &mut Checker<'_>,
    raw: &RawProfile,
    packs: &Layered,
    sets: &mut Vec<KeywordSet>,
) -> Vec<Category> {
    let root = Path::root();
    let mut raw_cats: BTreeMap<String, RawCategory> = packs.categories.categories.clone();
    let mut order: Vec<String> = packs.categories.order.clone();
    if raw.booking.is_some() {
        let mut booking_cat = packs.booking.clone();
        if let Some(b) = &raw.booking {
            booking_cat.keywords = merge_keywords(&booking_cat.keywords, &b.keywords);
        }
        raw_cats.insert("BOOKING".to_string(), booking_cat);
        order.push("BOOKING".to_string());
    }
    for (name, overlay) in &raw.categories {
        let p = root.key("categories").key(name);
        if name.trim().is_empty() || name.contains(['{', '}', '/']) {
            c.at_key(&p, format!("`{name}` cannot be a category name"))
                .expect_("a name such as BILLING (letters, digits, _)");
            continue;
        }
        if name == "BOOKING" && raw.booking.is_none() {
            c.at_key(&p, "the BOOKING category needs a `booking:` section")
                .expect_(
                    "a `booking:` section with services and providers, or no BOOKING category",
                );
        }
        let merged = merge_category(raw_cats.get(name), overlay);
        if !raw_cats.contains_key(name) {
            order.push(name.clone());
        }
        raw_cats.insert(name.clone(), merged);
    }
    if let Some(custom) = &raw.routing.category_order {
        let p = root.key("routing").key("category_order");
        let mut seen = BTreeSet::new();
        let all: Vec<String> = raw_cats.keys().cloned().collect();
        let mut new_order = Vec::new();
        for (i, name) in custom.iter().enumerate() {
            if category_ref(c, &p.index(i), name, &all).is_some() && seen.insert(name.clone()) {
                new_order.push(name.clone());
            }
        }
        for name in order {
            if !seen.contains(&name) {
                new_order.push(name);
            }
        }
        order = new_order;
    }
    let global_boost = raw.routing.subject_boost.unwrap_or(1.0);
    if !(global_boost.is_finite() && global_boost >= 0.0) {
        c.at_value(
            &root.key("routing").key("subject_boost"),
            "subject_boost must be a number of 0 or more",
        )
        .expect_("a multiplier such as 1.0 or 2.0");
    }
    let mut categories: Vec<Category> = Vec::new();
    for name in &order {
        let Some(rc) = raw_cats.get(name) else {
            continue;
        };
        let p = root.key("categories").key(name);
        let threshold = rc.threshold.unwrap_or(1.0);
        if !(threshold.is_finite() && threshold >= 0.0) {
            c.at_value(
                &p.key("threshold"),
                format!("threshold of {name} must be 0 or more"),
            )
            .expect_("a score such as 1.0");
        }
        let boost = rc.subject_boost.unwrap_or(global_boost);
        if !(boost.is_finite() && boost >= 0.0) {
            c.at_value(
                &p.key("subject_boost"),
                "subject_boost must be a number of 0 or more",
            )
            .expect_("a multiplier such as 1.0 or 2.0");
        }
        let own = raw.categories.get(name);
        let booking_words = raw.booking.as_ref().map(|b| &b.keywords);
        let origin = |k: &str| -> &'static str {
            let in_profile = own
                .is_some_and(|o| o.keywords.contains_key(k) || o.patterns.contains_key(k))
                || (name == "BOOKING" && booking_words.is_some_and(|b| b.contains_key(k)));
            if in_profile {
                PROFILE
            } else {
                packs.sources.of(ListKind::Category, name, k)
            }
        };
        let set = keyword_set(c, &p, &rc.keywords, &rc.patterns, &origin);
        sets.push(set);
        categories.push(Category {
            name: name.clone(),
            description: rc.description.clone().unwrap_or_default(),
            threshold,
            subject_boost: boost,
            set: sets.len() - 1,
        });
    }
    categories
}
