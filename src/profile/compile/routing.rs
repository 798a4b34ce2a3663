//! The `routing:` section: folder templates (never the inbox itself), the default
//! category, the fallback role, content-matched categories, first names, and what
//! happens to mail not routed to a person.

use super::super::raw::{RawFirstNames, RawRouting, RawUnmatched, UnmatchedWord};
use super::super::{Member, NotRouted, Piece, Routing};
use super::category_ref;
use super::folders::{folder_template, is_inbox, not_routed, plain_folder};
use crate::matching::names::FirstNames;
use crate::yaml::checker::{Checker, DiagExt};
use crate::yaml::diag::did_you_mean;
use crate::yaml::Path;

/// Checks and compiles the routing section.
pub(super) fn routing(
    c: &mut Checker<'_>,
    raw: &RawRouting,
    cat_names: &[String],
    role_ids: &[&str],
    members: &[Member],
) -> Routing {
    let root = Path::root();
    let rp = root.key("routing");
    let folder = folder_template(
        c,
        &rp.key("folder"),
        raw.folder.as_deref().unwrap_or("{category}/{member}"),
        &["category", "member", "role"],
    );
    let unassigned_folder = folder_template(
        c,
        &rp.key("unassigned_folder"),
        raw.unassigned_folder.as_deref().unwrap_or("Unassigned"),
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
    let default_category = match &raw.default_category {
        Some(n) => category_ref(c, &rp.key("default_category"), n, cat_names),
        None => cat_names.iter().position(|n| n == "SUPPORT"),
    }
    .unwrap_or(0);
    let fallback_role = match &raw.fallback_role {
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
    let content_match = match &raw.content_match_categories {
        Some(list) => list
            .iter()
            .enumerate()
            .filter_map(|(i, n)| {
                category_ref(
                    c,
                    &rp.key("content_match_categories").index(i),
                    n,
                    cat_names,
                )
            })
            .collect(),
        None => cat_names
            .iter()
            .position(|n| n == "MANAGER")
            .into_iter()
            .collect(),
    };
    let first_names = match raw.first_names {
        None | Some(RawFirstNames::Capitalized) => FirstNames::Capitalized,
        Some(RawFirstNames::Any) => FirstNames::Any,
        Some(RawFirstNames::Off) => FirstNames::Off,
    };
    Routing {
        folder,
        unassigned_folder,
        default_category,
        fallback_role,
        content_match,
        first_names,
        lists: not_routed(c, &rp.key("lists"), &raw.lists),
        bulk: not_routed(c, &rp.key("bulk"), &raw.bulk),
        spam: not_routed(c, &rp.key("spam"), &raw.spam),
        auto_replies: not_routed(c, &rp.key("auto_replies"), &raw.auto_replies),
        own_mail: not_routed(c, &rp.key("own_mail"), &raw.own_mail),
        unmatched: match &raw.unmatched {
            None | Some(RawUnmatched::Word(UnmatchedWord::Route)) => None,
            Some(RawUnmatched::Word(UnmatchedWord::Leave)) => Some(NotRouted::Leave),
            Some(RawUnmatched::Folder(f)) => Some(NotRouted::Folder(plain_folder(
                c,
                &rp.key("unmatched").key("folder"),
                &f.folder,
            ))),
        },
    }
}
