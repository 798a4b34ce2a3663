//! Booking end to end on a real Dovecot over IMAP, with the clinic profile and its busy
//! calendars: requests land in the right provider's folder, and a customer assigned to
//! the same provider twice is routed to them afterwards (a learned preference, shown by
//! `history --contact` and in the stored receipt).

use std::process::Command;

use super::daemon::{assert_exactly_once, root, Conf, Setup};
use super::harness::{Dovecot, DovecotOptions, SmtpSink, TempDir};

const PW: (&str, &str) = ("MT_TEST_PASSWORD", "alicepw");

/// A booking request sent on Monday 2 March 2026 (Nancy is away all Wednesday 4 March).
fn request(id: &str, from: &str, subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: info@sothismassage.ca\r\nSubject: {subject}\r\nDate: Mon, 2 Mar 2026 10:00:00 -0500\r\nMessage-ID: <{id}@test.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

fn holds(d: &Dovecot, folder: &str, id: &str) -> bool {
    let needle = format!("<{id}@test.example>");
    d.messages("alice", folder)
        .iter()
        .any(|m| String::from_utf8_lossy(&m.raw).contains(&needle))
}

fn cli(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_mailtriage"))
        .args(args)
        .output()
        .expect("mailtriage runs");
    assert!(
        out.status.success(),
        "mailtriage {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn booking_requests_reach_providers_and_learned_preferences_change_routing() {
    let d = Dovecot::start(DovecotOptions::default());
    let s = Setup::imap(
        &d,
        Conf {
            profile: root().join("profiles/clinic.yaml"),
            user: "alice",
            password_env: PW.0,
            extra: "    backfill: all\n",
        },
    );
    const JANE: &str = "Jane Doe <jane@example.com>";
    let mut originals = Vec::new();

    // Round 1: one request per strategy.
    let round1 = [
        (
            "pref",
            "Tasha Morgan <tasha.morgan@example.com>",
            "Appointment",
            "Could I book a Swedish massage on Wednesday?",
        ),
        (
            "avail",
            "Pat Customer <pat@example.com>",
            "Deep tissue",
            "Do you have availability for a deep tissue massage on Wednesday?",
        ),
        (
            "cupping",
            "Pat Customer <pat@example.com>",
            "Cupping",
            "I'd like to book a cupping appointment.",
        ),
        (
            "jane-1",
            JANE,
            "Deep tissue",
            "Can I book a deep tissue massage with Marcus?",
        ),
    ];
    for (id, from, subject, body) in round1 {
        let m = request(id, from, subject, body);
        d.deliver("alice", "INBOX", &m);
        originals.push(m);
    }
    let (status, log) = s.run_once(&[PW]);
    assert!(status.success(), "{log}");
    for (folder, id) in [
        ("BOOKING/Sinéad O'Brien", "pref"),
        // Nancy's calendar has her away all Wednesday: Marcus is free.
        ("BOOKING/Marcus Chen", "avail"),
        // Nobody offers cupping: the normal rules (BOOKING role holders) decide.
        ("BOOKING/Nancy Reyes", "cupping"),
        ("BOOKING/Marcus Chen", "jane-1"),
    ] {
        assert!(
            holds(&d, folder, id),
            "{id} not in {folder}\n{}",
            s.log_text()
        );
    }

    // Round 2: Jane asks for Marcus again — her second assignment to him.
    let m = request(
        "jane-2",
        JANE,
        "Again",
        "Could I book another deep tissue massage with Marcus?",
    );
    d.deliver("alice", "INBOX", &m);
    originals.push(m);
    let (status, log) = s.run_once(&[PW]);
    assert!(status.success(), "{log}");
    assert!(
        holds(&d, "BOOKING/Marcus Chen", "jane-2"),
        "{}",
        s.log_text()
    );

    // Round 3: the same words from Jane and from a new customer. Deep tissue is Nancy's
    // primary service, so without a preference it goes to her; Jane's learned preference
    // sends hers to Marcus.
    let plain = "I would like to book a deep tissue massage.";
    for (id, from) in [("jane-3", JANE), ("kim-1", "Kim Park <kim@example.com>")] {
        let m = request(id, from, "Massage", plain);
        d.deliver("alice", "INBOX", &m);
        originals.push(m);
    }
    let (status, log) = s.run_once(&[PW]);
    assert!(status.success(), "{log}");
    assert!(
        holds(&d, "BOOKING/Marcus Chen", "jane-3"),
        "{}",
        s.log_text()
    );
    assert!(
        holds(&d, "BOOKING/Nancy Reyes", "kim-1"),
        "{}",
        s.log_text()
    );
    assert_exactly_once(&d, "alice", &originals);

    // The learned preference is visible, and the receipt says why Jane went to Marcus.
    let state = s.state.display().to_string();
    let history = cli(&[
        "history",
        "--state",
        &state,
        "--contact",
        "JANE@example.com",
    ]);
    assert!(
        history.contains("Marcus Chen") && history.contains("3 booking(s)"),
        "{history}"
    );
    assert!(
        history.contains("learned preferences: Marcus Chen"),
        "{history}"
    );
    let json = cli(&[
        "history",
        "--state",
        &state,
        "--contact",
        "kim@example.com",
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(json.trim()).expect("one JSON object");
    assert_eq!(v["learned_preferences"], serde_json::json!([]), "{json}");
    assert_eq!(v["providers"][0]["member"], "Nancy Reyes", "{json}");
    let receipt = cli(&[
        "explain",
        "--state",
        &state,
        "--message-id",
        "jane-3@test.example",
    ]);
    assert!(
        receipt.contains("strategy preference") && receipt.contains("Marcus Chen (learned)"),
        "{receipt}"
    );
}

/// The optional acknowledgement names the chosen provider and their booking link, and a
/// line whose placeholder has no value (no link) is left out.
#[test]
fn booking_acknowledgement_names_the_provider_and_their_link() {
    let d = Dovecot::start(DovecotOptions::default());
    let sink = SmtpSink::start();
    // The clinic profile with an acknowledgement, beside a copy of its calendars.
    let pdir = TempDir::new("clinic");
    let cals = pdir.path().join("calendars");
    std::fs::create_dir_all(&cals).expect("calendars dir");
    for f in ["nancy.ics", "marcus.ics"] {
        std::fs::copy(root().join("profiles/calendars").join(f), cals.join(f)).expect("copy");
    }
    let clinic = std::fs::read_to_string(root().join("profiles/clinic.yaml")).expect("clinic");
    let profile = pdir.path().join("clinic.yaml");
    std::fs::write(
        &profile,
        format!(
            "{clinic}\nacknowledgement:\n  template: |\n    Hello {{customer_name}},\n    {{provider}} will get back to you about your {{service}}.\n    You can also pick a time yourself: {{booking_link}}\n    Sothis Massage\n"
        ),
    )
    .expect("write profile");
    let s = Setup::imap(
        &d,
        Conf {
            profile,
            user: "alice",
            password_env: PW.0,
            extra: &format!(
                "    backfill: all\nsmtp: {{host: 127.0.0.1, port: {}, tls: none, from: \"Sothis <frontdesk@sothismassage.ca>\"}}\n",
                sink.port()
            ),
        },
    );
    d.deliver(
        "alice",
        "INBOX",
        &request(
            "ack-1",
            "Jane Doe <jane@example.com>",
            "Hot stone",
            "Can I book a hot stone massage with Marcus on Wednesday?",
        ),
    );
    let (status, log) = s.run_once(&[PW]);
    assert!(status.success(), "{log}");
    let got = sink.wait_for(1, std::time::Duration::from_secs(10));
    assert_eq!(got.len(), 1, "{got:#?}\n{log}");
    let ack = &got[0];
    assert_eq!(ack.rcpt_to, vec!["jane@example.com".to_string()]);
    assert_eq!(
        ack.header("Auto-Submitted").as_deref(),
        Some("auto-replied")
    );
    let text = ack.text();
    assert!(
        text.contains("Marcus Chen will get back to you about your Hot Stone Massage.")
            && text.contains("pick a time yourself: https://cal.com/sothis/hot-stone"),
        "{text}"
    );
}

/// A busy calendar served as a feed: the daemon fetches it before triaging, so Nancy
/// (away all Wednesday in her calendar) is not given a Wednesday request — without the
/// feed she would be, deep tissue being her primary service.
#[test]
fn the_daemon_fetches_busy_calendar_feeds_before_triage() {
    let d = Dovecot::start(DovecotOptions::default());
    let nancy = std::fs::read_to_string(root().join("profiles/calendars/nancy.ics")).expect("ics");
    let (port, hits) = crate::feed::serve(vec![(200, nancy)]);
    let pdir = TempDir::new("clinic-feed");
    let cals = pdir.path().join("calendars");
    std::fs::create_dir_all(&cals).expect("calendars dir");
    std::fs::copy(
        root().join("profiles/calendars/marcus.ics"),
        cals.join("marcus.ics"),
    )
    .expect("copy");
    let clinic = std::fs::read_to_string(root().join("profiles/clinic.yaml"))
        .expect("clinic")
        .replace(
            "busy_calendar: calendars/nancy.ics",
            &format!("busy_calendar: \"http://127.0.0.1:{port}/private/nancy.ics\""),
        );
    let profile = pdir.path().join("clinic.yaml");
    std::fs::write(&profile, clinic).expect("write profile");
    let s = Setup::imap(
        &d,
        Conf {
            profile,
            user: "alice",
            password_env: PW.0,
            extra: "    backfill: all\n",
        },
    );
    let m = request(
        "feed-1",
        "Pat Customer <pat@example.com>",
        "Deep tissue",
        "Do you have availability for a deep tissue massage on Wednesday?",
    );
    d.deliver("alice", "INBOX", &m);
    let (status, log) = s.run_once(&[PW]);
    assert!(status.success(), "{log}");
    assert!(
        hits.load(std::sync::atomic::Ordering::SeqCst) >= 1,
        "the feed was never fetched\n{log}"
    );
    assert!(
        holds(&d, "BOOKING/Marcus Chen", "feed-1"),
        "{}",
        s.log_text()
    );
    assert!(
        !s.log_text().contains("/private/"),
        "the feed's path reached the log"
    );
    assert_exactly_once(&d, "alice", &[m]);
}
