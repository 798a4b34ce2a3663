//! Compiling and checking the `booking:` section: services, providers (who must be on the
//! team and offer existing services), working hours, contacts and selection weights.

use super::compile::{plain_set, MemberRef};
use super::raw::RawBooking;
use super::{Booking, BookingWeights, CalendarSource, Contact, Provider, Service};
use crate::matching::matcher::KeywordSet;
use crate::yaml::checker::{Checker, DiagExt};
use crate::yaml::diag::did_you_mean;
use crate::yaml::durations::{parse_duration, parse_hours};
use crate::yaml::Path;

/// Checks and compiles the booking section; adds one keyword set per service.
pub(crate) fn booking(
    c: &mut Checker<'_>,
    b: &RawBooking,
    cat_names: &[String],
    sets: &mut Vec<KeywordSet>,
    member_ref: &MemberRef<'_>,
) -> Option<Booking> {
    let p = Path::root().key("booking");
    let mut services: Vec<Service> = Vec::new();
    for (i, s) in b.services.iter().enumerate() {
        let sp = p.key("services").index(i);
        let name = s.name.trim().to_string();
        if name.is_empty() {
            c.at_value(&sp.key("name"), "a service needs a name")
                .expect_("e.g. Deep Tissue Massage");
            continue;
        }
        if services.iter().any(|x| x.name.eq_ignore_ascii_case(&name)) {
            c.at_value(&sp.key("name"), format!("service `{name}` is listed twice"))
                .expect_("each service once");
            continue;
        }
        let duration_minutes = match &s.duration {
            None => None,
            Some(d) => match parse_duration(d) {
                Ok(secs) if (60..=24 * 3600).contains(&secs) => u32::try_from(secs / 60).ok(),
                Ok(_) => {
                    c.at_value(
                        &sp.key("duration"),
                        format!("`{d}` is not a plausible appointment length"),
                    )
                    .expect_("between 1m and 24h, e.g. 60m");
                    None
                }
                Err(e) => {
                    c.at_value(&sp.key("duration"), e)
                        .expect_("a duration such as 60m or 1h30m");
                    None
                }
            },
        };
        if let Some(link) = &s.link {
            check_link(c, &sp.key("link"), link);
        }
        let mut words = vec![name.clone()];
        words.extend(s.keywords.iter().cloned());
        sets.push(plain_set(&words, super::rules::PROFILE));
        services.push(Service {
            name,
            set: sets.len() - 1,
            duration_minutes,
            link: s.link.as_ref().map(|l| l.trim().to_string()),
        });
    }
    let service_names: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
    let mut providers: Vec<Provider> = Vec::new();
    for (i, rp) in b.providers.iter().enumerate() {
        let pp = p.key("providers").index(i);
        let member = member_ref(c, &pp.key("member"), &rp.member);
        if let Some(m) = member {
            if providers.iter().any(|x| x.member == m) {
                c.at_value(
                    &pp.key("member"),
                    format!("{} is listed as a provider twice", rp.member),
                )
                .expect_("each provider once");
            }
        }
        let mut offered = Vec::new();
        for (svc, rank) in &rp.services {
            match service_names.iter().position(|n| n == svc) {
                Some(si) => offered.push((si, *rank)),
                None => {
                    c.at_key(
                        &pp.key("services").key(svc),
                        format!("unknown service `{svc}`"),
                    )
                    .expect_(format!(
                        "a service from booking.services ({})",
                        service_names.join(", ")
                    ))
                    .suggest_(did_you_mean(svc, service_names.iter().copied()));
                }
            }
        }
        let mut hours: [Vec<(u16, u16)>; 7] = Default::default();
        for (d, (key, value)) in rp.hours.days().iter().enumerate() {
            if let Some(v) = value {
                match parse_hours(v) {
                    Ok(r) => hours[d] = r,
                    Err(e) => {
                        c.at_value(&pp.key("hours").key(key), format!("impossible hours: {e}"))
                            .expect_("\"09:00-17:00\", several ranges \"09:00-12:00, 13:00-17:00\", or \"closed\"");
                    }
                }
            }
        }
        let mut busy_calendar = None;
        if let Some(cal) = &rp.busy_calendar {
            let t = cal.trim();
            let lower = t.to_ascii_lowercase();
            if t.is_empty() {
                c.at_value(&pp.key("busy_calendar"), "the calendar location is empty")
                    .expect_("the path of an .ics file, e.g. calendars/nancy.ics");
            } else if ["http://", "https://", "webcal://", "webcals://"]
                .iter()
                .any(|s| lower.starts_with(s))
            {
                match calendar_url(t) {
                    Ok(u) => busy_calendar = Some(CalendarSource::Url(u)),
                    Err(why) => {
                        c.at_value(&pp.key("busy_calendar"), why).expect_(
                            "an https:// (or webcal://) calendar feed, or the path of an .ics file",
                        );
                    }
                }
            } else {
                busy_calendar = Some(CalendarSource::File(resolve_beside(c.file(), t)));
            }
        }
        if let Some(link) = &rp.link {
            check_link(c, &pp.key("link"), link);
        }
        if let Some(m) = member {
            providers.push(Provider {
                member: m,
                services: offered,
                hours,
                busy_calendar,
                link: rp.link.as_ref().map(|l| l.trim().to_string()),
            });
        }
    }
    let mut contacts = Vec::new();
    for (i, rc) in b.contacts.iter().enumerate() {
        let cp = p.key("contacts").index(i);
        let email = rc.email.trim().to_lowercase();
        if !email.contains('@') {
            c.at_value(
                &cp.key("email"),
                format!("`{}` is not an email address", rc.email),
            )
            .expect_("the customer's address, e.g. jane@example.com");
        }
        let mut prefers = Vec::new();
        for (j, name) in rc.prefers.iter().enumerate() {
            if let Some(m) = member_ref(c, &cp.key("prefers").index(j), name) {
                if !providers.iter().any(|pr| pr.member == m) {
                    c.at_value(
                        &cp.key("prefers").index(j),
                        format!("{name} is on the team but not a booking provider"),
                    )
                    .expect_("a member listed under booking.providers");
                }
                prefers.push(m);
            }
        }
        contacts.push(Contact { email, prefers });
    }
    let rw = b.weights.clone().unwrap_or_default();
    let mut weight = |key: &str, v: Option<f64>, default: f64| -> f64 {
        let w = v.unwrap_or(default);
        if !(w.is_finite() && w >= 0.0) {
            c.at_value(
                &p.key("weights").key(key),
                format!("weight `{key}` must be 0 or more"),
            )
            .expect_("a number of points, e.g. 50");
        }
        w
    };
    let weights = BookingWeights {
        preference: weight("preference", rw.preference, 100.0),
        primary: weight("primary", rw.primary, 50.0),
        secondary: weight("secondary", rw.secondary, 25.0),
        available: weight("available", rw.available, 30.0),
    };
    let calendar_refresh_secs = match &b.calendar_refresh {
        None => DEFAULT_CALENDAR_REFRESH_SECS,
        Some(d) => match parse_duration(d) {
            Ok(secs) if secs >= 10 => secs,
            Ok(_) => {
                c.at_value(
                    &p.key("calendar_refresh"),
                    format!("`{d}` would re-read calendars too often"),
                )
                .expect_("10s or more, e.g. 15m");
                DEFAULT_CALENDAR_REFRESH_SECS
            }
            Err(e) => {
                c.at_value(&p.key("calendar_refresh"), e)
                    .expect_("a duration such as 15m");
                DEFAULT_CALENDAR_REFRESH_SECS
            }
        },
    };
    let category = cat_names.iter().position(|n| n == "BOOKING")?;
    Some(Booking {
        services,
        providers,
        contacts,
        weights,
        category,
        date_order: b.date_order.unwrap_or_default(),
        calendar_refresh_secs,
    })
}

/// Busy calendars are read again after this long unless the profile says otherwise.
pub const DEFAULT_CALENDAR_REFRESH_SECS: u64 = 15 * 60;

/// Checks a booking link: an http(s) address without spaces.
fn check_link(c: &mut Checker<'_>, at: &Path, link: &str) {
    let l = link.trim();
    if !(l.starts_with("https://") || l.starts_with("http://")) || l.contains(char::is_whitespace) {
        c.at_value(at, format!("`{link}` is not a web address"))
            .expect_("an https:// booking link, e.g. https://cal.com/clinic/deep-tissue");
    }
}

/// A calendar feed's address, checked: https (webcal:// means https), plain http only to
/// this machine, a host, no spaces.
pub fn calendar_url(url: &str) -> Result<String, String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("`{url}` is not a web address"))?;
    let scheme = scheme.to_ascii_lowercase();
    let host_port = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host_port.rsplit_once(':').map_or(host_port, |(h, _)| h),
    };
    if host.is_empty() || url.contains(char::is_whitespace) {
        return Err(format!("`{url}` is not a web address"));
    }
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match scheme.as_str() {
        "https" => Ok(url.to_string()),
        "webcal" | "webcals" => Ok(format!("https://{rest}")),
        "http" if loopback => Ok(url.to_string()),
        "http" => Err(format!(
            "`{url}` would fetch the calendar unencrypted; use https:// (plain http only to this machine)"
        )),
        _ => Err(format!("`{url}` is not a web address")),
    }
}

/// A path written in a profile: absolute as is, relative to the profile's directory.
fn resolve_beside(profile_file: &str, path: &str) -> std::path::PathBuf {
    let p = std::path::Path::new(path);
    if p.is_absolute() {
        return p.to_path_buf();
    }
    match std::path::Path::new(profile_file).parent() {
        Some(dir) => dir.join(p),
        None => p.to_path_buf(),
    }
}
