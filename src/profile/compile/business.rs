//! The `business:` section: name, mail domains, time zone.

use super::super::raw::{OneOrMany, RawBusiness};
use super::super::Business;
use crate::yaml::checker::{Checker, DiagExt};
use crate::yaml::diag::did_you_mean;
use crate::yaml::Path;

/// Checks and compiles the business; `industries` are the packs there are.
pub(super) fn business(c: &mut Checker<'_>, raw: &RawBusiness, industries: &[&str]) -> Business {
    let bpath = Path::root().key("business");
    if raw.name.trim().is_empty() {
        c.at_value(&bpath.key("name"), "the business name is empty")
            .expect_("the business's name, e.g. Hot Tub Man");
    }
    let mut domains = Vec::new();
    for (i, d) in raw.domains.iter().enumerate() {
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
    let timezone = match &raw.timezone {
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
    let mut chosen: Vec<String> = Vec::new();
    if let Some(named) = &raw.industry {
        let one = matches!(named, OneOrMany::One(_));
        for (i, name) in named.names().iter().enumerate() {
            let at = if one {
                bpath.key("industry")
            } else {
                bpath.key("industry").index(i)
            };
            let n = name.trim();
            if industries.contains(&n) {
                if !chosen.iter().any(|c| c == n) {
                    chosen.push(n.to_string());
                }
            } else {
                c.at_value(&at, format!("there is no industry pack called `{name}`"))
                    .expect_(format!(
                        "one of: {} (or no `industry:` for the business-neutral rules only)",
                        industries.join(", ")
                    ))
                    .suggest_(did_you_mean(n, industries.iter().copied()));
            }
        }
    }
    Business {
        name: raw.name.trim().to_string(),
        domains,
        timezone,
        industries: chosen,
    }
}
