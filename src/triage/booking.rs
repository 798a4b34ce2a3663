//! Booking requests (SPEC §7): which service, which day, and which provider.
//!
//! Steps, first match wins, recorded as the decision's `strategy`:
//!
//! 1. `explicit_request` — the customer names a provider (address > greeting > subject >
//!    body); chosen even when they do not offer the service (a note says so).
//! 2. `urgent_availability` — urgency wording: the provider offering the service who is
//!    free earliest, from the requested day (or the message's day) up to a week on.
//! 3. scoring — preference + primary/secondary + available on the requested day; the
//!    strategy is the winner's largest term (`preference`, `service_match`,
//!    `availability`), and
//! 4. `load_balance` when the best totals tie: fewest assignments in 7 days, then profile
//!    order.
//!
//! A provider who does not offer the service is never a candidate. When nobody offers
//! it (or a staff member who is not a provider is named, or a sender rule applies), the
//! normal recipient rules decide and the booking block says why.
//!
//! Availability on a day: the provider works that weekday and has at least one free
//! stretch of the service's length (60 minutes when unknown) within their hours, after
//! removing the busy times of their calendar. Calendars enter through the [`Context`]
//! snapshot (read by the caller); this module does no I/O and reads no clock.
//!
//! [`Context`]: super::Context

use std::collections::BTreeMap;

use chrono::{Datelike, Days, NaiveDate, NaiveTime, TimeZone};
use chrono_tz::Tz;

use super::classify::score_set;
use super::decision::{round, BookingDecision, PreferenceEntry, ProviderScore, RequestedDay};
use super::when::{self, Asked};
use super::{Folded, History};
use crate::mail::MessageView;
use crate::matching::matcher::Scan;
use crate::profile::{Booking, Profile, Provider, ServiceRank};

/// Appointment length assumed when the service (or its duration) is unknown.
pub const DEFAULT_SLOT_MINUTES: u32 = 60;

/// How far past the first day `urgent_availability` looks for a free provider.
pub const URGENT_LOOKAHEAD_DAYS: u64 = 7;

/// A provider's busy times, as the caller read them (Unix seconds, half-open ranges).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BusyCalendar {
    /// Busy ranges `[start, end)`.
    pub busy: Vec<(i64, i64)>,
    /// Something the owner should know (read failure, stale copy, unsupported recurrence).
    pub note: Option<String>,
}

/// What booking decided.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Assign to this member (a provider, or whoever the customer asked for).
    Provider(usize, BookingDecision),
    /// The normal recipient rules decide; the block records why.
    Normal(BookingDecision),
}

/// Everything known about one provider for this request.
struct Cand {
    member: usize,
    /// Position in booking.providers (profile order for the last tie-break).
    order: usize,
    score: ProviderScore,
}

/// Chooses the provider for a BOOKING message.
#[allow(clippy::too_many_arguments)]
pub fn choose(
    profile: &Profile,
    booking: &Booking,
    msg: &MessageView,
    text: &Folded<'_>,
    scan: &Scan,
    history: &History,
    calendars: &BTreeMap<String, BusyCalendar>,
    forced_member: Option<usize>,
) -> Outcome {
    let tz = profile.business.timezone;
    // The service: the best-scoring service keyword set, profile order on ties.
    let mut service: Option<(usize, f64, Vec<String>)> = None;
    for (i, s) in booking.services.iter().enumerate() {
        let (score, hits) = score_set(&profile.matcher, scan, s.set, 1.0, 1.0);
        if score > 0.0 && service.as_ref().is_none_or(|(_, best, _)| score > *best) {
            service = Some((i, score, hits.into_iter().map(|h| h.keyword).collect()));
        }
    }
    let svc = service.as_ref().map(|(i, _, _)| *i);
    let svc_def = svc.and_then(|i| booking.services.get(i));
    let minutes = svc_def
        .and_then(|s| s.duration_minutes)
        .unwrap_or(DEFAULT_SLOT_MINUTES);

    // The day, against the Date header in the business's zone.
    let base = msg.date.map(|d| d.with_timezone(&tz).date_naive());
    let resolved_against = match msg.date {
        Some(d) => format!(
            "Date {} = {} in {}",
            d.to_rfc2822(),
            d.with_timezone(&tz).format("%a %Y-%m-%d %H:%M"),
            tz.name()
        ),
        None => "no Date header".to_string(),
    };
    let mut notes: Vec<String> = Vec::new();
    let (requested_day, days): (Option<RequestedDay>, Vec<NaiveDate>) =
        match when::requested(text.subject, text.body, base, booking.date_order) {
            Asked::Nothing => (None, Vec::new()),
            Asked::Day(r) => (
                Some(RequestedDay {
                    text: r.text,
                    dates: r
                        .dates
                        .iter()
                        .map(|d| d.format("%Y-%m-%d").to_string())
                        .collect(),
                    resolved_against: resolved_against.clone(),
                }),
                r.dates,
            ),
            Asked::Unresolved(t) => {
                notes.push(format!(
                    "\"{t}\" could not be resolved: the message has no usable Date header"
                ));
                (
                    Some(RequestedDay {
                        text: t,
                        dates: Vec::new(),
                        resolved_against: resolved_against.clone(),
                    }),
                    Vec::new(),
                )
            }
        };

    // Preferences: the profile's contacts entry overrides what was learned.
    let sender = msg.from_address().unwrap_or_default();
    let snapshot: Vec<PreferenceEntry> = match booking.contacts.iter().find(|c| c.email == sender) {
        Some(c) => c
            .prefers
            .iter()
            .filter_map(|&m| profile.members.get(m))
            .map(|m| PreferenceEntry {
                member: m.name.clone(),
                source: "profile".into(),
            })
            .collect(),
        None => history
            .learned
            .get(sender)
            .into_iter()
            .flatten()
            .filter(|name| {
                profile
                    .member_index(name)
                    .is_some_and(|m| booking.provider_of(m).is_some())
            })
            .map(|name| PreferenceEntry {
                member: name.clone(),
                source: "learned".into(),
            })
            .collect(),
    };
    let urgent = score_set(
        &profile.matcher,
        scan,
        profile.escalation.urgency_set,
        1.0,
        1.0,
    )
    .1
    .into_iter()
    .next()
    .map(|h| h.keyword);

    let w = booking.weights;
    let score_of = |order: usize, p: &Provider| -> Cand {
        let name = &profile.members[p.member].name;
        let rank = svc.and_then(|s| p.rank_of(s));
        let preference = if snapshot.iter().any(|e| &e.member == name) {
            w.preference
        } else {
            0.0
        };
        let service_match = match rank {
            Some(ServiceRank::Primary) => w.primary,
            Some(ServiceRank::Secondary) => w.secondary,
            None => 0.0,
        };
        let cal = calendars.get(name);
        let (available, detail) = if days.is_empty() {
            (None, "no day requested".to_string())
        } else {
            let mut details = Vec::new();
            let mut any = false;
            for d in &days {
                let (ok, why) = available_on(p, *d, minutes, tz, cal);
                any |= ok;
                details.push(why);
            }
            (Some(any), details.join("; "))
        };
        let availability = if available == Some(true) {
            w.available
        } else {
            0.0
        };
        Cand {
            member: p.member,
            order,
            score: ProviderScore {
                member: name.clone(),
                offers: rank.map(|r| {
                    match r {
                        ServiceRank::Primary => "primary",
                        ServiceRank::Secondary => "secondary",
                    }
                    .to_string()
                }),
                preference,
                service_match,
                availability,
                total: round(preference + service_match + availability),
                load_7d: history.load(name),
                available,
                availability_detail: detail,
            },
        }
    };
    let mut cands: Vec<Cand> = booking
        .providers
        .iter()
        .enumerate()
        .filter(|(_, p)| svc.is_none_or(|s| p.rank_of(s).is_some()))
        .map(|(i, p)| score_of(i, p))
        .collect();
    rank(&mut cands);
    // What the owner should know about each provider's calendar (shown for candidates).
    let calendar_notes: BTreeMap<usize, String> = booking
        .providers
        .iter()
        .filter(|p| p.busy_calendar.is_some())
        .filter_map(|p| {
            let name = &profile.members.get(p.member)?.name;
            match calendars.get(name) {
                Some(BusyCalendar { note: Some(n), .. }) => {
                    Some((p.member, format!("{name}'s calendar: {n}")))
                }
                Some(_) => None,
                None => Some((
                    p.member,
                    format!("{name}'s calendar was not loaded: treated as free within their hours"),
                )),
            }
        })
        .collect();

    let mut out = BookingDecision {
        strategy: String::new(),
        provider: None,
        service: svc_def.map(|s| s.name.clone()),
        service_keywords: service.map(|(_, _, k)| k).unwrap_or_default(),
        booking_link: None,
        requested_day,
        urgent: urgent.clone(),
        candidates: Vec::new(),
        preference_snapshot: snapshot.clone(),
        notes,
    };
    let link_of = |m: usize| -> Option<String> {
        booking
            .provider_of(m)
            .and_then(|p| p.link.clone())
            .or_else(|| svc_def.and_then(|s| s.link.clone()))
    };

    // 1. Explicit request: the most strongly named provider.
    let named = super::recipient::named_members(profile, msg, text);
    let named_provider = named
        .iter()
        .find(|(m, _, _)| booking.provider_of(*m).is_some());
    if let Some((m, how, words)) = named_provider {
        let name = profile.members[*m].name.clone();
        if let Some(p) = booking.provider_of(*m) {
            if !cands.iter().any(|c| c.member == *m) {
                let order = booking
                    .providers
                    .iter()
                    .position(|x| x.member == *m)
                    .unwrap_or(usize::MAX);
                cands.push(score_of(order, p));
                if let Some(s) = svc_def {
                    out.notes.push(format!(
                        "{name} was asked for by name but does not offer {}; assigned as asked — check with the customer",
                        s.name
                    ));
                }
            }
            out.notes
                .insert(0, format!("{name} was named ({how}: \"{words}\")"));
            out.strategy = "explicit_request".into();
            return finish(out, *m, name, link_of(*m), cands, &calendar_notes);
        }
    }
    if let Some((m, how, words)) = named.first() {
        // Only members who are not providers (front desk, owner) were named.
        let name = profile.members[*m].name.clone();
        out.strategy = "staff_named".into();
        out.notes.insert(
            0,
            format!("{name} was named ({how}: \"{words}\") and is not a booking provider; the normal rules decide"),
        );
        out.candidates = cands.into_iter().map(|c| c.score).collect();
        return Outcome::Normal(out);
    }
    if forced_member.is_some() {
        out.strategy = "sender_rule".into();
        out.notes.insert(
            0,
            "a sender rule names the recipient; the normal rules decide".into(),
        );
        out.candidates = cands.into_iter().map(|c| c.score).collect();
        return Outcome::Normal(out);
    }
    if cands.is_empty() {
        out.strategy = "no_provider".into();
        out.notes.insert(
            0,
            match svc_def {
                Some(s) => format!(
                    "nobody offers {}; the holders of the roles handling BOOKING decide (normal rules)",
                    s.name
                ),
                None => "no booking providers; the normal rules decide".into(),
            },
        );
        return Outcome::Normal(out);
    }

    // 2. Urgent: the earliest day someone is free, best score among them.
    if urgent.is_some() {
        let start: Vec<NaiveDate> = if days.is_empty() {
            base.into_iter().collect()
        } else {
            days.clone()
        };
        let mut search: Vec<NaiveDate> = start.clone();
        if let Some(last) = start.last() {
            for k in 1..=URGENT_LOOKAHEAD_DAYS {
                if let Some(d) = last.checked_add_days(Days::new(k)) {
                    search.push(d);
                }
            }
        }
        for d in &search {
            let free = cands.iter().find(|c| {
                booking.provider_of(c.member).is_some_and(|p| {
                    available_on(p, *d, minutes, tz, calendars.get(&c.score.member)).0
                })
            });
            if let Some(c) = free {
                let (m, name) = (c.member, c.score.member.clone());
                out.strategy = "urgent_availability".into();
                out.notes.insert(
                    0,
                    format!(
                        "urgent (\"{}\"): {name} is the best-scoring provider free earliest, on {}",
                        urgent.as_deref().unwrap_or_default(),
                        d.format("%a %Y-%m-%d")
                    ),
                );
                return finish(out, m, name, link_of(m), cands, &calendar_notes);
            }
        }
        out.notes.push(match search.first() {
            Some(d) => format!(
                "urgent, but nobody offering it is free from {} for {} days; scored as usual",
                d.format("%a %Y-%m-%d"),
                URGENT_LOOKAHEAD_DAYS + 1
            ),
            None => "urgent, but the day is unknown (no Date header); scored as usual".into(),
        });
    }

    // 3./4. Scoring, ties by load then profile order (already ranked).
    let (m, name) = (cands[0].member, cands[0].score.member.clone());
    let tie = cands
        .get(1)
        .filter(|r| r.score.total == cands[0].score.total);
    out.strategy = match tie {
        Some(r) => {
            let (win, run) = (&cands[0].score, &r.score);
            out.notes.insert(
                0,
                if win.load_7d != run.load_7d {
                    format!(
                        "{} and {} tied at {}; {} had fewer assignments in the last 7 days ({} vs {})",
                        win.member, run.member, win.total, win.member, win.load_7d, run.load_7d
                    )
                } else {
                    format!(
                        "{} and {} tied at {} with equal load; {} comes first in the profile",
                        win.member, run.member, win.total, win.member
                    )
                },
            );
            "load_balance".into()
        }
        None => {
            let s = &cands[0].score;
            if s.total <= 0.0 {
                "only_candidate".into()
            } else if s.preference >= s.service_match && s.preference >= s.availability {
                "preference".into()
            } else if s.service_match >= s.availability {
                "service_match".into()
            } else {
                "availability".into()
            }
        }
    };
    finish(out, m, name, link_of(m), cands, &calendar_notes)
}

fn rank(cands: &mut [Cand]) {
    cands.sort_by(|a, b| {
        b.score
            .total
            .partial_cmp(&a.score.total)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.score.load_7d.cmp(&b.score.load_7d))
            .then(a.order.cmp(&b.order))
    });
}

fn finish(
    mut out: BookingDecision,
    member: usize,
    name: String,
    link: Option<String>,
    cands: Vec<Cand>,
    calendar_notes: &BTreeMap<usize, String>,
) -> Outcome {
    out.notes.extend(
        cands
            .iter()
            .filter_map(|c| calendar_notes.get(&c.member).cloned()),
    );
    // The chosen provider first, then the rest as ranked.
    let mut scores: Vec<ProviderScore> = Vec::with_capacity(cands.len());
    let mut rest = Vec::new();
    for c in cands {
        if c.member == member {
            scores.push(c.score);
        } else {
            rest.push(c.score);
        }
    }
    scores.extend(rest);
    if let Some(c) = scores.first().filter(|c| c.available == Some(false)) {
        out.notes.push(format!(
            "{name} is not free on the requested day ({}); suggest another day or provider",
            c.availability_detail
        ));
    }
    out.provider = Some(name);
    out.booking_link = link;
    out.candidates = scores;
    Outcome::Provider(member, out)
}

/// Unix seconds of a local wall-clock time on `day` (minutes since midnight, up to
/// 24:00) in `tz`. A time skipped by a DST change counts from the first valid instant.
fn instant(tz: Tz, day: NaiveDate, minutes: u16) -> Option<i64> {
    let (day, minutes) = if minutes >= 24 * 60 {
        (day.checked_add_days(Days::new(1))?, minutes - 24 * 60)
    } else {
        (day, minutes)
    };
    let t = NaiveTime::from_hms_opt(u32::from(minutes / 60), u32::from(minutes % 60), 0)?;
    let local = day.and_time(t);
    match tz.from_local_datetime(&local) {
        chrono::LocalResult::Single(x) => Some(x.timestamp()),
        chrono::LocalResult::Ambiguous(a, _) => Some(a.timestamp()),
        chrono::LocalResult::None => {
            // In a spring-forward gap: the first instant after it.
            let later = local.checked_add_signed(chrono::TimeDelta::hours(1))?;
            tz.from_local_datetime(&later)
                .earliest()
                .map(|x| x.timestamp())
        }
    }
}

fn hhmm(m: u16) -> String {
    format!("{:02}:{:02}", m / 60, m % 60)
}

/// Whether `p` has a free stretch of `minutes` on `day`, and why (or why not).
pub fn available_on(
    p: &Provider,
    day: NaiveDate,
    minutes: u32,
    tz: Tz,
    cal: Option<&BusyCalendar>,
) -> (bool, String) {
    let wd = day.weekday();
    let ranges = p
        .hours
        .get(wd.num_days_from_monday() as usize)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let label = day.format("%a %Y-%m-%d");
    if ranges.is_empty() {
        return (false, format!("{label}: does not work on {wd}"));
    }
    let hours: Vec<String> = ranges
        .iter()
        .map(|(a, b)| format!("{}-{}", hhmm(*a), hhmm(*b)))
        .collect();
    let need = i64::from(minutes) * 60;
    let busy = cal.map(|c| c.busy.as_slice()).unwrap_or_default();
    for &(a, b) in ranges {
        let (Some(start), Some(end)) = (instant(tz, day, a), instant(tz, day, b)) else {
            continue;
        };
        // Walk the working range, jumping over busy stretches that overlap it.
        let mut overlapping: Vec<(i64, i64)> = busy
            .iter()
            .copied()
            .filter(|&(s, e)| s < end && e > start)
            .collect();
        overlapping.sort_unstable();
        let mut cursor = start;
        for (s, e) in overlapping {
            if s - cursor >= need {
                break;
            }
            cursor = cursor.max(e);
        }
        if end - cursor >= need {
            let free_at = chrono::DateTime::from_timestamp(cursor, 0)
                .map(|t| t.with_timezone(&tz).format("%H:%M").to_string())
                .unwrap_or_default();
            return (
                true,
                format!("{label}: works {}, free from {free_at}", hours.join(", ")),
            );
        }
    }
    (
        false,
        format!(
            "{label}: works {} but has no free {minutes} min (calendar)",
            hours.join(", ")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const TZ: Tz = chrono_tz::America::Toronto;

    fn at(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s)
            .map(|d| d.timestamp())
            .unwrap_or(i64::MIN)
    }

    fn provider(mon: Vec<(u16, u16)>) -> Provider {
        let mut hours: [Vec<(u16, u16)>; 7] = Default::default();
        hours[0] = mon;
        Provider {
            member: 0,
            services: Vec::new(),
            hours,
            busy_calendar: None,
            link: None,
        }
    }

    #[test]
    fn a_free_stretch_of_the_service_length_is_needed() {
        // Monday 2 March 2026, 09:00-12:00 and 13:00-14:00 local (EST, -05:00).
        let p = provider(vec![(540, 720), (780, 840)]);
        let day = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap_or_default();
        let cal = BusyCalendar {
            busy: vec![
                (
                    at("2026-03-02T09:00:00-05:00"),
                    at("2026-03-02T10:00:00-05:00"),
                ),
                (
                    at("2026-03-02T10:30:00-05:00"),
                    at("2026-03-02T11:00:00-05:00"),
                ),
            ],
            note: None,
        };
        let (ok, why) = available_on(&p, day, 30, TZ, Some(&cal));
        assert!(ok && why.ends_with("free from 10:00"), "{why}");
        let (ok, why) = available_on(&p, day, 60, TZ, Some(&cal));
        assert!(ok && why.ends_with("free from 11:00"), "{why}");
        // 90 minutes fit in neither range.
        let (ok, why) = available_on(&p, day, 90, TZ, Some(&cal));
        assert!(!ok && why.contains("no free 90 min"), "{why}");
        // Busy stretches outside the hours change nothing; no calendar = free.
        let (ok, _) = available_on(&p, day, 180, TZ, None);
        assert!(ok);
        // Not working that weekday.
        let tuesday = day.succ_opt().unwrap_or_default();
        let (ok, why) = available_on(&p, tuesday, 30, TZ, None);
        assert!(!ok && why.contains("does not work on Tue"), "{why}");
    }

    #[test]
    fn hours_up_to_midnight_and_across_the_dst_gap() {
        // Sunday 8 March 2026: 02:00-03:00 does not exist in Toronto.
        let mut p = provider(Vec::new());
        p.hours[6] = vec![(60, 24 * 60)];
        let day = NaiveDate::from_ymd_opt(2026, 3, 8).unwrap_or_default();
        // 01:00 EST = 06:00Z; midnight after = 04:00Z next day (EDT): 22 real hours.
        assert_eq!(instant(TZ, day, 60), Some(at("2026-03-08T06:00:00Z")));
        assert_eq!(instant(TZ, day, 24 * 60), Some(at("2026-03-09T04:00:00Z")));
        assert_eq!(instant(TZ, day, 150), Some(at("2026-03-08T07:30:00Z")));
        let busy_all = BusyCalendar {
            busy: vec![(at("2026-03-08T06:00:00Z"), at("2026-03-09T03:30:00Z"))],
            note: None,
        };
        let (ok, why) = available_on(&p, day, 30, TZ, Some(&busy_all));
        assert!(ok && why.ends_with("free from 23:30"), "{why}");
    }
}
