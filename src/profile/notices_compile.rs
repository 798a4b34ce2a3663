//! Compiling and checking what the daemon sends by email: the `acknowledgement:` and
//! `digest:` sections, and that every member named in `escalation.actions.*.notify`
//! has an address to alert.

use super::compile::MemberRef;
use super::raw::{RawAction, RawProfile};
use super::template::{Template, TemplateError, ACK_PLACEHOLDERS};
use super::{Acknowledgement, Digest, Member};
use crate::yaml::checker::{Checker, DiagExt};
use crate::yaml::diag::did_you_mean;
use crate::yaml::Path;

/// Acknowledgements an hour, in all: a busy shop's customers, not a spammer's list.
pub const DEFAULT_ACKS_PER_HOUR: u32 = 100;
/// Acknowledgements an hour to one domain (gmail.com customers share one).
pub const DEFAULT_ACKS_PER_DOMAIN_PER_HOUR: u32 = 20;

/// Parses a template, reporting unknown placeholders with a suggestion.
fn template(c: &mut Checker<'_>, path: &Path, source: &str) -> Template {
    match Template::parse(source, ACK_PLACEHOLDERS) {
        Ok(t) => t,
        Err(errors) => {
            let list = ACK_PLACEHOLDERS
                .iter()
                .map(|a| format!("{{{a}}}"))
                .collect::<Vec<_>>()
                .join(", ");
            for e in errors {
                match e {
                    TemplateError::Unknown(name) => {
                        c.at_value(path, format!("unknown placeholder `{{{name}}}`"))
                            .expect_(format!("placeholders among: {list}"))
                            .suggest_(
                                did_you_mean(&name, ACK_PLACEHOLDERS.iter().copied())
                                    .map(|s| format!("{{{s}}}")),
                            );
                    }
                    TemplateError::Unclosed => {
                        c.at_value(path, "a `{` is never closed")
                            .expect_("placeholders written like {customer_name}; `{{` for a brace");
                    }
                }
            }
            Template {
                source: source.to_string(),
                parts: Vec::new(),
            }
        }
    }
}

/// Compiles `acknowledgement:` and `digest:`, and checks alert addresses.
pub(crate) fn notices(
    c: &mut Checker<'_>,
    raw: &RawProfile,
    cat_names: &[String],
    members: &[Member],
    member_ref: &MemberRef<'_>,
) -> (Option<Acknowledgement>, Option<Digest>) {
    let root = Path::root();
    // Named members in the profile's own notify lists need an address.
    if let Some(actions) = &raw.escalation.actions {
        let levels: [(&str, &Option<RawAction>); 3] = [
            ("URGENT", &actions.URGENT),
            ("HIGH", &actions.HIGH),
            ("MEDIUM", &actions.MEDIUM),
        ];
        for (level, a) in levels {
            let Some(notify) = a.as_ref().and_then(|a| a.notify.as_ref()) else {
                continue;
            };
            for (i, who) in notify.iter().enumerate() {
                let m = members.iter().find(|m| &m.name == who);
                if let Some(m) = m.filter(|m| m.email.is_none()) {
                    c.at_value(
                        &root
                            .key("escalation")
                            .key("actions")
                            .key(level)
                            .key("notify")
                            .index(i),
                        format!("{} has no email address to send alerts to", m.name),
                    )
                    .expect_(format!(
                        "an `email:` for {} under `team:`, or another member here",
                        m.name
                    ));
                }
            }
        }
    }

    let acknowledgement = raw.acknowledgement.as_ref().and_then(|a| {
        let p = root.key("acknowledgement");
        let body = template(c, &p.key("template"), &a.template);
        if a.template.trim().is_empty() {
            c.at_value(&p.key("template"), "the acknowledgement text is empty")
                .expect_(
                    "a short text such as \"Thanks {customer_name}, {member} will reply soon.\"",
                );
        }
        let subject = template(
            c,
            &p.key("subject"),
            a.subject.as_deref().unwrap_or("Re: {subject}"),
        );
        let categories = a.categories.as_ref().map(|cats| {
            cats.iter()
                .enumerate()
                .filter_map(|(i, name)| {
                    let found = cat_names.iter().position(|n| n == name);
                    if found.is_none() {
                        c.at_value(
                            &p.key("categories").index(i),
                            format!("unknown category `{name}`"),
                        )
                        .expect_(format!("one of: {}", cat_names.join(", ")))
                        .suggest_(did_you_mean(name, cat_names.iter().map(String::as_str)));
                    }
                    found
                })
                .collect()
        });
        a.enabled.unwrap_or(true).then_some(Acknowledgement {
            subject,
            body,
            categories,
            max_per_hour: a.max_per_hour.unwrap_or(DEFAULT_ACKS_PER_HOUR),
            max_per_domain_per_hour: a
                .max_per_domain_per_hour
                .unwrap_or(DEFAULT_ACKS_PER_DOMAIN_PER_HOUR),
        })
    });

    let digest = raw.digest.as_ref().and_then(|d| {
        let p = root.key("digest");
        let at_minute = match crate::yaml::durations::parse_time(d.time.trim()) {
            Ok(m) if m < 24 * 60 => m,
            Ok(_) => {
                c.at_value(&p.key("time"), "24:00 is the next day")
                    .expect_("a time of day from 00:00 to 23:59");
                0
            }
            Err(e) => {
                c.at_value(&p.key("time"), e)
                    .expect_("a time of day such as 18:00");
                0
            }
        };
        let chosen: Vec<usize> = match &d.members {
            None => members
                .iter()
                .enumerate()
                .filter(|(_, m)| m.email.is_some())
                .map(|(i, _)| i)
                .collect(),
            Some(names) => names
                .iter()
                .enumerate()
                .filter_map(|(i, n)| {
                    let path = p.key("members").index(i);
                    let idx = member_ref(c, &path, n)?;
                    if members.get(idx).is_some_and(|m| m.email.is_none()) {
                        c.at_value(&path, format!("{n} has no email address for a digest"))
                            .expect_(format!("an `email:` for {n} under `team:`"));
                    }
                    Some(idx)
                })
                .collect(),
        };
        d.enabled.unwrap_or(true).then_some(Digest {
            at_minute,
            members: chosen,
        })
    });
    (acknowledgement, digest)
}
