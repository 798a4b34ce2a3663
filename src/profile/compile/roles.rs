//! Roles: the built-in role library, then the profile's adjustments and new roles (held
//! by a member). One keyword set per role.

use std::collections::{BTreeMap, BTreeSet};

use super::super::raw::{RawProfile, RawRole};
use super::super::rules::{Layered, ListKind, PROFILE};
use super::super::Role;
use super::keywords::{keyword_set, merge_role};
use super::{category_ref, humanize};
use crate::matching::matcher::KeywordSet;
use crate::yaml::checker::{Checker, DiagExt};
use crate::yaml::diag::did_you_mean;
use crate::yaml::Path;

/// Checks and compiles the roles; adds their keyword sets to `sets`.
pub(super) fn roles(
    c: &mut Checker<'_>,
    raw: &RawProfile,
    packs: &Layered,
    cat_names: &[String],
    sets: &mut Vec<KeywordSet>,
) -> Vec<Role> {
    let root = Path::root();
    let mut raw_roles: BTreeMap<String, RawRole> = packs.roles.clone();
    let held: BTreeSet<&str> = raw
        .team
        .iter()
        .flat_map(|m| m.roles.iter().map(String::as_str))
        .collect();
    for (id, overlay) in &raw.roles {
        let p = root.key("roles").key(id);
        let builtin = packs.roles.contains_key(id);
        if !builtin && !held.contains(id.as_str()) {
            c.at_key(
                &p,
                format!("`{id}` is not a built-in role and no team member holds it"),
            )
            .expect_(format!(
                "a built-in role to adjust ({}), or a new role given to a team member",
                packs.roles.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
            .suggest_(did_you_mean(id, packs.roles.keys().map(String::as_str)));
            continue;
        }
        raw_roles.insert(id.clone(), merge_role(packs.roles.get(id), overlay));
    }
    let mut roles: Vec<Role> = Vec::new();
    for (id, rr) in &raw_roles {
        let p = root.key("roles").key(id);
        let weight = rr.weight.unwrap_or(1.0);
        if !(weight.is_finite() && weight >= 0.0) {
            c.at_value(
                &p.key("weight"),
                format!("weight of role {id} must be 0 or more"),
            )
            .expect_("a multiplier such as 1.0 or 1.2");
        }
        let mut cats = Vec::new();
        for (i, cat) in rr.categories.clone().unwrap_or_default().iter().enumerate() {
            if let Some(ci) = category_ref(c, &p.key("categories").index(i), cat, cat_names) {
                cats.push(ci);
            }
        }
        let own = raw.roles.get(id);
        let origin = |k: &str| -> &'static str {
            if own.is_some_and(|o| o.keywords.contains_key(k) || o.patterns.contains_key(k)) {
                PROFILE
            } else {
                packs.sources.of(ListKind::Role, id, k)
            }
        };
        let set = keyword_set(c, &p, &rr.keywords, &rr.patterns, &origin);
        sets.push(set);
        roles.push(Role {
            id: id.clone(),
            label: rr.label.clone().unwrap_or_else(|| humanize(id)),
            description: rr.description.clone().unwrap_or_default(),
            weight,
            categories: cats,
            set: sets.len() - 1,
        });
    }
    roles
}
