//! Second stage of loading: merge the profile over the built-in rule packs, check what it
//! means, and build the compiled [`Profile`].
//!
//! Every check records a diagnostic and carries on, so one run reports every problem.
//!
//! This file holds the walk over the profile (`build`); `checker.rs` collects the
//! diagnostics, `keywords.rs` merges and compiles keyword maps, `folders.rs` checks folder
//! names and templates, `escalation.rs` compiles the escalation section.

use std::collections::{BTreeMap, BTreeSet};

use super::diag::{did_you_mean, ConfigError, Diagnostic};
use super::raw::{FirstNames, RawCategory, RawProfile, RawRole, RawUnmatched, UnmatchedWord};
use super::rules::RulePacks;
use super::shape;
use super::yaml::{Document, Path};
use super::{Business, Category, Member, NotRouted, Piece, Profile, Role, Routing, SenderRule};
use crate::triage::matcher::{KeywordSet, Matcher};
use crate::triage::names::NameIndex;

mod checker;
mod escalation;
mod folders;
mod keywords;

pub(crate) use checker::{Checker, DiagExt};
use escalation::escalation;
use folders::{folder_keys, folder_template, is_inbox, not_routed, plain_folder};
pub(crate) use keywords::plain_set;
use keywords::{keyword_set, merge_category, merge_keywords, merge_role, too_long};

/// Longest member name, in characters. A name names a folder: servers and file systems
/// limit a folder name to a few hundred bytes (a Maildir++ folder is one directory name of
/// at most 255), and modified UTF-7 can take more than three bytes per character.
pub const MAX_MEMBER_NAME_CHARS: usize = 80;

/// Longest keyword, phrase or alias, in characters. Real ones are a few words; building
/// the keyword automaton costs time quadratic in a keyword's length (a 10,000-character
/// keyword took minutes), so longer ones are refused rather than slowing every reload.
pub const MAX_KEYWORD_CHARS: usize = 100;

/// FNV-1a, 64 bit: a stable content fingerprint (not for security).
pub fn fingerprint(parts: &[&[u8]]) -> String {
    format!("{:016x}", crate::mail::hash_parts(parts))
}

/// Parses, validates and compiles a profile.
pub fn compile(file: &str, bytes: &[u8]) -> Result<Profile, ConfigError> {
    let doc = Document::parse(file, bytes).map_err(|d| ConfigError::single(*d))?;
    let schema = Profile::json_schema();
    if matches!(doc.root.value, super::yaml::Value::Null) {
        return Err(ConfigError::single(
            Diagnostic::new(file, doc.root.loc, Path::root(), "the profile is empty")
                .expected("at least `business: {name: Your Business}` and a `team:` list"),
        ));
    }
    let shape_errors = shape::check(file, &doc.root, &schema);
    if !shape_errors.is_empty() {
        let mut c = Checker::new(&doc);
        c.out = shape_errors;
        return Err(ConfigError {
            diagnostics: c.finish(),
        });
    }
    let raw: RawProfile = doc
        .typed()
        .map_err(|d| ConfigError::single(d.with_source(&doc.text)))?;
    let packs = RulePacks::builtin().map_err(|e| {
        ConfigError::single(Diagnostic::new(file, Default::default(), Path::root(), e))
    })?;
    let mut c = Checker::new(&doc);
    let profile = build(&mut c, &raw, &packs, bytes);
    let diagnostics = c.finish();
    match profile {
        Some(p) if diagnostics.is_empty() => Ok(p),
        _ => Err(ConfigError { diagnostics }),
    }
}

/// Looks up a category by name, reporting an unknown one at `path`.
fn category_ref(c: &mut Checker<'_>, path: &Path, name: &str, names: &[String]) -> Option<usize> {
    let found = names.iter().position(|n| n == name);
    if found.is_none() {
        let upper = name.to_uppercase();
        let hint = names
            .iter()
            .find(|n| **n == upper)
            .cloned()
            .or_else(|| did_you_mean(name, names.iter().map(String::as_str)));
        c.at_value(path, format!("unknown category `{name}`"))
            .expect_(format!("one of: {}", names.join(", ")))
            .suggest_(hint);
    }
    found
}

fn valid_address(s: &str) -> bool {
    let mut parts = s.splitn(2, '@');
    matches!((parts.next(), parts.next()), (Some(l), Some(d)) if !l.is_empty() && d.contains('.') && !d.starts_with('.') && !d.ends_with('.') && !s.contains(char::is_whitespace))
}

fn build(
    c: &mut Checker<'_>,
    raw: &RawProfile,
    packs: &RulePacks,
    bytes: &[u8],
) -> Option<Profile> {
    let root = Path::root();

    // --- business ---
    let bpath = root.key("business");
    if raw.business.name.trim().is_empty() {
        c.at_value(&bpath.key("name"), "the business name is empty")
            .expect_("the business's name, e.g. Hot Tub Man");
    }
    let mut domains = Vec::new();
    for (i, d) in raw.business.domains.iter().enumerate() {
        let d2 = d.trim().trim_start_matches('@').to_lowercase();
        if d2.is_empty()
            || !d2.contains('.')
            || d2.contains(char::is_whitespace)
            || d2.contains('@')
        {
            c.at_value(
                &bpath.key("domains").index(i),
                format!("`{d}` is not a mail domain"),
            )
            .expect_("a domain such as hottubman.ca");
        } else {
            domains.push(d2);
        }
    }
    let timezone = match &raw.business.timezone {
        None => chrono_tz::UTC,
        Some(tz) => match tz.parse::<chrono_tz::Tz>() {
            Ok(t) => t,
            Err(_) => {
                let names = chrono_tz::TZ_VARIANTS.iter().map(|t| t.name());
                c.at_value(&bpath.key("timezone"), format!("unknown time zone `{tz}`"))
                    .expect_("an IANA time zone such as America/Toronto or Europe/Paris")
                    .suggest_(did_you_mean(tz, names));
                chrono_tz::UTC
            }
        },
    };

    // --- categories: pack, then profile overrides, then BOOKING ---
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
    let mut sets: Vec<KeywordSet> = Vec::new();
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
        let set = keyword_set(c, &p, &rc.keywords, &rc.patterns);
        sets.push(set);
        categories.push(Category {
            name: name.clone(),
            description: rc.description.clone().unwrap_or_default(),
            threshold,
            subject_boost: boost,
            set: sets.len() - 1,
        });
    }
    let cat_names: Vec<String> = categories.iter().map(|c| c.name.clone()).collect();

    // --- roles ---
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
            if let Some(ci) = category_ref(c, &p.key("categories").index(i), cat, &cat_names) {
                cats.push(ci);
            }
        }
        let set = keyword_set(c, &p, &rr.keywords, &rr.patterns);
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
    let role_ids: Vec<&str> = roles.iter().map(|r| r.id.as_str()).collect();

    // --- team ---
    let mut members: Vec<Member> = Vec::new();
    let mut seen_names: BTreeMap<String, usize> = BTreeMap::new();
    let mut seen_folders: BTreeMap<String, (usize, String)> = BTreeMap::new();
    let mut seen_addresses: BTreeMap<String, usize> = BTreeMap::new();
    for (i, m) in raw.team.iter().enumerate() {
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
    let mut member_names: Vec<&str> = Vec::new();
    for m in &members {
        if !member_names.contains(&m.name.as_str()) {
            member_names.push(m.name.as_str());
        }
    }
    let member_ref = |c: &mut Checker<'_>, path: &Path, name: &str| -> Option<usize> {
        let found = member_names.iter().position(|n| *n == name.trim());
        if found.is_none() {
            c.at_value(path, format!("`{name}` is not on the team"))
                .expect_(format!("a name from `team:` ({})", member_names.join(", ")))
                .suggest_(did_you_mean(name, member_names.iter().copied()));
        }
        found
    };

    // --- routing ---
    let rp = root.key("routing");
    let folder = folder_template(
        c,
        &rp.key("folder"),
        raw.routing
            .folder
            .as_deref()
            .unwrap_or("{category}/{member}"),
        &["category", "member", "role"],
    );
    let unassigned_folder = folder_template(
        c,
        &rp.key("unassigned_folder"),
        raw.routing
            .unassigned_folder
            .as_deref()
            .unwrap_or("Unassigned"),
        &["category"],
    );
    // A folder that is INBOX itself would file mail back where it came from.
    let has_member = folder
        .components
        .iter()
        .flatten()
        .any(|p| *p == Piece::Member);
    let mut template_is_inbox = false;
    for (i, m) in members.iter().enumerate() {
        let role_ids_of: Vec<&str> = m
            .roles
            .iter()
            .filter_map(|&r| role_ids.get(r).copied())
            .collect();
        let roles_or_none = if role_ids_of.is_empty() {
            vec![""]
        } else {
            role_ids_of
        };
        let hit = cat_names.iter().find_map(|cat| {
            roles_or_none
                .iter()
                .map(|role| folder.render(cat, &m.name, role))
                .find(|levels| is_inbox(levels))
        });
        if let Some(levels) = hit {
            if has_member {
                c.at_value(
                    &root.key("team").index(i).key("name"),
                    format!(
                        "{}'s folder would be `{}`, the inbox mail is taken from",
                        m.name,
                        levels.join("/")
                    ),
                )
                .expect_("another name, or a routing.folder such as \"{category}/{member}\"");
            } else {
                template_is_inbox = true;
            }
        }
    }
    let unassigned_is_inbox = cat_names
        .iter()
        .any(|cat| is_inbox(&unassigned_folder.render(cat, "", "")));
    for (is, key) in [
        (template_is_inbox, "folder"),
        (unassigned_is_inbox, "unassigned_folder"),
    ] {
        if is {
            c.at_value(
                &rp.key(key),
                "this folder would be the inbox mail is taken from",
            )
            .expect_("a folder other than INBOX, such as \"{category}/{member}\" or Unassigned");
        }
    }
    let default_category = match &raw.routing.default_category {
        Some(n) => category_ref(c, &rp.key("default_category"), n, &cat_names),
        None => cat_names.iter().position(|n| n == "SUPPORT"),
    }
    .unwrap_or(0);
    let fallback_role = match &raw.routing.fallback_role {
        Some(r) => {
            let found = role_ids.iter().position(|id| id == r);
            if found.is_none() {
                c.at_value(&rp.key("fallback_role"), format!("unknown role `{r}`"))
                    .expect_(format!("one of: {}", role_ids.join(", ")))
                    .suggest_(did_you_mean(r, role_ids.iter().copied()));
            }
            found
        }
        None => role_ids.iter().position(|id| *id == "owner"),
    };
    let content_match = match &raw.routing.content_match_categories {
        Some(list) => list
            .iter()
            .enumerate()
            .filter_map(|(i, n)| {
                category_ref(
                    c,
                    &rp.key("content_match_categories").index(i),
                    n,
                    &cat_names,
                )
            })
            .collect(),
        None => cat_names
            .iter()
            .position(|n| n == "MANAGER")
            .into_iter()
            .collect(),
    };
    let first_names = raw.routing.first_names.unwrap_or(FirstNames::Capitalized);
    let routing = Routing {
        folder,
        unassigned_folder,
        default_category,
        fallback_role,
        content_match,
        first_names,
        lists: not_routed(c, &rp.key("lists"), &raw.routing.lists),
        bulk: not_routed(c, &rp.key("bulk"), &raw.routing.bulk),
        auto_replies: not_routed(c, &rp.key("auto_replies"), &raw.routing.auto_replies),
        own_mail: not_routed(c, &rp.key("own_mail"), &raw.routing.own_mail),
        unmatched: match &raw.routing.unmatched {
            None | Some(RawUnmatched::Word(UnmatchedWord::Route)) => None,
            Some(RawUnmatched::Word(UnmatchedWord::Leave)) => Some(NotRouted::Leave),
            Some(RawUnmatched::Folder(f)) => Some(NotRouted::Folder(plain_folder(
                c,
                &rp.key("unmatched").key("folder"),
                &f.folder,
            ))),
        },
    };

    // --- escalation ---
    let escalation = escalation(
        c,
        &raw.escalation,
        &packs.escalation,
        &member_names,
        &mut sets,
    );

    // --- senders ---
    let mut senders = Vec::new();
    for (i, s) in raw.senders.iter().enumerate() {
        let p = root.key("senders").index(i);
        let from = s.from.trim().trim_start_matches('@').to_lowercase();
        let looks_ok = !from.is_empty()
            && !from.contains(char::is_whitespace)
            && (valid_address(&from) || (from.contains('.') && !from.contains('@')));
        if !looks_ok {
            c.at_value(
                &p.key("from"),
                format!("`{}` is neither an address nor a domain", s.from),
            )
            .expect_("an address such as orders@acme.com or a domain such as acme.com");
        }
        if s.category.is_none() && s.member.is_none() {
            c.at_value(&p, "this sender rule does nothing")
                .expect_("a `category:`, a `member:`, or both");
        }
        let category = s
            .category
            .as_ref()
            .and_then(|n| category_ref(c, &p.key("category"), n, &cat_names));
        let member = s
            .member
            .as_ref()
            .and_then(|n| member_ref(c, &p.key("member"), n));
        senders.push(SenderRule {
            from,
            category,
            member,
        });
    }

    // --- booking ---
    let booking = match &raw.booking {
        None => None,
        Some(b) => super::booking_compile::booking(c, b, &cat_names, &mut sets, &member_ref),
    };

    // --- acknowledgement, digest, alert addresses ---
    let (acknowledgement, digest) =
        super::notices_compile::notices(c, raw, &cat_names, &members, &member_ref);

    // Every other list of words (urgency, booking, …) as a backstop: located at the top.
    if let Some(msg) = sets
        .iter()
        .flat_map(|s| s.entries.iter())
        .find_map(|e| too_long(&e.keyword))
    {
        c.at_value(&root, msg).expect_("a word or a short phrase");
    }
    // A profile that is already rejected need not pay for its automata.
    if !c.out.is_empty() {
        return None;
    }
    let matcher = match Matcher::new(sets) {
        Ok(m) => m,
        Err(e) => {
            c.at_value(&root, e).expect_("fewer or shorter keywords");
            return None;
        }
    };
    let names = NameIndex::new(
        &members
            .iter()
            .map(|m| (m.name.clone(), m.aliases.clone()))
            .collect::<Vec<_>>(),
        first_names,
    );
    let mut parts: Vec<&[u8]> = vec![bytes];
    parts.extend(RulePacks::fingerprint_input().iter().map(|s| s.as_bytes()));
    Some(Profile {
        file: c.file().to_string(),
        version: fingerprint(&parts),
        business: Business {
            name: raw.business.name.trim().to_string(),
            domains,
            timezone,
        },
        members,
        roles,
        categories,
        routing,
        escalation,
        senders,
        booking,
        acknowledgement,
        digest,
        matcher,
        names,
    })
}

/// `sales_manager` → `Sales Manager`.
fn humanize(id: &str) -> String {
    id.split('_')
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut cs = w.chars();
            match cs.next() {
                Some(f) => f.to_uppercase().collect::<String>() + cs.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Resolves a member's name to its index, reporting an unknown name.
pub(crate) type MemberRef<'m> = dyn Fn(&mut Checker<'_>, &Path, &str) -> Option<usize> + 'm;
