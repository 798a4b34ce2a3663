//! Second stage of loading: merge the profile over the built-in rule packs, check what it
//! means, and build the compiled [`Profile`].
//!
//! Every check records a diagnostic and carries on, so one run reports every problem.
//!
//! `build` walks the profile one section at a time, each in a file of its own
//! (`business`, `categories`, `roles`, `team`, `routing`, `escalation`, `senders`; booking
//! and notices beside `compile/`), then builds the automata. `keywords.rs` merges and
//! compiles keyword maps, `folders.rs` checks folder names and templates; diagnostics are
//! collected by `yaml::checker`.

use super::raw::RawProfile;
use super::rules::RulePacks;
use super::Profile;
use crate::matching::matcher::{KeywordSet, Matcher};
use crate::matching::names::NameIndex;
use crate::yaml::diag::{did_you_mean, ConfigError, Diagnostic};
use crate::yaml::shape;
use crate::yaml::{Document, Path};

mod business;
mod categories;
mod escalation;
mod folders;
mod keywords;
mod roles;
mod routing;
mod senders;
mod team;

use crate::yaml::checker::{Checker, DiagExt};
use escalation::escalation;
pub(crate) use keywords::plain_set;
use keywords::too_long;

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
    if matches!(doc.root.value, crate::yaml::Value::Null) {
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
    let business = business::business(c, &raw.business, &packs.industry_names());
    let layered = packs.layered(&business.industries);
    let packs = &layered;
    let mut sets: Vec<KeywordSet> = Vec::new();
    let categories = categories::categories(c, raw, packs, &mut sets);
    let cat_names: Vec<String> = categories.iter().map(|c| c.name.clone()).collect();
    let roles = roles::roles(c, raw, packs, &cat_names, &mut sets);
    let role_ids: Vec<&str> = roles.iter().map(|r| r.id.as_str()).collect();
    let members = team::team(c, &raw.team, &role_ids);
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
    let routing = routing::routing(c, &raw.routing, &cat_names, &role_ids, &members);
    let first_names = routing.first_names;
    let escalation = escalation(
        c,
        &raw.escalation,
        packs,
        &member_names,
        &cat_names,
        &mut sets,
    );

    let senders = senders::senders(c, &raw.senders, &cat_names, &member_ref);
    let booking = match &raw.booking {
        None => None,
        Some(b) => super::booking_compile::booking(c, b, &cat_names, &mut sets, &member_ref),
    };
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
    parts.extend(
        RulePacks::fingerprint_input()
            .into_iter()
            .map(str::as_bytes),
    );
    Some(Profile {
        file: c.file().to_string(),
        version: fingerprint(&parts),
        business,
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
