//! Busy calendars of booking providers: a small iCalendar (RFC 5545) reader and a cache
//! that re-reads each file after the profile's `booking.calendar_refresh`.
//!
//! Only what busy time needs is read: VEVENTs' DTSTART, DTEND (or DURATION), STATUS and
//! TRANSP, with line unfolding, UTC (`Z`), `TZID=` and floating times, and all-day
//! `VALUE=DATE` events (DTEND exclusive, one day when missing). Cancelled and
//! transparent ("free") events are not busy. Recurring events (RRULE) are **not
//! expanded**: only their first occurrence counts, and the calendar's note says how many
//! were seen — export the calendar with recurrences expanded to get all of them.
//!
//! A calendar is a file or an https:// feed. Files are re-read when a snapshot finds them
//! stale; feeds are fetched (at most [`MAX_CALENDAR_BYTES`], within [`FETCH_TIMEOUT`],
//! https only — plain http only to this machine) by [`CalendarCache::refresh_feeds`],
//! which the daemon awaits before each batch, so taking a snapshot never waits for the
//! network. Where a feed's redirects may lead (at most [`MAX_REDIRECTS`], never down to
//! plain http, never into this machine or a private network unless that is the feed's
//! own host) is the business of `feed.rs`. A calendar that cannot be read, fetched or
//! parsed is logged, and the last good copy stays in force; with no good copy the
//! provider is treated as free within their hours. Logs name a feed by scheme and host
//! only: feed addresses often carry a secret.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{NaiveDate, NaiveDateTime, TimeDelta, TimeZone};
use chrono_tz::Tz;
use tracing::{info, warn};

use crate::profile::{CalendarSource, Profile};
use crate::triage::booking::BusyCalendar;

mod feed;

/// Calendars larger than this are refused (a busy calendar is a few hundred KiB at most).
pub const MAX_CALENDAR_BYTES: u64 = 16 * 1024 * 1024;
/// Longest a feed may take to fetch, body included.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(20);
/// Most redirects followed in one fetch of a feed.
pub const MAX_REDIRECTS: usize = 5;

/// What was read from one calendar.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parsed {
    /// Busy ranges `[start, end)` in Unix seconds.
    pub busy: Vec<(i64, i64)>,
    /// VEVENTs seen.
    pub events: usize,
    /// Events with an RRULE (only their first occurrence counts).
    pub recurring: usize,
    /// Events skipped: cancelled, transparent, or with unreadable times.
    pub skipped: usize,
    /// TZIDs that are not IANA names (read in the business's zone instead).
    pub unknown_zones: Vec<String>,
}

impl Parsed {
    /// A sentence for the owner, when something was not taken at face value.
    pub fn note(&self) -> Option<String> {
        let mut parts = Vec::new();
        if self.recurring > 0 {
            parts.push(format!(
                "{} recurring event(s): only their first occurrence counts (RRULE is not expanded)",
                self.recurring
            ));
        }
        if !self.unknown_zones.is_empty() {
            parts.push(format!(
                "unknown time zone(s) {} read in the business's zone",
                self.unknown_zones.join(", ")
            ));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

/// Joins folded lines (a line starting with a space or tab continues the previous one).
fn unfold(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for raw in text.split('\n') {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        match (line.strip_prefix([' ', '\t']), lines.last_mut()) {
            (Some(rest), Some(prev)) => prev.push_str(rest),
            _ => lines.push(line.to_string()),
        }
    }
    lines
}

/// A content line's parameters, names upper-cased: `[("TZID", "Europe/Berlin")]`.
type Params = Vec<(String, String)>;

/// Splits `NAME;P=V;P2="a:b":VALUE` into upper-cased name, parameters and value.
fn property(line: &str) -> Option<(String, Params, &str)> {
    let mut quoted = false;
    let mut colon = None;
    for (i, ch) in line.char_indices() {
        match ch {
            '"' => quoted = !quoted,
            ':' if !quoted => {
                colon = Some(i);
                break;
            }
            _ => {}
        }
    }
    let colon = colon?;
    let (head, value) = (line.get(..colon)?, line.get(colon + 1..)?);
    let mut parts = head.split(';');
    let name = parts.next()?.trim().to_ascii_uppercase();
    let params = parts
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| {
            (
                k.trim().to_ascii_uppercase(),
                v.trim().trim_matches('"').to_string(),
            )
        })
        .collect();
    Some((name, params, value.trim()))
}

/// A DTSTART/DTEND value: an instant, or an all-day date.
#[derive(Debug, Clone, Copy)]
enum When {
    At(i64),
    Day(NaiveDate),
}

fn local_to_unix(tz: Tz, t: NaiveDateTime) -> Option<i64> {
    match tz.from_local_datetime(&t) {
        chrono::LocalResult::Single(x) => Some(x.timestamp()),
        chrono::LocalResult::Ambiguous(a, _) => Some(a.timestamp()),
        chrono::LocalResult::None => tz
            .from_local_datetime(&t.checked_add_signed(TimeDelta::hours(1))?)
            .earliest()
            .map(|x| x.timestamp()),
    }
}

fn when(params: &[(String, String)], value: &str, zone: Tz, p: &mut Parsed) -> Option<When> {
    let is_date = params
        .iter()
        .any(|(k, v)| k == "VALUE" && v.eq_ignore_ascii_case("DATE"))
        || (value.len() == 8 && value.bytes().all(|b| b.is_ascii_digit()));
    if is_date {
        return NaiveDate::parse_from_str(value, "%Y%m%d")
            .ok()
            .map(When::Day);
    }
    if let Some(utc) = value.strip_suffix(['Z', 'z']) {
        let t = NaiveDateTime::parse_from_str(utc, "%Y%m%dT%H%M%S").ok()?;
        return Some(When::At(t.and_utc().timestamp()));
    }
    let t = NaiveDateTime::parse_from_str(value, "%Y%m%dT%H%M%S").ok()?;
    let tz = match params.iter().find(|(k, _)| k == "TZID") {
        Some((_, id)) => {
            // Some producers prefix the name with a slash ("/Europe/Berlin").
            let id = id.trim_start_matches('/');
            match Tz::from_str(id) {
                Ok(tz) => tz,
                Err(_) => {
                    if !p.unknown_zones.iter().any(|z| z == id) {
                        p.unknown_zones.push(id.to_string());
                    }
                    zone
                }
            }
        }
        None => zone,
    };
    local_to_unix(tz, t).map(When::At)
}

/// Parses an ISO 8601 duration as used by iCalendar (P1D, PT1H30M, P2W); seconds.
fn duration(value: &str) -> Option<i64> {
    let v = value.trim();
    let (sign, v) = match v.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, v.strip_prefix('+').unwrap_or(v)),
    };
    let v = v.strip_prefix(['P', 'p'])?;
    let mut total: i64 = 0;
    let mut num = String::new();
    let mut time = false;
    for ch in v.chars() {
        match ch.to_ascii_uppercase() {
            'T' => time = true,
            c if c.is_ascii_digit() => num.push(c),
            unit => {
                let n: i64 = num.parse().ok()?;
                num.clear();
                let secs = match (unit, time) {
                    ('W', false) => 604_800,
                    ('D', false) => 86_400,
                    ('H', true) => 3_600,
                    ('M', true) => 60,
                    ('S', true) => 1,
                    _ => return None,
                };
                total = total.checked_add(n.checked_mul(secs)?)?;
            }
        }
    }
    num.is_empty().then_some(sign * total)
}

/// The busy range of an event from its DTSTART, DTEND and DURATION.
fn range_of(
    start: Option<When>,
    end: Option<When>,
    dur: Option<i64>,
    zone: Tz,
) -> Option<(i64, i64)> {
    let midnight = |d: NaiveDate| d.and_hms_opt(0, 0, 0).and_then(|t| local_to_unix(zone, t));
    match (start?, end, dur) {
        (When::At(s), Some(When::At(e)), _) => Some((s, e)),
        (When::At(s), Some(When::Day(e)), _) => Some((s, midnight(e)?)),
        (When::At(s), None, Some(d)) => Some((s, s.saturating_add(d))),
        (When::At(_), None, None) => None,
        (When::Day(s), e, d) => {
            let s_at = midnight(s)?;
            let e_at = match (e, d) {
                (Some(When::Day(e)), _) => midnight(e)?,
                (Some(When::At(e)), _) => e,
                (None, Some(d)) => s_at.saturating_add(d),
                (None, None) => midnight(s.succ_opt()?)?,
            };
            Some((s_at, e_at))
        }
    }
}

/// Reads the busy times of an iCalendar text; floating and all-day times are in `zone`.
pub fn parse(text: &str, zone: Tz) -> Parsed {
    let mut out = Parsed::default();
    let mut in_event = false;
    // Nested components (VALARM) inside an event are skipped.
    let mut nested = 0usize;
    let mut start: Option<When> = None;
    let mut end: Option<When> = None;
    let mut dur: Option<i64> = None;
    let mut skip = false;
    let mut recurring = false;
    for line in unfold(text) {
        let Some((name, params, value)) = property(&line) else {
            continue;
        };
        match (name.as_str(), value.to_ascii_uppercase().as_str()) {
            ("BEGIN", "VEVENT") if !in_event => {
                in_event = true;
                (start, end, dur, skip, recurring) = (None, None, None, false, false);
                continue;
            }
            ("BEGIN", _) if in_event => nested += 1,
            ("END", "VEVENT") if in_event && nested == 0 => {
                in_event = false;
                out.events += 1;
                if recurring {
                    out.recurring += 1;
                }
                let range = if skip {
                    None
                } else {
                    range_of(start, end, dur, zone)
                };
                match range {
                    Some((s, e)) if e > s => out.busy.push((s, e)),
                    _ => out.skipped += 1,
                }
                continue;
            }
            ("END", _) if in_event && nested > 0 => nested -= 1,
            _ => {}
        }
        if !in_event || nested > 0 {
            continue;
        }
        match name.as_str() {
            "DTSTART" => start = when(&params, value, zone, &mut out),
            "DTEND" => end = when(&params, value, zone, &mut out),
            "DURATION" => dur = duration(value),
            "RRULE" | "RDATE" => recurring = true,
            "STATUS" if value.eq_ignore_ascii_case("CANCELLED") => skip = true,
            "TRANSP" if value.eq_ignore_ascii_case("TRANSPARENT") => skip = true,
            _ => {}
        }
    }
    out.busy.sort_unstable();
    out
}

/// Reads and parses one calendar file.
pub fn read(path: &Path, zone: Tz) -> anyhow::Result<Parsed> {
    use anyhow::Context as _;
    let meta = std::fs::metadata(path)
        .with_context(|| format!("cannot read the calendar {}", path.display()))?;
    if meta.len() > MAX_CALENDAR_BYTES {
        anyhow::bail!(
            "the calendar {} is {} bytes, more than the {MAX_CALENDAR_BYTES} allowed",
            path.display(),
            meta.len()
        );
    }
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read the calendar {}", path.display()))?;
    parse_bytes(&bytes, &path.display().to_string(), zone)
}

/// Parses a calendar's bytes (from a file or a feed), refusing what is not iCalendar.
fn parse_bytes(bytes: &[u8], name: &str, zone: Tz) -> anyhow::Result<Parsed> {
    let text = String::from_utf8_lossy(bytes);
    if !text.contains("BEGIN:VCALENDAR") {
        anyhow::bail!("{name} is not an iCalendar file (no BEGIN:VCALENDAR)");
    }
    Ok(parse(&text, zone))
}

/// Reads a file or fetches a feed now, outside the daemon (`mailtriage check`).
pub fn load_blocking(source: &CalendarSource, zone: Tz) -> anyhow::Result<Parsed> {
    match source {
        CalendarSource::File(path) => read(path, zone),
        CalendarSource::Url(_) => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(feed::fetch(source, zone))
        }
    }
}

/// One calendar's cached state.
#[derive(Debug, Clone)]
struct Entry {
    read_at: Instant,
    /// The last copy read successfully, and when.
    good: Option<(Arc<Parsed>, chrono::DateTime<chrono::Utc>)>,
    /// Why the last read failed, if it did.
    error: Option<String>,
}

/// Busy calendars: files re-read and feeds re-fetched after the profile's refresh
/// interval.
#[derive(Debug, Default)]
pub struct CalendarCache {
    entries: Mutex<HashMap<(CalendarSource, Tz), Entry>>,
}

/// The new state of a calendar after a read or fetch, given the previous one.
fn updated(
    prev: Option<Entry>,
    outcome: anyhow::Result<Parsed>,
    member: &str,
    source: &CalendarSource,
    refresh: Duration,
    now: Instant,
) -> Entry {
    let good = prev.and_then(|e| e.good);
    match outcome {
        Ok(parsed) => {
            info!(provider = %member, calendar = %source.describe(), events = parsed.events,
                busy = parsed.busy.len(), "read busy calendar");
            Entry {
                read_at: now,
                good: Some((Arc::new(parsed), chrono::Utc::now())),
                error: None,
            }
        }
        Err(e) => {
            let next = if good.is_some() {
                "keeping the last good copy"
            } else {
                "treating them as free within their hours"
            };
            warn!(provider = %member, calendar = %source.describe(),
                "busy calendar unreadable: {e:#}; {next}; trying again in {}s", refresh.as_secs());
            Entry {
                read_at: now,
                good,
                error: Some(format!("{e:#}")),
            }
        }
    }
}

impl CalendarCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(CalendarSource, Tz), Entry>> {
        match self.entries.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Fetches the feeds of `profile`'s providers that are due (never fetched, or older
    /// than `booking.calendar_refresh`), one after the other, each within
    /// [`FETCH_TIMEOUT`]. Cheap when nothing is due.
    pub async fn refresh_feeds(&self, profile: &Profile) {
        self.refresh_feeds_at(profile, Instant::now()).await;
    }

    /// As [`refresh_feeds`](Self::refresh_feeds), at a given instant (for tests).
    pub async fn refresh_feeds_at(&self, profile: &Profile, now: Instant) {
        let Some(booking) = &profile.booking else {
            return;
        };
        let zone = profile.business.timezone;
        let refresh = Duration::from_secs(booking.calendar_refresh_secs);
        let due: Vec<(CalendarSource, String)> = {
            let entries = self.lock();
            booking
                .providers
                .iter()
                .filter_map(|p| {
                    let src @ CalendarSource::Url(_) = p.busy_calendar.as_ref()? else {
                        return None;
                    };
                    let member = profile.members.get(p.member)?;
                    let stale = entries
                        .get(&(src.clone(), zone))
                        .is_none_or(|e| now.saturating_duration_since(e.read_at) >= refresh);
                    stale.then(|| (src.clone(), member.name.clone()))
                })
                .collect()
        };
        if due.is_empty() {
            return;
        }
        for (src, member) in due {
            let outcome = feed::fetch(&src, zone).await;
            let key = (src.clone(), zone);
            let mut entries = self.lock();
            let prev = entries.remove(&key);
            let entry = updated(prev, outcome, &member, &src, refresh, now);
            entries.insert(key, entry);
        }
    }

    /// [`refresh_feeds`](Self::refresh_feeds) outside the daemon (the command line):
    /// on a small runtime of its own, when the profile has feeds at all.
    pub fn refresh_feeds_blocking(&self, profile: &Profile) {
        let has_feeds = profile.booking.as_ref().is_some_and(|b| {
            b.providers
                .iter()
                .any(|p| matches!(p.busy_calendar, Some(CalendarSource::Url(_))))
        });
        if !has_feeds {
            return;
        }
        match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt.block_on(self.refresh_feeds(profile)),
            Err(e) => warn!("cannot fetch calendar feeds: {e}"),
        }
    }

    /// The busy calendars of `profile`'s providers, by member name: stale files are
    /// re-read; feeds are what [`refresh_feeds`](Self::refresh_feeds) last fetched.
    pub fn snapshot(&self, profile: &Profile) -> BTreeMap<String, BusyCalendar> {
        self.snapshot_at(profile, Instant::now())
    }

    /// As [`snapshot`](Self::snapshot), at a given instant (for tests).
    pub fn snapshot_at(&self, profile: &Profile, now: Instant) -> BTreeMap<String, BusyCalendar> {
        let mut out = BTreeMap::new();
        let Some(booking) = &profile.booking else {
            return out;
        };
        let zone = profile.business.timezone;
        let refresh = Duration::from_secs(booking.calendar_refresh_secs);
        let mut entries = self.lock();
        for p in &booking.providers {
            let Some(src) = &p.busy_calendar else {
                continue;
            };
            let Some(member) = profile.members.get(p.member) else {
                continue;
            };
            let key = (src.clone(), zone);
            if let CalendarSource::File(path) = src {
                let stale = entries
                    .get(&key)
                    .is_none_or(|e| now.saturating_duration_since(e.read_at) >= refresh);
                if stale {
                    let prev = entries.remove(&key);
                    let entry = updated(prev, read(path, zone), &member.name, src, refresh, now);
                    entries.insert(key.clone(), entry);
                }
            }
            let cal = match entries.get(&key) {
                Some(Entry {
                    good: Some((parsed, at)),
                    error,
                    ..
                }) => BusyCalendar {
                    busy: parsed.busy.clone(),
                    note: match error {
                        Some(err) => Some(format!(
                            "{err}; using the copy read at {} UTC",
                            at.format("%Y-%m-%d %H:%M")
                        )),
                        None => parsed.note(),
                    },
                },
                Some(Entry { error, .. }) => BusyCalendar {
                    busy: Vec::new(),
                    note: Some(format!(
                        "{}; no busy data, treated as free within their hours",
                        error.as_deref().unwrap_or("not read yet")
                    )),
                },
                None => BusyCalendar {
                    busy: Vec::new(),
                    note: Some(format!(
                        "{} not fetched yet; no busy data, treated as free within their hours",
                        src.describe()
                    )),
                },
            };
            out.insert(member.name.clone(), cal);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s)
            .map(|d| d.timestamp())
            .unwrap_or(i64::MIN)
    }

    const TORONTO: Tz = chrono_tz::America::Toronto;

    #[test]
    fn reads_utc_tzid_floating_all_day_and_folded_lines() {
        let ics = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\n\
BEGIN:VEVENT\r\nUID:a\r\nDTSTART:20260303T140000Z\r\nDTEND:20260303T150000Z\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:b\r\nDTSTART;TZID=Europe/Berlin:20260303T100000\r\nDTEND;TZID=Europe/Berlin:2026\r\n 0303T110000\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nDTSTART:20260304T090000\r\nDURATION:PT1H30M\r\nBEGIN:VALARM\r\nTRIGGER:-PT15M\r\nEND:VALARM\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20260305\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nDTSTART:20260306T090000Z\r\nDTEND:20260306T100000Z\r\nSTATUS:CANCELLED\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nDTSTART:20260306T090000Z\r\nDTEND:20260306T100000Z\r\nTRANSP:TRANSPARENT\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nDTSTART:20260309T090000Z\r\nDTEND:20260309T100000Z\r\nRRULE:FREQ=WEEKLY\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nDTSTART;TZID=Made Up Zone:20260310T090000\r\nDTEND;TZID=Made Up Zone:20260310T100000\r\nEND:VEVENT\r\n\
END:VCALENDAR\r\n";
        let p = parse(ics, TORONTO);
        assert_eq!(p.events, 8);
        assert_eq!(p.skipped, 2, "cancelled and transparent");
        assert_eq!(p.recurring, 1);
        assert_eq!(p.unknown_zones, vec!["Made Up Zone".to_string()]);
        assert_eq!(
            p.busy,
            vec![
                (
                    ts("2026-03-03T10:00:00+01:00"),
                    ts("2026-03-03T11:00:00+01:00")
                ),
                (ts("2026-03-03T14:00:00Z"), ts("2026-03-03T15:00:00Z")),
                (
                    ts("2026-03-04T09:00:00-05:00"),
                    ts("2026-03-04T10:30:00-05:00")
                ),
                (
                    ts("2026-03-05T00:00:00-05:00"),
                    ts("2026-03-06T00:00:00-05:00")
                ),
                (ts("2026-03-09T09:00:00Z"), ts("2026-03-09T10:00:00Z")),
                (
                    ts("2026-03-10T09:00:00-04:00"),
                    ts("2026-03-10T10:00:00-04:00")
                ),
            ]
        );
        let note = p.note().unwrap_or_default();
        assert!(note.contains("1 recurring event(s)"), "{note}");
    }

    #[test]
    fn durations() {
        assert_eq!(duration("PT1H30M"), Some(5400));
        assert_eq!(duration("P1D"), Some(86_400));
        assert_eq!(duration("P2W"), Some(1_209_600));
        assert_eq!(duration("PT"), Some(0));
        assert_eq!(duration("1H"), None);
        assert_eq!(duration("P1H"), None);
    }

    #[test]
    fn garbage_is_no_events_not_a_panic() {
        for text in [
            "",
            "BEGIN:VEVENT",
            "BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART:x\nEND:VEVENT",
            ":::\n;;;\n \n\t",
        ] {
            let p = parse(text, TORONTO);
            assert!(p.busy.is_empty(), "{text:?}");
        }
    }
}
