//! The day a booking request asks for: weekday names, "today", "tomorrow", "this
//! weekend", numeric dates ("12/3", in the profile's `date_order`) and written dates
//! ("March 12", "12th of March"). Relative words are resolved against the message's own
//! `Date` header in the business's time zone, so the result is a pure function of the
//! message — no clock is read.
//!
//! Conventions: a weekday name ("Tuesday", "next Tuesday") is the next such day strictly
//! after the message's day (1 to 7 days ahead); "this weekend" / "weekend" is the coming
//! Saturday and Sunday (only Sunday when written on a Sunday); a date without a year is
//! the next such date on or after the message's day. The first phrase found wins: the
//! subject first, then the new text.

use std::sync::LazyLock;

use chrono::{Datelike, Days, NaiveDate, Weekday};
use regex::{Captures, Regex};

use crate::profile::DateOrder;

/// A day (or the two days of a weekend) the customer asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requested {
    /// The words that asked for it, as written.
    pub text: String,
    /// The day(s), earliest first.
    pub dates: Vec<NaiveDate>,
}

/// What the message says about the day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Asked {
    /// No day was mentioned.
    Nothing,
    /// A day was asked for and resolved.
    Day(Requested),
    /// A relative day ("tomorrow") was asked for, but the message has no usable `Date`.
    Unresolved(String),
}

const MONTHS: &str = "january|february|march|april|may|june|july|august|september|october|november|december|jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec";

static DAY_RE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    let pattern = format!(
        r"(?ix)\b(?:
          (?P<dat>day\s+after\s+tomorrow)
        | (?P<tom>tomorrow)
        | (?P<tod>today|tonight)
        | (?P<wkd>(?:this\s+|next\s+)?weekend)
        | (?P<num>(?P<n1>\d{{1,2}})/(?P<n2>\d{{1,2}})(?:/(?P<n3>\d{{4}}|\d{{2}}))?)
        | (?P<dot>(?P<o1>\d{{1,2}})\.(?P<o2>\d{{1,2}})\.(?P<o3>\d{{4}}))
        | (?P<md>(?P<m1>{MONTHS})\.?\s+(?P<d1>\d{{1,2}})(?:st|nd|rd|th)?(?:,?\s+(?P<y1>\d{{4}}))?)
        | (?P<dm>(?P<d2>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<m2>{MONTHS})\.?(?:,?\s+(?P<y2>\d{{4}}))?)
        | (?:next\s+|this\s+|on\s+)?(?P<wd>monday|tuesday|wednesday|thursday|friday|saturday|sunday|tues|weds|thurs)
        )\b"
    );
    Regex::new(&pattern).ok()
});

/// Finds the requested day in the subject, else in the new text.
pub fn requested(subject: &str, body: &str, base: Option<NaiveDate>, order: DateOrder) -> Asked {
    for text in [subject, body] {
        match first_in(text, base, order) {
            Asked::Nothing => continue,
            found => return found,
        }
    }
    Asked::Nothing
}

fn first_in(text: &str, base: Option<NaiveDate>, order: DateOrder) -> Asked {
    let Some(re) = DAY_RE.as_ref() else {
        return Asked::Nothing;
    };
    for caps in re.captures_iter(text) {
        let Some(whole) = caps.get(0) else { continue };
        let phrase = whole.as_str().to_string();
        match resolve(&caps, base, order) {
            Resolved::Dates(dates) => {
                return Asked::Day(Requested {
                    text: phrase,
                    dates,
                })
            }
            Resolved::NeedsBase => return Asked::Unresolved(phrase),
            Resolved::Invalid => continue,
        }
    }
    Asked::Nothing
}

enum Resolved {
    Dates(Vec<NaiveDate>),
    NeedsBase,
    /// Not a real date (13/13, 31 February): keep looking.
    Invalid,
}

fn month_number(name: &str) -> Option<u32> {
    let n = name.to_ascii_lowercase();
    let key = n.get(..3)?;
    let i = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ]
    .iter()
    .position(|m| *m == key)?;
    u32::try_from(i + 1).ok()
}

fn weekday(name: &str) -> Option<Weekday> {
    let n = name.to_ascii_lowercase();
    Some(match n.get(..3)? {
        "mon" => Weekday::Mon,
        "tue" => Weekday::Tue,
        "wed" => Weekday::Wed,
        "thu" => Weekday::Thu,
        "fri" => Weekday::Fri,
        "sat" => Weekday::Sat,
        "sun" => Weekday::Sun,
        _ => return None,
    })
}

fn num(caps: &Captures<'_>, name: &str) -> Option<u32> {
    caps.name(name).and_then(|m| m.as_str().parse().ok())
}

/// A calendar date from day, month and an optional year; without a year, the next such
/// date on or after `base` (this year's, else next year's).
fn date(day: u32, month: u32, year: Option<u32>, base: Option<NaiveDate>) -> Resolved {
    match year {
        Some(y) => {
            let y = if y < 100 { 2000 + y } else { y };
            match i32::try_from(y)
                .ok()
                .and_then(|y| NaiveDate::from_ymd_opt(y, month, day))
            {
                Some(d) => Resolved::Dates(vec![d]),
                None => Resolved::Invalid,
            }
        }
        None => {
            let Some(base) = base else {
                // Still reject impossible dates (a leap year allows 29 February).
                return if NaiveDate::from_ymd_opt(2024, month, day).is_some() {
                    Resolved::NeedsBase
                } else {
                    Resolved::Invalid
                };
            };
            let this = NaiveDate::from_ymd_opt(base.year(), month, day);
            match this {
                Some(d) if d >= base => Resolved::Dates(vec![d]),
                _ => {
                    // Next year's (29 February may need several years; look a few ahead).
                    for ahead in 1..=4 {
                        if let Some(d) = NaiveDate::from_ymd_opt(base.year() + ahead, month, day) {
                            return Resolved::Dates(vec![d]);
                        }
                    }
                    Resolved::Invalid
                }
            }
        }
    }
}

fn plus(base: NaiveDate, days: u64) -> Option<NaiveDate> {
    base.checked_add_days(Days::new(days))
}

fn resolve(caps: &Captures<'_>, base: Option<NaiveDate>, order: DateOrder) -> Resolved {
    let relative = |f: &dyn Fn(NaiveDate) -> Vec<NaiveDate>| match base {
        Some(b) => {
            let v = f(b);
            if v.is_empty() {
                Resolved::Invalid
            } else {
                Resolved::Dates(v)
            }
        }
        None => Resolved::NeedsBase,
    };
    if caps.name("dat").is_some() {
        return relative(&|b| plus(b, 2).into_iter().collect());
    }
    if caps.name("tom").is_some() {
        return relative(&|b| plus(b, 1).into_iter().collect());
    }
    if caps.name("tod").is_some() {
        return relative(&|b| vec![b]);
    }
    if caps.name("wkd").is_some() {
        return relative(&|b| {
            let from_mon = b.weekday().num_days_from_monday();
            match from_mon {
                6 => vec![b],
                5 => [Some(b), plus(b, 1)].into_iter().flatten().collect(),
                n => [plus(b, u64::from(5 - n)), plus(b, u64::from(6 - n))]
                    .into_iter()
                    .flatten()
                    .collect(),
            }
        });
    }
    if caps.name("num").is_some() {
        let (a, b) = (num(caps, "n1"), num(caps, "n2"));
        let (Some(a), Some(b)) = (a, b) else {
            return Resolved::Invalid;
        };
        // "24/7" means always, not 24 July.
        if (a, b) == (24, 7) && caps.name("n3").is_none() {
            return Resolved::Invalid;
        }
        let (day, month) = match order {
            DateOrder::Dmy => (a, b),
            DateOrder::Mdy => (b, a),
        };
        return date(day, month, num(caps, "n3"), base);
    }
    if caps.name("dot").is_some() {
        // 12.03.2026 is day-first wherever dots are written.
        let (Some(day), Some(month)) = (num(caps, "o1"), num(caps, "o2")) else {
            return Resolved::Invalid;
        };
        return date(day, month, num(caps, "o3"), base);
    }
    if caps.name("md").is_some() {
        let month = caps.name("m1").and_then(|m| month_number(m.as_str()));
        let (Some(month), Some(day)) = (month, num(caps, "d1")) else {
            return Resolved::Invalid;
        };
        return date(day, month, num(caps, "y1"), base);
    }
    if caps.name("dm").is_some() {
        let month = caps.name("m2").and_then(|m| month_number(m.as_str()));
        let (Some(month), Some(day)) = (month, num(caps, "d2")) else {
            return Resolved::Invalid;
        };
        return date(day, month, num(caps, "y2"), base);
    }
    if let Some(w) = caps.name("wd").and_then(|m| weekday(m.as_str())) {
        return relative(&|b| {
            let now = b.weekday().num_days_from_monday();
            let want = w.num_days_from_monday();
            let ahead = (want + 7 - now) % 7;
            let ahead = if ahead == 0 { 7 } else { ahead };
            plus(b, u64::from(ahead)).into_iter().collect()
        });
    }
    Resolved::Invalid
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("valid date")
    }

    fn ask(text: &str, base: NaiveDate, order: DateOrder) -> Vec<NaiveDate> {
        match requested("", text, Some(base), order) {
            Asked::Day(r) => r.dates,
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn phrases_resolve_against_the_message_day() {
        // Monday 2 March 2026.
        let mon = d(2026, 3, 2);
        let dmy = DateOrder::Dmy;
        assert_eq!(ask("can I come today?", mon, dmy), vec![mon]);
        assert_eq!(ask("Tomorrow works", mon, dmy), vec![d(2026, 3, 3)]);
        assert_eq!(ask("the day after tomorrow", mon, dmy), vec![d(2026, 3, 4)]);
        assert_eq!(ask("on Friday", mon, dmy), vec![d(2026, 3, 6)]);
        assert_eq!(ask("next Monday", mon, dmy), vec![d(2026, 3, 9)]);
        assert_eq!(ask("Monday", mon, dmy), vec![d(2026, 3, 9)]);
        assert_eq!(
            ask("this weekend", mon, dmy),
            vec![d(2026, 3, 7), d(2026, 3, 8)]
        );
        assert_eq!(ask("on 12/3 please", mon, dmy), vec![d(2026, 3, 12)]);
        assert_eq!(
            ask("on 12/3 please", mon, DateOrder::Mdy),
            vec![d(2026, 12, 3)]
        );
        assert_eq!(ask("March 12", mon, dmy), vec![d(2026, 3, 12)]);
        assert_eq!(ask("the 12th of March", mon, dmy), vec![d(2026, 3, 12)]);
        assert_eq!(ask("12 Mar 2027", mon, dmy), vec![d(2027, 3, 12)]);
        assert_eq!(ask("12.03.2026", mon, dmy), vec![d(2026, 3, 12)]);
        // A date already past this year is next year's.
        assert_eq!(ask("February 1st", mon, dmy), vec![d(2027, 2, 1)]);
    }

    #[test]
    fn week_and_year_boundaries() {
        // Sunday 8 March 2026 → Monday 9 March.
        assert_eq!(
            ask("tomorrow", d(2026, 3, 8), DateOrder::Dmy),
            vec![d(2026, 3, 9)]
        );
        assert_eq!(
            ask("tomorrow", d(2026, 12, 31), DateOrder::Dmy),
            vec![d(2027, 1, 1)]
        );
        // Saturday: this weekend is today and tomorrow; Sunday: today only.
        assert_eq!(
            ask("this weekend", d(2026, 3, 7), DateOrder::Dmy),
            vec![d(2026, 3, 7), d(2026, 3, 8)]
        );
        assert_eq!(
            ask("this weekend", d(2026, 3, 8), DateOrder::Dmy),
            vec![d(2026, 3, 8)]
        );
    }

    #[test]
    fn impossible_dates_and_missing_date_header() {
        let mon = d(2026, 3, 2);
        // 31/2 is no date; the next phrase counts.
        assert_eq!(
            ask("31/2 or else Friday", mon, DateOrder::Dmy),
            vec![d(2026, 3, 6)]
        );
        assert_eq!(
            requested("", "see you at 3.5 pm", Some(mon), DateOrder::Dmy),
            Asked::Nothing
        );
        assert_eq!(
            requested("", "are you open 24/7?", Some(mon), DateOrder::Dmy),
            Asked::Nothing
        );
        assert_eq!(
            requested("", "tomorrow please", None, DateOrder::Dmy),
            Asked::Unresolved("tomorrow".into())
        );
        // The subject is read first.
        assert_eq!(
            requested("Friday?", "or Tuesday", Some(mon), DateOrder::Dmy),
            Asked::Day(Requested {
                text: "Friday".into(),
                dates: vec![d(2026, 3, 6)]
            })
        );
    }
}
