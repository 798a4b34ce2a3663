//! Sender rules: mail from an address or domain always gets a category and/or a member.

use super::super::raw::RawSenderRule;
use super::super::SenderRule;
use super::{category_ref, valid_address, MemberRef};
use crate::yaml::checker::{Checker, DiagExt};
use crate::yaml::Path;

/// Checks and compiles the sender rules.
pub(super) fn senders(
    c: &mut Checker<'_>,
    raw_senders: &[RawSenderRule],
    cat_names: &[String],
    member_ref: &MemberRef<'_>,
) -> Vec<SenderRule> {
    let root = Path::root();
    let mut senders = Vec::new();
    for (i, s) in raw_senders.iter().enumerate() {
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
            .and_then(|n| category_ref(c, &p.key("category"), n, cat_names));
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
    senders
}
