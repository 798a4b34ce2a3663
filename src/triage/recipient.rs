//! Choosing the recipient (SPEC §5), first match wins:
//!
//! 1. addressed or named (address > greeting > subject > body) — `name_mention`;
//!    a sender rule naming a member comes right after — `sender_rule`;
//! 2. content-matched categories (MANAGER by default): every member scored over all their
//!    roles, highest wins — `manager_role_content_match` / `manager_multiple_roles_matched`;
//! 3. other categories: the holders of the roles that handle the category; higher content
//!    score, then lower 7-day load, then profile order — `category_role`;
//! 4. the fallback role's holder — `fallback`; nobody at all — `unassigned`.

use super::classify::score_set;
use super::decision::{round, Candidate, NameMention, Reason, RoleMatch};
use super::{Folded, History};
use crate::mail::MessageView;
use crate::matching::matcher::{fold_keyword, spelling, Scan};
use crate::matching::names::NameHit;
use crate::profile::Profile;

/// Who gets the message and why.
#[derive(Debug, Clone)]
pub struct Routed {
    pub member: Option<usize>,
    pub reason: Reason,
    /// Role used for `{role}` and shown in the receipt.
    pub role: Option<usize>,
    pub name_mention: Option<NameMention>,
    pub candidates: Vec<Candidate>,
    pub total_score: f64,
    pub matched_roles: Vec<RoleMatch>,
    pub runner_up: Option<String>,
    pub margin: Option<f64>,
    pub tie_break: Option<String>,
}

impl Routed {
    /// A choice without content candidates.
    pub(crate) fn simple(member: Option<usize>, reason: Reason, role: Option<usize>) -> Routed {
        Routed {
            member,
            reason,
            role,
            name_mention: None,
            candidates: Vec::new(),
            total_score: 0.0,
            matched_roles: Vec::new(),
            runner_up: None,
            margin: None,
            tie_break: None,
        }
    }
}

/// The words (folded, as matched) that scored for `category` in this message.
pub(crate) fn category_words(profile: &Profile, scan: &Scan, category: usize) -> Vec<String> {
    let Some(cat) = profile.categories.get(category) else {
        return Vec::new();
    };
    scan.set(cat.set)
        .iter()
        .map(|h| fold_keyword(spelling(profile.matcher.label(cat.set, h.entry)).0))
        .collect()
}

/// A member's content score over a set of their roles; `category_words` are the words of
/// the message's category ([`category_words`]).
pub(crate) fn content_score(
    profile: &Profile,
    scan: &Scan,
    member: usize,
    roles: &[usize],
    history: &History,
    category_words: &[String],
) -> Candidate {
    let m = &profile.members[member];
    let mut matched = Vec::new();
    let mut total = 0.0;
    let mut on_category = 0.0;
    for &ri in roles {
        let Some(role) = profile.roles.get(ri) else {
            continue;
        };
        let (score, hits) = score_set(&profile.matcher, scan, role.set, 1.0, role.weight);
        for h in &hits {
            if category_words.contains(&fold_keyword(spelling(&h.keyword).0)) {
                on_category += h.points;
            }
        }
        if score > 0.0 {
            total += score;
            matched.push(RoleMatch {
                role: role.id.clone(),
                score,
                keywords: hits.iter().map(|h| h.keyword.clone()).collect(),
                role_weight: role.weight,
                hits,
            });
        }
    }
    Candidate {
        member: m.name.clone(),
        score: round(total),
        category_words: round(on_category),
        load_7d: history.load(&m.name),
        roles: matched,
    }
}

/// Ranks candidates: the score on the category's own words (desc), the whole score
/// (desc), then load (asc), then profile order. Returns indices into `cands` and a
/// sentence when a tie had to be broken.
fn rank(cands: &[(usize, Candidate)]) -> (Vec<usize>, Option<String>) {
    let mut order: Vec<usize> = (0..cands.len()).collect();
    order.sort_by(|&a, &b| {
        let (ma, ca) = &cands[a];
        let (mb, cb) = &cands[b];
        cb.category_words
            .partial_cmp(&ca.category_words)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(
                cb.score
                    .partial_cmp(&ca.score)
                    .unwrap_or(std::cmp::Ordering::Equal),
            )
            .then(ca.load_7d.cmp(&cb.load_7d))
            .then(ma.cmp(mb))
    });
    let tie = match (order.first(), order.get(1)) {
        (Some(&w), Some(&r)) if cands[w].1.score == cands[r].1.score => {
            let (win, run) = (&cands[w].1, &cands[r].1);
            Some(if win.load_7d != run.load_7d {
                format!(
                    "{} and {} tied at {}; {} had fewer assignments in the last 7 days ({} vs {})",
                    win.member, run.member, win.score, win.member, win.load_7d, run.load_7d
                )
            } else {
                format!(
                    "{} and {} tied at {} with equal load; {} comes first in the profile",
                    win.member, run.member, win.score, win.member
                )
            })
        }
        _ => None,
    };
    (order, tie)
}

/// The first role of `member` that handles `category`, else their first role.
pub(crate) fn role_for(profile: &Profile, member: usize, category: usize) -> Option<usize> {
    let m = profile.members.get(member)?;
    m.roles
        .iter()
        .copied()
        .find(|&r| {
            profile
                .roles
                .get(r)
                .is_some_and(|role| role.categories.contains(&category))
        })
        .or_else(|| m.roles.first().copied())
}

/// Step 1: who is addressed or named, and how.
fn name_mention(
    profile: &Profile,
    msg: &MessageView,
    text: &Folded<'_>,
) -> Option<(usize, NameMention)> {
    let named = named_members(profile, msg, text);
    let (member, how, text) = named.first().cloned()?;
    let mut also: Vec<String> = Vec::new();
    for (m, _, _) in &named {
        let n = &profile.members[*m].name;
        if *m != member && !also.contains(n) {
            also.push(n.clone());
        }
    }
    Some((
        member,
        NameMention {
            member: profile.members[member].name.clone(),
            how: how.to_string(),
            text,
            also_named: also,
        },
    ))
}

/// Every member addressed or named (never the sender), strongest first:
/// address > greeting > subject > body; each with how and the words that named them.
pub(crate) fn named_members(
    profile: &Profile,
    msg: &MessageView,
    text: &Folded<'_>,
) -> Vec<(usize, &'static str, String)> {
    let sender = msg.from_address();
    let is_sender = |member: usize| {
        sender.is_some_and(|s| profile.members[member].addresses.iter().any(|a| a == s))
    };
    let mut named: Vec<(usize, &'static str, String)> = Vec::new();
    // Address: To before Cc, in header order.
    for mb in msg.to.iter().chain(msg.cc.iter()) {
        if let Some(i) = profile
            .members
            .iter()
            .position(|m| m.addresses.contains(&mb.address))
        {
            if !is_sender(i) {
                named.push((i, "address", mb.address.clone()));
            }
        }
    }
    let mode = profile.routing.first_names;
    let sender_name = msg.from_name();
    let keep = |hits: Vec<NameHit>| -> Vec<NameHit> {
        hits.into_iter().filter(|h| !is_sender(h.member)).collect()
    };
    let new_text = text.body;
    let body_hits = keep(
        profile
            .names
            .find_folded(new_text, &text.body_folded, mode, sender_name),
    );
    let greeting_end = greeting_region(new_text, &body_hits);
    for h in body_hits.iter().filter(|h| h.start < greeting_end) {
        named.push((h.member, "greeting", h.text.clone()));
    }
    for h in keep(
        profile
            .names
            .find_folded(text.subject, &text.subject_folded, mode, sender_name),
    ) {
        named.push((h.member, "subject", h.text));
    }
    for h in body_hits.iter().filter(|h| h.start >= greeting_end) {
        named.push((h.member, "body", h.text.clone()));
    }
    named
}

const SALUTATIONS: &[&str] = &[
    "hi",
    "hello",
    "hey",
    "dear",
    "good morning",
    "good afternoon",
    "good evening",
    "morning",
    "greetings",
    "attn",
    "attention",
    "to",
    "hiya",
    "howdy",
    "bonjour",
    "hola",
    "hallo",
    "yo",
];

/// End (byte offset) of the greeting: the first non-empty line when it opens with a
/// salutation or consists only of names; 0 when there is no greeting.
fn greeting_region(text: &str, hits: &[NameHit]) -> usize {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            offset += line.len();
            continue;
        }
        let end = offset + line.len();
        let lower = trimmed.to_lowercase();
        let salutation = SALUTATIONS.iter().any(|s| {
            lower.starts_with(s)
                && lower[s.len()..]
                    .chars()
                    .next()
                    .is_none_or(|c| !c.is_alphanumeric())
        });
        if salutation {
            return end;
        }
        // A line made only of names and punctuation ("Sarah," / "Mark and Sarah -").
        let mut rest = line.to_string();
        for h in hits.iter().filter(|h| h.start >= offset && h.end <= end) {
            rest = rest.replacen(&h.text, "", 1);
        }
        let leftover: String = rest
            .to_lowercase()
            .replace(" and ", " ")
            .replace(" & ", " ")
            .chars()
            .filter(|c| c.is_alphanumeric())
            .collect();
        if leftover.is_empty() && rest.len() < line.len() {
            return end;
        }
        return 0;
    }
    0
}

/// Chooses the recipient of a message in `category`.
pub fn choose(
    profile: &Profile,
    msg: &MessageView,
    text: &Folded<'_>,
    scan: &Scan,
    category: usize,
    sender_member: Option<usize>,
    history: &History,
) -> Routed {
    if profile.members.is_empty() {
        return Routed::simple(None, Reason::Unassigned, None);
    }
    let words = category_words(profile, scan, category);
    if let Some((member, mention)) = name_mention(profile, msg, text) {
        let mut r = Routed::simple(
            Some(member),
            Reason::NameMention,
            role_for(profile, member, category),
        );
        r.name_mention = Some(mention);
        let c = content_score(
            profile,
            scan,
            member,
            &profile.members[member].roles,
            history,
            &words,
        );
        r.total_score = c.score;
        r.matched_roles = c.roles;
        return r;
    }
    if let Some(member) = sender_member {
        let mut r = Routed::simple(
            Some(member),
            Reason::SenderRule,
            role_for(profile, member, category),
        );
        let c = content_score(
            profile,
            scan,
            member,
            &profile.members[member].roles,
            history,
            &words,
        );
        r.total_score = c.score;
        r.matched_roles = c.roles;
        return r;
    }
    if profile.routing.content_match.contains(&category) {
        let cands: Vec<(usize, Candidate)> = (0..profile.members.len())
            .map(|i| {
                (
                    i,
                    content_score(profile, scan, i, &profile.members[i].roles, history, &words),
                )
            })
            .collect();
        let (order, tie) = rank(&cands);
        if let Some(&w) = order.first().filter(|&&w| cands[w].1.score > 0.0) {
            let (member, winner) = &cands[w];
            let reason = if winner.roles.len() > 1 {
                Reason::ManagerMultipleRolesMatched
            } else {
                Reason::ManagerRoleContentMatch
            };
            let top_role = winner
                .roles
                .iter()
                .max_by(|a, b| {
                    a.score
                        .partial_cmp(&b.score)
                        .unwrap_or(std::cmp::Ordering::Equal)
                })
                .and_then(|rm| profile.role_index(&rm.role));
            return finish(*member, reason, top_role, &cands, &order, tie);
        }
        return fallback(profile, scan, category, history);
    }
    let handlers: Vec<usize> = profile
        .roles
        .iter()
        .enumerate()
        .filter(|(_, r)| r.categories.contains(&category))
        .map(|(i, _)| i)
        .collect();
    let cands: Vec<(usize, Candidate)> = profile
        .members
        .iter()
        .enumerate()
        .filter(|(_, m)| m.roles.iter().any(|r| handlers.contains(r)))
        .map(|(i, m)| {
            (
                i,
                content_score(profile, scan, i, &m.roles, history, &words),
            )
        })
        .collect();
    if cands.is_empty() {
        return fallback(profile, scan, category, history);
    }
    let (order, tie) = rank(&cands);
    let Some(&w) = order.first() else {
        return fallback(profile, scan, category, history);
    };
    let member = cands[w].0;
    finish(
        member,
        Reason::CategoryRole,
        role_for(profile, member, category),
        &cands,
        &order,
        tie,
    )
}

fn finish(
    member: usize,
    reason: Reason,
    role: Option<usize>,
    cands: &[(usize, Candidate)],
    order: &[usize],
    tie: Option<String>,
) -> Routed {
    let ranked: Vec<Candidate> = order.iter().map(|&i| cands[i].1.clone()).collect();
    let winner = ranked.first().cloned();
    let runner = ranked.get(1);
    Routed {
        member: Some(member),
        reason,
        role,
        name_mention: None,
        total_score: winner.as_ref().map_or(0.0, |w| w.score),
        matched_roles: winner.map(|w| w.roles).unwrap_or_default(),
        runner_up: runner.map(|r| r.member.clone()),
        margin: match (ranked.first(), runner) {
            (Some(w), Some(r)) => Some(round(w.score - r.score)),
            _ => None,
        },
        tie_break: tie,
        candidates: ranked,
    }
}

/// Step 4: the fallback role's holder (least loaded, then first), else unassigned.
fn fallback(profile: &Profile, scan: &Scan, category: usize, history: &History) -> Routed {
    let Some(role) = profile.routing.fallback_role else {
        return Routed::simple(None, Reason::Unassigned, None);
    };
    let cands: Vec<(usize, Candidate)> = profile
        .holders(role)
        .map(|i| {
            (
                i,
                content_score(
                    profile,
                    scan,
                    i,
                    &profile.members[i].roles,
                    history,
                    &category_words(profile, scan, category),
                ),
            )
        })
        .collect();
    let mut order: Vec<usize> = (0..cands.len()).collect();
    order.sort_by(|&a, &b| {
        cands[a]
            .1
            .load_7d
            .cmp(&cands[b].1.load_7d)
            .then(cands[a].0.cmp(&cands[b].0))
    });
    match order.first() {
        Some(&w) => {
            let mut r = Routed::simple(Some(cands[w].0), Reason::Fallback, Some(role));
            r.total_score = cands[w].1.score;
            r.matched_roles = cands[w].1.roles.clone();
            r
        }
        None => Routed::simple(None, Reason::Unassigned, None),
    }
}

/// Names of the fallback role's holders (for escalation alerts).
pub fn fallback_names(profile: &Profile) -> Vec<String> {
    match profile.routing.fallback_role {
        Some(role) => profile
            .holders(role)
            .map(|i| profile.members[i].name.clone())
            .collect(),
        None => Vec::new(),
    }
}
