//! The team: names (each names a folder, so unique and folder-safe), roles, addresses,
//! aliases.

use std::collections::BTreeMap;

use super::super::raw::RawMember;
use super::super::Member;
use super::folders::folder_keys;
use super::keywords::too_long;
use super::{valid_address, MAX_MEMBER_NAME_CHARS};
use crate::yaml::checker::{Checker, DiagExt};
use crate::yaml::diag::did_you_mean;
use crate::yaml::Path;

/// Checks and compiles the team members.
pub(super) fn team(c: &mut Checker<'_>, raw_team: &[RawMember], role_ids: &[&str]) -> Vec<Member> {
    let root = Path::root();
    let mut members: Vec<Member> = Vec::new();
    let mut seen_names: BTreeMap<String, usize> = BTreeMap::new();
    let mut seen_folders: BTreeMap<String, (usize, String)> = BTreeMap::new();
    let mut seen_addresses: BTreeMap<String, usize> = BTreeMap::new();
    for (i, m) in raw_team.iter().enumerate() {
        let p = root.key("team").index(i);
        let name = m.name.trim().to_string();
        if name.is_empty() {
            c.at_value(&p.key("name"), "a team member needs a name")
                .expect_("their full name, e.g. Mark Johnson");
        } else if name.chars().any(char::is_control) {
            c.at_value(
                &p.key("name"),
                "a name cannot contain control characters (line breaks, tabs)",
            )
            .expect_("a plain name such as Mark Johnson");
        } else if name.chars().count() > MAX_MEMBER_NAME_CHARS {
            let short: String = name.chars().take(24).collect();
            c.at_value(
                &p.key("name"),
                format!(
                    "the name `{short}…` is {} characters long; a name may have at most {MAX_MEMBER_NAME_CHARS}",
                    name.chars().count()
                ),
            )
            .expect_("their full name, e.g. Mark Johnson (it names their folder)");
        } else if let Some(prev) = seen_names.insert(name.to_lowercase(), i) {
            c.at_value(
                &p.key("name"),
                format!("`{name}` is already on the team (team[{prev}])"),
            )
            .expect_("each member's name to be unique (it names their folder)");
        } else if let Some((prev, other)) = folder_keys(&name)
            .iter()
            .find_map(|k| seen_folders.get(k).cloned())
        {
            c.at_value(
                &p.key("name"),
                format!("`{name}` would get the same folder as `{other}` (team[{prev}])"),
            )
            .expect_("names that differ in more than `/`, `.`, `*`, `%`, spaces or case: folder names cannot hold those characters");
        } else {
            for k in folder_keys(&name) {
                seen_folders.insert(k, (i, name.clone()));
            }
        }
        if m.roles.is_empty() {
            c.at_value(&p.key("roles"), format!("{name} has no roles"))
                .expect_(format!(
                    "at least one role, e.g. [{}]",
                    role_ids.first().copied().unwrap_or("owner")
                ));
        }
        let mut role_idx = Vec::new();
        for (j, r) in m.roles.iter().enumerate() {
            match role_ids.iter().position(|id| id == r) {
                Some(ri) => {
                    if role_idx.contains(&ri) {
                        c.at_value(
                            &p.key("roles").index(j),
                            format!("role `{r}` is listed twice"),
                        )
                        .expect_("each role once");
                    } else {
                        role_idx.push(ri);
                    }
                }
                None => {
                    c.at_value(&p.key("roles").index(j), format!("unknown role `{r}`"))
                        .expect_(format!("one of: {}", role_ids.join(", ")))
                        .suggest_(did_you_mean(r, role_ids.iter().copied()));
                }
            }
        }
        let mut addresses = Vec::new();
        let emails = m.email.iter().map(|e| (p.key("email"), e)).chain(
            m.addresses
                .iter()
                .enumerate()
                .map(|(j, a)| (p.key("addresses").index(j), a)),
        );
        for (ap, a) in emails {
            let a2 = a.trim().to_lowercase();
            if !valid_address(&a2) {
                c.at_value(&ap, format!("`{a}` is not an email address"))
                    .expect_("an address such as mark@hottubman.ca");
                continue;
            }
            if let Some(prev) = seen_addresses.insert(a2.clone(), i) {
                if prev != i {
                    c.at_value(&ap, format!("`{a}` already belongs to team[{prev}]"))
                        .expect_("each address to belong to one member");
                }
            }
            if !addresses.contains(&a2) {
                addresses.push(a2);
            }
        }
        let mut aliases = Vec::new();
        for (j, a) in m.aliases.iter().enumerate() {
            if a.trim().is_empty() {
                c.at_value(&p.key("aliases").index(j), "an empty alias names nobody")
                    .expect_("a word or phrase such as owner");
            } else if let Some(msg) = too_long(a.trim()) {
                c.at_value(&p.key("aliases").index(j), msg)
                    .expect_("a word or phrase such as owner");
            } else {
                aliases.push(a.trim().to_string());
            }
        }
        members.push(Member {
            name,
            email: m.email.as_ref().map(|e| e.trim().to_string()),
            addresses,
            roles: role_idx,
            aliases,
        });
    }
    members
}
