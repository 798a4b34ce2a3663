//! Booking requests against the clinic profile (`profiles/clinic.yaml`, three providers,
//! busy calendars in `profiles/calendars/`): every strategy of SPEC §7 and its edge
//! cases, one table row each. A mismatch prints the whole receipt.
//!
//! The clinic's week of 2 March 2026 (America/Toronto; daylight saving time starts
//! Sunday 8 March): Nancy is away all Wednesday 4 March (all-day event) and has a client
//! on Monday 9 March 09:00-10:00; Marcus is busy Sunday 8 March 14:00Z-19:30Z, which
//! is 10:00-15:30 EDT — read with the wrong offset (EST) it would leave him 90 free
//! minutes for a hot stone massage.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use mailtriage::calendar::CalendarCache;
use mailtriage::mail::MessageView;
use mailtriage::profile::Profile;
use mailtriage::triage::booking::BusyCalendar;
use mailtriage::triage::explain::render;
use mailtriage::triage::{triage, Context, Decision, History, Reason};

use super::root;

/// Monday 2 March 2026, 10:00 in Toronto.
const MON: &str = "Mon, 2 Mar 2026 10:00:00 -0500";

fn clinic() -> Profile {
    match Profile::load(&root().join("profiles/clinic.yaml")) {
        Ok(p) => p,
        Err(e) => panic!("clinic profile must compile:\n{e}"),
    }
}

fn message(from: &str, date: Option<&str>, subject: &str, body: &str) -> MessageView {
    let date = date.map(|d| format!("Date: {d}\r\n")).unwrap_or_default();
    let raw = format!(
        "From: {from}\r\nTo: info@sothismassage.ca\r\n{date}Subject: {subject}\r\nMessage-ID: <b@test>\r\n\r\n{body}\r\n"
    );
    MessageView::parse(raw.as_bytes(), 1 << 18)
}

/// One booking request and what must come of it.
struct Case {
    name: &'static str,
    from: &'static str,
    date: Option<&'static str>,
    subject: &'static str,
    body: &'static str,
    /// Assignments over the last 7 days.
    load: &'static [(&'static str, u32)],
    /// Learned preferences of the sender.
    learned: &'static [&'static str],
    recipient: &'static str,
    /// The decision's category (the folder is category/recipient).
    category: &'static str,
    reason: Reason,
    strategy: &'static str,
    service: Option<&'static str>,
    /// The requested day(s), YYYY-MM-DD.
    days: &'static [&'static str],
    /// Candidates as "name pref+service+avail=total", chosen first.
    candidates: &'static [&'static str],
    /// The preference snapshot as "name (source)".
    snapshot: &'static [&'static str],
    /// A note that must be present.
    note: Option<&'static str>,
}

const PAT: &str = "Pat Customer <pat@example.com>";
const OLIVIA: &str = "Olivia Grant <olivia.grant@example.com>";
const TASHA: &str = "Tasha Morgan <tasha.morgan@example.com>";
const SAM: &str = "Sam Lee <sam@example.com>";

const CASES: &[Case] = &[
    Case {
        name: "preference: the preferred provider wins",
        from: TASHA,
        date: Some(MON),
        subject: "Appointment",
        body: "Could I book a Swedish massage on Wednesday?",
        load: &[],
        learned: &[],
        recipient: "Sinéad O'Brien",
        category: "BOOKING",
        reason: Reason::BookingProvider,
        strategy: "preference",
        service: Some("Swedish Massage"),
        days: &["2026-03-04"],
        candidates: &[
            "Sinéad O'Brien 100+50+30=180",
            "Nancy Reyes 0+25+0=25",
        ],
        snapshot: &["Sinéad O'Brien (profile)"],
        note: None,
    },
    Case {
        name: "preferred provider unavailable on the requested day: preference still outweighs availability",
        from: OLIVIA,
        date: Some(MON),
        subject: "Deep tissue",
        body: "Could I book a deep tissue massage on Wednesday?",
        load: &[],
        learned: &[],
        recipient: "Nancy Reyes",
        category: "BOOKING",
        reason: Reason::BookingProvider,
        strategy: "preference",
        service: Some("Deep Tissue Massage"),
        days: &["2026-03-04"],
        candidates: &["Nancy Reyes 100+50+0=150", "Marcus Chen 0+25+30=55"],
        snapshot: &["Nancy Reyes (profile)"],
        note: Some("Nancy Reyes is not free on the requested day"),
    },
    Case {
        name: "urgent request overrides the preference: the provider free earliest",
        from: OLIVIA,
        date: Some(MON),
        subject: "Deep tissue",
        body: "Could I book a deep tissue massage on Wednesday? It's urgent, my back is killing me.",
        load: &[],
        learned: &[],
        recipient: "Marcus Chen",
        category: "BOOKING",
        reason: Reason::BookingProvider,
        strategy: "urgent_availability",
        service: Some("Deep Tissue Massage"),
        days: &["2026-03-04"],
        candidates: &["Marcus Chen 0+25+30=55", "Nancy Reyes 100+50+0=150"],
        snapshot: &["Nancy Reyes (profile)"],
        note: Some("free earliest, on Wed 2026-03-04"),
    },
    Case {
        name: "urgent enough to be URGENT: still a booking, filed under URGENT, earliest free provider",
        from: OLIVIA,
        date: Some(MON),
        subject: "Urgent appointment",
        body: "I need a deep tissue appointment today, it's an emergency, I'm in pain.",
        load: &[],
        learned: &[],
        recipient: "Nancy Reyes",
        category: "URGENT",
        reason: Reason::BookingProvider,
        strategy: "urgent_availability",
        service: Some("Deep Tissue Massage"),
        days: &["2026-03-02"],
        candidates: &["Nancy Reyes 100+50+30=180", "Marcus Chen 0+25+0=25"],
        snapshot: &["Nancy Reyes (profile)"],
        note: Some("free earliest, on Mon 2026-03-02"),
    },
    Case {
        name: "availability: the free secondary beats the busy primary",
        from: PAT,
        date: Some(MON),
        subject: "Massage",
        body: "Do you have availability for a deep tissue massage on Wednesday?",
        load: &[],
        learned: &[],
        recipient: "Marcus Chen",
        category: "BOOKING",
        reason: Reason::BookingProvider,
        strategy: "availability",
        service: Some("Deep Tissue Massage"),
        days: &["2026-03-04"],
        candidates: &["Marcus Chen 0+25+30=55", "Nancy Reyes 0+50+0=50"],
        snapshot: &[],
        note: None,
    },
    Case {
        name: "service_match: no day, the primary provider wins",
        from: PAT,
        date: Some(MON),
        subject: "Massage",
        body: "I would like to book a deep tissue massage.",
        load: &[],
        learned: &[],
        recipient: "Nancy Reyes",
        category: "BOOKING",
        reason: Reason::BookingProvider,
        strategy: "service_match",
        service: Some("Deep Tissue Massage"),
        days: &[],
        candidates: &["Nancy Reyes 0+50+0=50", "Marcus Chen 0+25+0=25"],
        snapshot: &[],
        note: None,
    },
    Case {
        name: "explicit request for a provider who does not offer the service",
        from: PAT,
        date: Some(MON),
        subject: "Hot stone",
        body: "Can I book a hot stone massage with Nancy on Monday?",
        load: &[],
        learned: &[],
        recipient: "Nancy Reyes",
        category: "BOOKING",
        reason: Reason::BookingProvider,
        strategy: "explicit_request",
        service: Some("Hot Stone Massage"),
        days: &["2026-03-09"],
        candidates: &["Nancy Reyes 0+0+30=30", "Marcus Chen 0+50+0=50"],
        snapshot: &[],
        note: Some("Nancy Reyes was asked for by name but does not offer Hot Stone Massage"),
    },
    Case {
        name: "nobody offers the service: the normal rules decide",
        from: PAT,
        date: Some(MON),
        subject: "Cupping",
        body: "I'd like to book a cupping appointment.",
        load: &[],
        learned: &[],
        recipient: "Nancy Reyes",
        category: "BOOKING",
        reason: Reason::CategoryRole,
        strategy: "no_provider",
        service: Some("Cupping Therapy"),
        days: &[],
        candidates: &[],
        snapshot: &[],
        note: Some("nobody offers Cupping Therapy"),
    },
    Case {
        name: "ties broken by the load of the last 7 days",
        from: PAT,
        date: Some(MON),
        subject: "Appointment",
        body: "Can I book an appointment on Thursday?",
        load: &[("Nancy Reyes", 5), ("Sinéad O'Brien", 2), ("Marcus Chen", 3)],
        learned: &[],
        recipient: "Sinéad O'Brien",
        category: "BOOKING",
        reason: Reason::BookingProvider,
        strategy: "load_balance",
        service: None,
        days: &["2026-03-05"],
        candidates: &[
            "Sinéad O'Brien 0+0+30=30",
            "Marcus Chen 0+0+30=30",
            "Nancy Reyes 0+0+30=30",
        ],
        snapshot: &[],
        note: Some("fewer assignments in the last 7 days (2 vs 3)"),
    },
    Case {
        name: "\"tomorrow\" across a week boundary (Sunday → Monday)",
        from: PAT,
        date: Some("Sun, 8 Mar 2026 12:00:00 -0400"),
        subject: "Massage",
        body: "Could I book a deep tissue massage tomorrow?",
        load: &[],
        learned: &[],
        recipient: "Nancy Reyes",
        category: "BOOKING",
        reason: Reason::BookingProvider,
        strategy: "service_match",
        service: Some("Deep Tissue Massage"),
        days: &["2026-03-09"],
        candidates: &["Nancy Reyes 0+50+30=80", "Marcus Chen 0+25+0=25"],
        snapshot: &[],
        note: None,
    },
    Case {
        name: "\"tomorrow\" across the DST change, Date in UTC: Saturday night in Toronto",
        from: PAT,
        date: Some("Sun, 08 Mar 2026 04:30:00 +0000"),
        subject: "Hot stone",
        body: "Can I book a hot stone massage tomorrow?",
        load: &[],
        learned: &[],
        recipient: "Marcus Chen",
        category: "BOOKING",
        reason: Reason::BookingProvider,
        strategy: "service_match",
        service: Some("Hot Stone Massage"),
        days: &["2026-03-08"],
        candidates: &["Marcus Chen 0+50+0=50"],
        snapshot: &[],
        note: Some("no free 90 min"),
    },
    Case {
        name: "control for the DST row: the Saturday before is free",
        from: PAT,
        date: Some(MON),
        subject: "Hot stone",
        body: "Can I book a hot stone massage on Saturday?",
        load: &[],
        learned: &[],
        recipient: "Marcus Chen",
        category: "BOOKING",
        reason: Reason::BookingProvider,
        strategy: "service_match",
        service: Some("Hot Stone Massage"),
        days: &["2026-03-07"],
        candidates: &["Marcus Chen 0+50+30=80"],
        snapshot: &[],
        note: None,
    },
    Case {
        name: "learned preference (two past assignments) routes to that provider",
        from: SAM,
        date: Some(MON),
        subject: "Massage",
        body: "I would like to book a deep tissue massage.",
        load: &[],
        learned: &["Marcus Chen"],
        recipient: "Marcus Chen",
        category: "BOOKING",
        reason: Reason::BookingProvider,
        strategy: "preference",
        service: Some("Deep Tissue Massage"),
        days: &[],
        candidates: &["Marcus Chen 100+25+0=125", "Nancy Reyes 0+50+0=50"],
        snapshot: &["Marcus Chen (learned)"],
        note: None,
    },
    Case {
        name: "the profile's contacts entry overrides a learned preference",
        from: TASHA,
        date: Some(MON),
        subject: "Massage",
        body: "I would like to book a Swedish massage.",
        load: &[],
        learned: &["Nancy Reyes"],
        recipient: "Sinéad O'Brien",
        category: "BOOKING",
        reason: Reason::BookingProvider,
        strategy: "preference",
        service: Some("Swedish Massage"),
        days: &[],
        candidates: &["Sinéad O'Brien 100+50+0=150", "Nancy Reyes 0+25+0=25"],
        snapshot: &["Sinéad O'Brien (profile)"],
        note: None,
    },
    Case {
        name: "this weekend: available on either day",
        from: PAT,
        date: Some(MON),
        subject: "Swedish",
        body: "Any openings for a Swedish massage this weekend?",
        load: &[],
        learned: &[],
        recipient: "Sinéad O'Brien",
        category: "BOOKING",
        reason: Reason::BookingProvider,
        strategy: "service_match",
        service: Some("Swedish Massage"),
        days: &["2026-03-07", "2026-03-08"],
        candidates: &["Sinéad O'Brien 0+50+30=80", "Nancy Reyes 0+25+0=25"],
        snapshot: &[],
        note: None,
    },
    Case {
        name: "numeric date, day first (date_order: dmy)",
        from: PAT,
        date: Some(MON),
        subject: "Prenatal",
        body: "I'm pregnant and would like a prenatal massage appointment on 12/3.",
        load: &[],
        learned: &[],
        recipient: "Nancy Reyes",
        category: "BOOKING",
        reason: Reason::BookingProvider,
        strategy: "service_match",
        service: Some("Prenatal Massage"),
        days: &["2026-03-12"],
        candidates: &["Nancy Reyes 0+50+30=80", "Sinéad O'Brien 0+25+30=55"],
        snapshot: &[],
        note: None,
    },
    Case {
        name: "written date \"the 12th of March\" is the same day",
        from: PAT,
        date: Some(MON),
        subject: "Prenatal",
        body: "I'd like a prenatal massage appointment on the 12th of March.",
        load: &[],
        learned: &[],
        recipient: "Nancy Reyes",
        category: "BOOKING",
        reason: Reason::BookingProvider,
        strategy: "service_match",
        service: Some("Prenatal Massage"),
        days: &["2026-03-12"],
        candidates: &["Nancy Reyes 0+50+30=80", "Sinéad O'Brien 0+25+30=55"],
        snapshot: &[],
        note: None,
    },
    Case {
        name: "no Date header: \"tomorrow\" cannot be resolved, and says so",
        from: PAT,
        date: None,
        subject: "Massage",
        body: "Could I book a deep tissue massage tomorrow?",
        load: &[],
        learned: &[],
        recipient: "Nancy Reyes",
        category: "BOOKING",
        reason: Reason::BookingProvider,
        strategy: "service_match",
        service: Some("Deep Tissue Massage"),
        days: &[],
        candidates: &["Nancy Reyes 0+50+0=50", "Marcus Chen 0+25+0=25"],
        snapshot: &[],
        note: Some("\"tomorrow\" could not be resolved"),
    },
];

fn num(x: f64) -> String {
    format!("{x}")
}

fn candidates(d: &Decision) -> Vec<String> {
    d.booking
        .iter()
        .flat_map(|b| b.candidates.iter())
        .map(|c| {
            format!(
                "{} {}+{}+{}={}",
                c.member,
                num(c.preference),
                num(c.service_match),
                num(c.availability),
                num(c.total)
            )
        })
        .collect()
}

fn context(p: &Profile, case: &Case, calendars: BTreeMap<String, BusyCalendar>) -> Context {
    let sender = case
        .from
        .rsplit_once('<')
        .map(|(_, a)| a.trim_end_matches('>').to_lowercase())
        .unwrap_or_default();
    let _ = p;
    Context {
        account_addresses: vec!["info@sothismassage.ca".into()],
        history: History {
            load_7d: case.load.iter().map(|(m, n)| (m.to_string(), *n)).collect(),
            learned: if case.learned.is_empty() {
                BTreeMap::new()
            } else {
                BTreeMap::from([(sender, case.learned.iter().map(|m| m.to_string()).collect())])
            },
        },
        calendars,
    }
}

fn check(case: &Case, d: &Decision, receipt: &str) -> Vec<String> {
    let mut wrong = Vec::new();
    let Some(b) = &d.booking else {
        return vec!["no booking block".into()];
    };
    if d.category != case.category {
        wrong.push(format!("category {}", d.category));
    }
    if d.recipient.as_deref() != Some(case.recipient) {
        wrong.push(format!("recipient {:?}", d.recipient));
    }
    if d.folder.as_deref() != Some(format!("{}/{}", case.category, case.recipient).as_str()) {
        wrong.push(format!("folder {:?}", d.folder));
    }
    if d.reason != case.reason {
        wrong.push(format!("reason {}", d.reason));
    }
    if b.strategy != case.strategy {
        wrong.push(format!("strategy {}", b.strategy));
    }
    if b.service.as_deref() != case.service {
        wrong.push(format!("service {:?}", b.service));
    }
    let days: Vec<&str> = b
        .requested_day
        .iter()
        .flat_map(|r| r.dates.iter().map(String::as_str))
        .collect();
    if days != case.days {
        wrong.push(format!("days {days:?}"));
    }
    let cands = candidates(d);
    if cands != case.candidates {
        wrong.push(format!("candidates {cands:?}"));
    }
    let snapshot: Vec<String> = b
        .preference_snapshot
        .iter()
        .map(|p| format!("{} ({})", p.member, p.source))
        .collect();
    if snapshot != case.snapshot {
        wrong.push(format!("snapshot {snapshot:?}"));
    }
    if let Some(n) = case.note {
        if !b.notes.iter().any(|x| x.contains(n)) {
            wrong.push(format!("no note containing {n:?}: {:?}", b.notes));
        }
    }
    if d.reason == Reason::BookingProvider {
        if b.provider.as_deref() != Some(case.recipient) {
            wrong.push(format!("provider {:?}", b.provider));
        }
        // The receipt shows the candidate table, strategy and preference snapshot.
        for needle in ["Booking   strategy", "candidate", "preferences", "← chosen"] {
            if !receipt.contains(needle) {
                wrong.push(format!("receipt lacks {needle:?}"));
            }
        }
    }
    wrong
}

#[test]
fn booking_requests_table() {
    let p = clinic();
    let calendars = CalendarCache::default().snapshot(&p);
    assert_eq!(calendars.len(), 2, "Nancy's and Marcus's calendars load");
    let mut failures = Vec::new();
    for case in CASES {
        let msg = message(case.from, case.date, case.subject, case.body);
        let d = triage(&msg, &p, &context(&p, case, calendars.clone()));
        let receipt = render(&msg, &d);
        let wrong = check(case, &d, &receipt);
        if !wrong.is_empty() {
            failures.push(format!(
                "── {}\n   {}\n{receipt}",
                case.name,
                wrong.join("\n   ")
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn booking_link_and_provider_travel_in_the_decision_json() {
    let p = clinic();
    let case = &CASES[0];
    let msg = message(case.from, case.date, case.subject, case.body);
    let d = triage(&msg, &p, &context(&p, case, BTreeMap::new()));
    let json = serde_json::to_value(&d).unwrap_or_default();
    assert_eq!(json["booking"]["provider"], "Sinéad O'Brien");
    assert_eq!(
        json["booking"]["booking_link"],
        "https://cal.com/sothis/swedish"
    );
    assert_eq!(json["booking"]["strategy"], "preference");
    // Nancy's own link wins over the service's.
    let msg = message(
        PAT,
        Some(MON),
        "Massage",
        "I would like to book a deep tissue massage.",
    );
    let d = triage(&msg, &p, &Context::default());
    assert_eq!(
        d.booking.and_then(|b| b.booking_link).as_deref(),
        Some("https://cal.com/sothis/nancy")
    );
}

/// The clinic profile in a scratch directory, with its calendars beside it.
fn scratch_clinic(tag: &str) -> (std::path::PathBuf, Profile) {
    let dir = std::env::temp_dir().join(format!("mt-booking-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("calendars")).expect("scratch dir");
    for f in ["nancy.ics", "marcus.ics"] {
        std::fs::copy(
            root().join("profiles/calendars").join(f),
            dir.join("calendars").join(f),
        )
        .expect("copy calendar");
    }
    let file = dir.join("clinic.yaml");
    std::fs::copy(root().join("profiles/clinic.yaml"), &file).expect("copy profile");
    let p = Profile::load(&file).unwrap_or_else(|e| panic!("{e}"));
    (dir, p)
}

fn dst_case() -> &'static Case {
    CASES
        .iter()
        .find(|c| c.name.contains("DST change"))
        .expect("the DST row")
}

#[test]
fn unreadable_calendar_keeps_the_last_good_copy() {
    let (dir, p) = scratch_clinic("lastgood");
    let cache = CalendarCache::default();
    let t0 = Instant::now();
    let first = cache.snapshot_at(&p, t0);
    let marcus = first.get("Marcus Chen").cloned().unwrap_or_default();
    assert_eq!(marcus.busy.len(), 1);
    // The file becomes unreadable (a directory where the file was), then garbage.
    let cal = dir.join("calendars/marcus.ics");
    std::fs::remove_file(&cal).expect("remove");
    std::fs::create_dir(&cal).expect("dir in its place");
    // Before the refresh interval nothing is re-read.
    let soon = cache.snapshot_at(&p, t0 + Duration::from_secs(60));
    assert_eq!(soon.get("Marcus Chen"), Some(&marcus));
    let later = cache.snapshot_at(&p, t0 + Duration::from_secs(16 * 60));
    let kept = later.get("Marcus Chen").cloned().unwrap_or_default();
    assert_eq!(kept.busy, marcus.busy, "last good copy kept");
    let note = kept.note.clone().unwrap_or_default();
    assert!(
        note.contains("cannot read the calendar") && note.contains("using the copy read at"),
        "{note}"
    );
    // The decision still sees him busy, and says why the calendar is old.
    let case = dst_case();
    let msg = message(case.from, case.date, case.subject, case.body);
    let d = triage(&msg, &p, &context(&p, case, later));
    let b = d.booking.expect("booking block");
    assert_eq!(b.candidates[0].available, Some(false));
    assert!(
        b.notes
            .iter()
            .any(|n| n.starts_with("Marcus Chen's calendar:") && n.contains("using the copy")),
        "{:?}",
        b.notes
    );
    // Garbage instead of a calendar: also refused, the copy still kept.
    std::fs::remove_dir(&cal).expect("rmdir");
    std::fs::write(&cal, "this is not a calendar").expect("write");
    let again = cache.snapshot_at(&p, t0 + Duration::from_secs(32 * 60));
    let kept = again.get("Marcus Chen").cloned().unwrap_or_default();
    assert_eq!(kept.busy, marcus.busy);
    assert!(
        kept.note
            .unwrap_or_default()
            .contains("not an iCalendar file"),
        "garbage is named"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn calendar_missing_from_the_start_means_no_busy_data() {
    let (dir, p) = scratch_clinic("missing");
    std::fs::remove_file(dir.join("calendars/marcus.ics")).expect("remove");
    let cals = CalendarCache::default().snapshot(&p);
    let marcus = cals.get("Marcus Chen").cloned().unwrap_or_default();
    assert!(marcus.busy.is_empty());
    assert!(
        marcus
            .note
            .clone()
            .unwrap_or_default()
            .contains("no busy data"),
        "{marcus:?}"
    );
    // Treated as free within his hours: the DST Sunday is now available.
    let case = dst_case();
    let msg = message(case.from, case.date, case.subject, case.body);
    let d = triage(&msg, &p, &context(&p, case, cals));
    let b = d.booking.expect("booking block");
    assert_eq!(b.candidates[0].available, Some(true));
    assert!(
        b.notes.iter().any(|n| n.contains("no busy data")),
        "{:?}",
        b.notes
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The clinic profile with Marcus's calendar at `url` (refreshed every 15 minutes).
fn clinic_with_feed(url: &str) -> Profile {
    let yaml = std::fs::read_to_string(root().join("profiles/clinic.yaml"))
        .expect("clinic profile")
        .replace(
            "busy_calendar: calendars/marcus.ics",
            &format!("busy_calendar: \"{url}\""),
        );
    let file = root().join("profiles/clinic-feed.yaml");
    Profile::from_bytes(&file.display().to_string(), yaml.as_bytes())
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn calendar_feeds_are_fetched_cached_and_kept_when_the_server_fails() {
    let ics = std::fs::read_to_string(root().join("profiles/calendars/marcus.ics")).expect("ics");
    let from_file = CalendarCache::default().snapshot(&clinic());
    let want = from_file.get("Marcus Chen").cloned().unwrap_or_default();
    assert_eq!(want.busy.len(), 1, "{want:?}");
    // First the calendar, then a server error, then garbage.
    let (port, hits) = crate::feed::serve(vec![
        (200, ics),
        (500, String::new()),
        (200, "not a calendar".into()),
    ]);
    let p = clinic_with_feed(&format!("http://127.0.0.1:{port}/secret-token/marcus.ics"));
    let cache = CalendarCache::default();
    // Before any fetch a snapshot never waits for the network: no busy data, said so.
    let before = cache.snapshot(&p);
    let note = before["Marcus Chen"].note.clone().unwrap_or_default();
    assert!(note.contains("not fetched yet"), "{note}");
    assert!(
        !note.contains("secret-token"),
        "the feed's path stays out: {note}"
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let t0 = Instant::now();
    rt.block_on(cache.refresh_feeds_at(&p, t0));
    let got = cache.snapshot(&p)["Marcus Chen"].clone();
    assert_eq!(got.busy, want.busy, "the feed gives what the file gives");
    // Within the refresh interval nothing is fetched again.
    rt.block_on(cache.refresh_feeds_at(&p, t0 + Duration::from_secs(60)));
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);
    for (round, expect) in [(2, "answered 500"), (3, "not an iCalendar file")] {
        let at = t0 + Duration::from_secs(16 * 60 * (round as u64 - 1));
        rt.block_on(cache.refresh_feeds_at(&p, at));
        assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), round);
        let kept = cache.snapshot(&p)["Marcus Chen"].clone();
        assert_eq!(kept.busy, want.busy, "last good copy kept after: {expect}");
        let note = kept.note.unwrap_or_default();
        assert!(
            note.contains(expect) && note.contains("using the copy read at"),
            "{note}"
        );
        assert!(!note.contains("secret-token"), "{note}");
    }
    // The command line fetches feeds too (once, on a runtime of its own).
    let fresh = CalendarCache::default();
    fresh.refresh_feeds_blocking(&p);
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 4);
}

#[test]
fn calendar_feeds_must_be_https_except_on_this_machine() {
    let yaml = std::fs::read_to_string(root().join("profiles/clinic.yaml"))
        .expect("clinic profile")
        .replace(
            "busy_calendar: calendars/marcus.ics",
            "busy_calendar: http://calendar.example.com/marcus.ics",
        );
    let err = Profile::from_bytes("clinic.yaml", yaml.as_bytes())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("would fetch the calendar unencrypted")
            && err.contains("booking.providers[2].busy_calendar"),
        "{err}"
    );
    for ok in [
        "https://calendar.example.com/marcus.ics",
        "webcal://calendar.example.com/marcus.ics",
        "http://127.0.0.1:8080/marcus.ics",
    ] {
        let yaml = std::fs::read_to_string(root().join("profiles/clinic.yaml"))
            .expect("clinic profile")
            .replace(
                "busy_calendar: calendars/marcus.ics",
                &format!("busy_calendar: \"{ok}\""),
            );
        assert!(
            Profile::from_bytes("clinic.yaml", yaml.as_bytes()).is_ok(),
            "{ok} refused"
        );
    }
}

/// The clinic with a receptionist who is not a provider.
fn clinic_with_receptionist() -> Profile {
    let yaml = std::fs::read_to_string(root().join("profiles/clinic.yaml"))
        .expect("clinic profile")
        .replace(
            "\nroles:\n",
            "\n  - name: Rosa Diaz\n    email: rosa@sothismassage.ca\n    roles: [support_lead]\n\nroles:\n",
        );
    let file = root().join("profiles/clinic-with-receptionist.yaml");
    Profile::from_bytes(&file.display().to_string(), yaml.as_bytes())
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn named_staff_who_are_not_providers() {
    let p = clinic_with_receptionist();
    assert!(p.member_index("Rosa Diaz").is_some(), "Rosa is on the team");
    // A provider named after greeting the receptionist: the customer asked for Marcus.
    let msg = message(
        PAT,
        Some(MON),
        "Hot stone",
        "Hi Rosa,\n\ncan I book a hot stone massage with Marcus on Saturday?",
    );
    let d = triage(&msg, &p, &Context::default());
    let b = d.booking.clone().expect("booking block");
    assert_eq!(
        (d.recipient.as_deref(), d.reason, b.strategy.as_str()),
        (
            Some("Marcus Chen"),
            Reason::BookingProvider,
            "explicit_request"
        ),
        "{}",
        render(&msg, &d)
    );
    // Only the receptionist named: the normal rules (name mention) decide.
    let msg = message(
        PAT,
        Some(MON),
        "Hot stone",
        "Hi Rosa,\n\ncan I book a hot stone massage on Saturday?",
    );
    let d = triage(&msg, &p, &Context::default());
    let b = d.booking.clone().expect("booking block");
    assert_eq!(
        (d.recipient.as_deref(), d.reason, b.strategy.as_str()),
        (Some("Rosa Diaz"), Reason::NameMention, "staff_named"),
        "{}",
        render(&msg, &d)
    );
    assert_eq!(d.folder.as_deref(), Some("BOOKING/Rosa Diaz"));
    assert!(
        b.notes[0].contains("is not a booking provider"),
        "{:?}",
        b.notes
    );
    assert_eq!(b.provider, None);
}

#[test]
fn check_and_explain_show_the_booking_setup_and_candidate_table() {
    let run = |args: &[&str]| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_mailtriage"))
            .args(args)
            .current_dir(root())
            .output()
            .expect("mailtriage runs");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let out = run(&["check", "profiles/clinic.yaml"]);
    for needle in [
        "booking requests as provider → BOOKING/Nancy Reyes",
        "offers: Deep Tissue Massage (primary), Prenatal Massage (primary), Swedish Massage (secondary)",
        "hours: Mon 09:00-17:00; Tue 09:00-17:00; Wed 09:00-17:00; Thu 12:00-20:00",
        "busy calendar profiles/calendars/nancy.ics (2 busy time(s))",
        "busy calendar profiles/calendars/marcus.ics (1 busy time(s))",
        "Sat 10:00-16:00; Sun 10:00-16:00",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
    let dir = std::env::temp_dir().join(format!("mt-booking-explain-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let eml = dir.join("olivia.eml");
    std::fs::write(
        &eml,
        "From: Olivia Grant <olivia.grant@example.com>\r\nTo: info@sothismassage.ca\r\nSubject: Deep tissue\r\nDate: Mon, 2 Mar 2026 10:00:00 -0500\r\n\r\nCould I book a deep tissue massage on Wednesday?\r\n",
    )
    .expect("write message");
    let eml = eml.display().to_string();
    let out = run(&["explain", &eml, "--profile", "profiles/clinic.yaml"]);
    for needle in [
        "Reason    booking_provider — booking request assigned to Nancy Reyes by preference",
        "Booking   strategy preference",
        "preferences  Nancy Reyes (profile)",
        "provider     Nancy Reyes, booking link https://cal.com/sothis/nancy",
        "candidate                pref  service  avail  total  load7d  availability",
        "Wed 2026-03-04: works 09:00-17:00 but has no free 60 min (calendar) [primary]  ← chosen",
        "Marcus Chen                 0       25     30     55       0",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
    let json = run(&[
        "explain",
        &eml,
        "--profile",
        "profiles/clinic.yaml",
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(v["booking"]["candidates"][0]["preference"], 100.0);
    assert_eq!(v["booking"]["candidates"][0]["available"], false);
    let _ = std::fs::remove_dir_all(&dir);
}
