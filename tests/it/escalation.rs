//! Escalation actions, alerts, acknowledgements and digests end to end: the real
//! daemon against a real Dovecot (IMAP, or the Maildir tree Dovecot serves) and a real
//! SMTP server on 127.0.0.1 (aiosmtpd).

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use super::daemon::{mailbox_contents, wait_count, Conf, Setup};
use super::harness::{
    free_port, poll, Dovecot, DovecotOptions, Received, SmtpSink, StoredMessage, TempDir,
};
use super::ops::scrape;

const PW: (&str, &str) = ("MT_TEST_PASSWORD", "alicepw");

/// Clearly negative wording with no escalation keyword in it.
const ANGRY: &str =
    "Your service is terrible and awful, the worst, horrible and useless. I hate it.";

/// A profile with two members with addresses; `extra` adds top-level sections.
fn profile(dir: &TempDir, mode: &str, extra: &str) -> PathBuf {
    let yaml = format!(
        "business:
  name: Hot Tub Man
  domains: [hottubman.ca]
  timezone: America/Toronto
team:
  - name: Mark Johnson
    email: mark@hottubman.ca
    roles: [sales_manager, operations_manager]
  - name: Sarah Williams
    email: sarah@hottubman.ca
    roles: [service_manager, support_lead, owner]
escalation:
  mode: {mode}
  actions:
    URGENT: {{flag: true, notify: [recipient, fallback], copy_to: ESCALATED}}
    HIGH: {{flag: true, notify: [recipient]}}
    MEDIUM: {{flag: true}}
{extra}"
    );
    let p = dir.path().join("profile.yaml");
    fs::write(&p, yaml).expect("write profile");
    p
}

/// The `smtp:` block for a server on 127.0.0.1.
fn smtp_block(port: u16, auth: &str) -> String {
    format!(
        "smtp: {{host: 127.0.0.1, port: {port}, tls: none, from: \"Hot Tub Man triage <alerts@hottubman.ca>\"{auth}}}\n"
    )
}

/// A message to Mark (so the fallback, Sarah, is someone else).
fn msg(id: &str, subject: &str, body: &str) -> Vec<u8> {
    msg_from("pat@example.com", id, subject, body)
}

/// A message to Mark from `from` (alerts are limited per sender: tests that count one
/// alert per message give each message its own sender).
fn msg_from(from: &str, id: &str, subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: Pat Customer <{from}>\r\nTo: mark@hottubman.ca\r\nSubject: {subject}\r\nDate: Mon, 2 Mar 2026 10:00:00 -0500\r\nMessage-ID: <{id}@test.example>\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

/// A config over IMAP with the SMTP server at `port`.
fn imap_setup(d: &Dovecot, profile: PathBuf, port: u16, account_extra: &str) -> Setup {
    let extra = format!("    backfill: all\n{account_extra}{}", smtp_block(port, ""));
    Setup::imap(
        d,
        Conf {
            profile,
            user: "alice",
            password_env: PW.0,
            extra: &extra,
        },
    )
}

/// Every stored copy of the message with this Message-ID: (folder, message).
fn copies_of(d: &Dovecot, id: &str) -> Vec<(String, StoredMessage)> {
    let needle = format!("Message-ID: <{id}@test.example>");
    mailbox_contents(d, "alice")
        .into_iter()
        .flat_map(|(f, msgs)| msgs.into_iter().map(move |m| (f.clone(), m)))
        .filter(|(_, m)| String::from_utf8_lossy(&m.raw).contains(&needle))
        .collect()
}

/// Alerts about the message with this Message-ID.
fn alerts_about(got: &[Received], id: &str) -> Vec<Received> {
    let want = format!("<{id}@test.example>");
    got.iter()
        .filter(|m| m.header("In-Reply-To").as_deref() == Some(want.as_str()))
        .filter(|m| m.header("Auto-Submitted").as_deref() == Some("auto-generated"))
        .cloned()
        .collect()
}

/// Sum of a metric's samples (any labels) in Prometheus text.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn has(flags: &[String], f: &str) -> bool {
    flags.iter().any(|x| x == f)
}

#[test]
fn each_escalation_mode_flags_copies_and_alerts_exactly_the_right_messages() {
    let both = format!("{ANGRY} I will call my lawyer.");
    let bodies: [(&str, &str); 4] = [
        ("kw", "I will call my lawyer about the quote."),
        ("sent", ANGRY),
        ("both", &both),
        ("none", "Could you send a quote for a new hot tub?"),
    ];
    let cases: [(&str, &[&str]); 5] = [
        ("keyword_only", &["kw", "both"]),
        ("sentiment_only", &["sent", "both"]),
        ("sentiment_and_keyword", &["both"]),
        ("sentiment_then_keyword", &["kw", "sent", "both"]),
        ("manual_only", &[]),
    ];
    let sink = SmtpSink::start();
    for (mode, escalated) in cases {
        let d = Dovecot::start(DovecotOptions::default());
        let originals: Vec<Vec<u8>> = bodies
            .iter()
            .map(|(tag, body)| {
                let from = format!("pat.{tag}@example.com");
                msg_from(&from, &format!("{mode}-{tag}"), "Hot tub", body)
            })
            .collect();
        d.deliver_many("alice", "INBOX", &originals);
        let pdir = TempDir::new("profile");
        let s = imap_setup(&d, profile(&pdir, mode, ""), sink.port(), "");
        let (status, log) = s.run_once(&[PW]);
        assert!(status.success(), "{mode}: {log}");
        let got = sink.messages();
        for ((tag, _), original) in bodies.iter().zip(&originals) {
            let id = format!("{mode}-{tag}");
            let want = escalated.contains(tag);
            let copies = copies_of(&d, &id);
            let filed: Vec<&(String, StoredMessage)> =
                copies.iter().filter(|(f, _)| f != "ESCALATED").collect();
            assert_eq!(filed.len(), 1, "{id}: {copies:?}");
            let (folder, m) = filed[0];
            assert_ne!(folder, "INBOX", "{id} was not filed");
            assert_eq!(&m.raw, original, "{id}: content changed");
            for f in ["\\Flagged", "$Escalated", "$Priority_URGENT"] {
                assert_eq!(
                    has(&m.flags, f),
                    want,
                    "{id} in {folder}: {f} in {:?}",
                    m.flags
                );
            }
            assert!(!has(&m.flags, "\\Seen"), "{id}: marked seen");
            let escalation_copies: Vec<_> =
                copies.iter().filter(|(f, _)| f == "ESCALATED").collect();
            assert_eq!(
                escalation_copies.len(),
                usize::from(want),
                "{id}: {copies:?}"
            );
            for (_, c) in escalation_copies {
                assert_eq!(&c.raw, original, "{id}: the copy differs");
            }
            let alerts = alerts_about(&got, &id);
            let mut rcpts: Vec<String> = alerts.iter().flat_map(|a| a.rcpt_to.clone()).collect();
            rcpts.sort();
            let expected: Vec<String> = if want {
                vec!["mark@hottubman.ca".into(), "sarah@hottubman.ca".into()]
            } else {
                Vec::new()
            };
            assert_eq!(rcpts, expected, "{id}: alerts to {rcpts:?}\n{log}");
            for a in &alerts {
                assert_eq!(a.mail_from, "alerts@hottubman.ca");
                let subject = a.header("Subject").unwrap_or_default();
                assert!(
                    subject.starts_with("[URGENT] Hot tub - Pat Customer"),
                    "{subject}"
                );
                assert_eq!(
                    a.header("References").as_deref(),
                    Some(format!("<{id}@test.example>").as_str())
                );
                let body = a.text();
                let from = format!("Pat Customer <pat.{tag}@example.com>");
                for part in [from.as_str(), "Filed in:", folder.as_str(), "> "] {
                    assert!(body.contains(part), "{part} missing in the alert:\n{body}");
                }
            }
        }
    }
}

#[test]
fn one_sender_escalating_again_and_again_alerts_each_member_once_an_hour() {
    let d = Dovecot::start(DovecotOptions::default());
    let mut mails: Vec<Vec<u8>> = (1..=3)
        .map(|i| {
            msg(
                &format!("again-{i}"),
                "Still broken",
                "This is the third time: I will call my lawyer.",
            )
        })
        .collect();
    mails.push(
        b"From: Lee Other <lee@example.net>\r\nTo: mark@hottubman.ca\r\nSubject: Heater\r\nMessage-ID: <again-other@test.example>\r\n\r\nI will call my lawyer.\r\n"
            .to_vec(),
    );
    d.deliver_many("alice", "INBOX", &mails);
    let sink = SmtpSink::start();
    let pdir = TempDir::new("profile");
    let s = imap_setup(&d, profile(&pdir, "keyword_only", ""), sink.port(), "");
    let (status, log) = s.run_once(&[PW]);
    assert!(status.success(), "{log}");
    let got = sink.wait_for(4, Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(1));
    let got_now = sink.messages();
    assert_eq!(got_now.len(), got.len(), "more mail arrived late");
    let mut alerted: Vec<(String, String)> = got_now
        .iter()
        .flat_map(|m| {
            let about = m.header("In-Reply-To").unwrap_or_default();
            m.rcpt_to.iter().map(move |r| (about.clone(), r.clone()))
        })
        .collect();
    alerted.sort();
    let want: Vec<(String, String)> = [
        ("<again-1@test.example>", "mark@hottubman.ca"),
        ("<again-1@test.example>", "sarah@hottubman.ca"),
        ("<again-other@test.example>", "mark@hottubman.ca"),
        ("<again-other@test.example>", "sarah@hottubman.ca"),
    ]
    .iter()
    .map(|(a, b)| ((*a).to_string(), (*b).to_string()))
    .collect();
    assert_eq!(alerted, want, "{log}");
    assert!(
        log.contains("escalation.alert_once_per"),
        "the held-back alerts are logged:\n{log}"
    );
    // The limit holds back mail only: every message is still flagged and copied.
    for i in 1..=3 {
        let copies = copies_of(&d, &format!("again-{i}"));
        assert!(copies.iter().any(|(f, _)| f == "ESCALATED"), "{copies:?}");
        assert!(
            copies.iter().all(|(_, m)| has(&m.flags, "\\Flagged")),
            "{copies:?}"
        );
    }

    // `alert_once_per: 0` turns the limit off.
    let d = Dovecot::start(DovecotOptions::default());
    d.deliver_many("alice", "INBOX", &mails[..2]);
    let sink = SmtpSink::start();
    let pdir = TempDir::new("profile");
    let prof = profile(&pdir, "keyword_only", "");
    let yaml = fs::read_to_string(&prof).expect("profile");
    fs::write(
        &prof,
        yaml.replace("escalation:\n", "escalation:\n  alert_once_per: 0\n"),
    )
    .expect("profile");
    let s = imap_setup(&d, prof, sink.port(), "");
    let (status, log) = s.run_once(&[PW]);
    assert!(status.success(), "{log}");
    assert_eq!(sink.wait_for(4, Duration::from_secs(10)).len(), 4, "{log}");
}

#[test]
fn a_header_injection_attempt_in_subject_or_name_adds_no_header_or_recipient() {
    let d = Dovecot::start(DovecotOptions::default());
    // RFC 2047 lets a sender smuggle CR LF into the decoded subject and name.
    let raw = b"From: =?utf-8?q?Pat=0D=0ABcc=3A_name=40attacker=2Eexample?= <pat@example.com>\r\nTo: mark@hottubman.ca\r\nSubject: =?utf-8?q?Refund=0D=0ABcc=3A_subject=40attacker=2Eexample=0D=0AX-Injected=3A_yes?=\r\nMessage-ID: <inject@test.example>\r\n\r\nI will call my lawyer.\r\n".to_vec();
    d.deliver("alice", "INBOX", &raw);
    let sink = SmtpSink::start();
    let pdir = TempDir::new("profile");
    let s = imap_setup(&d, profile(&pdir, "keyword_only", ""), sink.port(), "");
    let (status, log) = s.run_once(&[PW]);
    assert!(status.success(), "{log}");
    let got = sink.wait_for(2, Duration::from_secs(10));
    assert_eq!(got.len(), 2, "{log}");
    for m in &got {
        assert_eq!(m.rcpt_to.len(), 1, "{:?}", m.rcpt_to);
        assert!(
            ["mark@hottubman.ca", "sarah@hottubman.ca"].contains(&m.rcpt_to[0].as_str()),
            "{:?}",
            m.rcpt_to
        );
        let names: Vec<String> = m
            .headers()
            .into_iter()
            .map(|(n, _)| n.to_ascii_lowercase())
            .collect();
        assert!(
            !names.iter().any(|n| n == "bcc" || n == "x-injected"),
            "{}",
            m.raw
        );
        assert_eq!(
            names.iter().filter(|n| *n == "subject").count(),
            1,
            "{}",
            m.raw
        );
        assert!(!m.raw.contains("attacker.example\r\n"), "{}", m.raw);
    }
}

#[test]
fn smtp_down_then_up_delivers_each_alert_exactly_once() {
    let d = Dovecot::start(DovecotOptions::default());
    let mut sink = SmtpSink::reserve();
    let pdir = TempDir::new("profile");
    let s = imap_setup(&d, profile(&pdir, "keyword_only", ""), sink.port(), "");
    d.deliver(
        "alice",
        "INBOX",
        &msg("outage", "Cover", "I will call my lawyer."),
    );
    let metrics = free_port();
    let cfg = fs::read_to_string(&s.config).expect("config");
    fs::write(&s.config, format!("metrics: 127.0.0.1:{metrics}\n{cfg}")).expect("config");
    let mut daemon = s.start(&[PW]);
    assert!(
        daemon.wait_log("cannot send the alert", Duration::from_secs(20)),
        "{}",
        daemon.log()
    );
    let pending = poll(Duration::from_secs(10), || {
        let m = scrape(metrics)?;
        (metric(&m, "mailtriage_mail_pending") == 2.0).then_some(())
    });
    assert!(pending.is_some(), "{:?}", scrape(metrics));
    // The message was filed and flagged meanwhile: mail trouble never holds up filing.
    let copies = copies_of(&d, "outage");
    assert!(
        copies
            .iter()
            .any(|(f, m)| f != "INBOX" && f != "ESCALATED" && has(&m.flags, "\\Flagged")),
        "{copies:?}"
    );
    sink.up();
    let got = sink.wait_for(2, Duration::from_secs(30));
    assert_eq!(alerts_about(&got, "outage").len(), 2, "{}", daemon.log());
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(sink.messages().len(), 2, "sent twice:\n{}", daemon.log());
    let m = scrape(metrics).unwrap_or_default();
    assert_eq!(metric(&m, "mailtriage_mail_sent_total"), 2.0, "{m}");
    assert_eq!(metric(&m, "mailtriage_mail_pending"), 0.0, "{m}");
    assert_eq!(metric(&m, "mailtriage_mail_failed_total"), 0.0, "{m}");
    assert_eq!(
        daemon.term(Duration::from_secs(20)).map(|s| s.success()),
        Some(true),
        "{}",
        daemon.log()
    );
    // Every task is accounted for at shutdown (issue 19: the outbox and the metrics
    // endpoint used to be left out).
    let log = s.log_text();
    for stopped in [
        "stopped task=test/INBOX",
        "stopped task=outbox",
        "stopped task=metrics endpoint",
        "all 3 task(s) stopped",
    ] {
        assert!(log.contains(stopped), "{stopped:?} missing:\n{log}");
    }
}

#[test]
fn restart_with_pending_alerts_sends_them_once_and_never_copies_twice() {
    let d = Dovecot::start(DovecotOptions::default());
    let mut sink = SmtpSink::reserve();
    let pdir = TempDir::new("profile");
    let s = imap_setup(&d, profile(&pdir, "keyword_only", ""), sink.port(), "");
    d.deliver(
        "alice",
        "INBOX",
        &msg("pending", "Cover", "I will call my lawyer."),
    );
    // First run: the SMTP server is down; the alerts stay queued.
    let (status, log) = s.run_once(&[PW]);
    assert!(status.success(), "{log}");
    assert!(log.contains("cannot send the alert"), "{log}");
    sink.up();
    for run in 0..2 {
        let (status, log) = s.run_once(&[PW]);
        assert!(status.success(), "run {run}: {log}");
        let got = sink.messages();
        assert_eq!(alerts_about(&got, "pending").len(), 2, "run {run}: {log}");
        assert_eq!(got.len(), 2, "run {run}: {log}");
    }
    let copies = copies_of(&d, "pending");
    assert_eq!(
        copies.iter().filter(|(f, _)| f == "ESCALATED").count(),
        1,
        "{copies:?}"
    );
    assert_eq!(copies.len(), 2, "{copies:?}");
}

#[test]
fn dry_run_flags_copies_and_sends_nothing() {
    let d = Dovecot::start(DovecotOptions::default());
    let sink = SmtpSink::start();
    let pdir = TempDir::new("profile");
    let s = imap_setup(
        &d,
        profile(&pdir, "keyword_only", ""),
        sink.port(),
        "    dry_run: true\n",
    );
    d.deliver(
        "alice",
        "INBOX",
        &msg("shadow", "Cover", "I will call my lawyer."),
    );
    let (status, log) = s.run_once(&[PW]);
    assert!(status.success(), "{log}");
    let copies = copies_of(&d, "shadow");
    assert_eq!(copies.len(), 1, "{copies:?}");
    assert_eq!(copies[0].0, "INBOX");
    assert!(copies[0].1.flags.is_empty(), "{:?}", copies[0].1.flags);
    assert!(sink.messages().is_empty());
}

/// A Maildir setup on the tree Dovecot serves for alice, with the SMTP server at `port`.
fn maildir_setup(d: &Dovecot, profile: PathBuf, smtp: &str) -> Setup {
    Setup::maildir(
        &d.maildir("alice"),
        &profile,
        &format!("    backfill: all\n{smtp}"),
    )
}

#[test]
fn maildir_escalation_sets_flag_and_keyword_letters_dovecot_understands() {
    let d = Dovecot::start(DovecotOptions::default());
    // A keyword of someone else's already in the inbox's table: ours must not clash.
    d.deliver(
        "alice",
        "INBOX",
        &msg("md-other", "Hours", "What are your opening hours?"),
    );
    d.set_flags("alice", "INBOX", 1, "$Label1");
    let original = msg("md-esc", "Cover", "I will call my lawyer.");
    d.deliver("alice", "INBOX", &original);
    let sink = SmtpSink::start();
    let pdir = TempDir::new("profile");
    let s = maildir_setup(
        &d,
        profile(&pdir, "keyword_only", ""),
        &smtp_block(sink.port(), ""),
    );
    let (status, log) = s.run_once(&[]);
    assert!(status.success(), "{log}");
    let copies = copies_of(&d, "md-esc");
    assert_eq!(copies.len(), 2, "{copies:?}");
    for (folder, m) in &copies {
        assert_eq!(&m.raw, &original, "{folder}");
        for f in ["\\Flagged", "$Escalated", "$Priority_URGENT"] {
            assert!(has(&m.flags, f), "{folder}: {f} missing in {:?}", m.flags);
        }
        assert!(
            !has(&m.flags, "\\Seen") && !has(&m.flags, "$Label1"),
            "{folder}: {:?}",
            m.flags
        );
    }
    assert!(copies.iter().any(|(f, _)| f == "ESCALATED"), "{copies:?}");
    let other = copies_of(&d, "md-other");
    assert_eq!(other.len(), 1);
    assert_eq!(other[0].1.flags, vec!["$Label1".to_string()], "{other:?}");
    assert_eq!(
        alerts_about(&sink.wait_for(2, Duration::from_secs(10)), "md-esc").len(),
        2
    );
}

#[test]
fn acknowledgements_answer_customers_once_a_day_and_never_automatic_mail() {
    let d = Dovecot::start(DovecotOptions::default());
    let quote = "Could you send a quote for a new hot tub?";
    let m = |id: &str, headers: &str| {
        format!(
            "{headers}To: mark@hottubman.ca\r\nSubject: Quote\r\nMessage-ID: <{id}@test.example>\r\n\r\n{quote}\r\n"
        )
        .into_bytes()
    };
    let pat = "From: Pat Customer <pat@example.com>\r\n";
    let excluded: [(&str, String); 11] = [
        (
            "listhelp",
            "From: g@lists.example\r\nList-Help: <mailto:help@lists.example>\r\n".into(),
        ),
        (
            "owner",
            "From: h@example.org\r\nSender: owner-spa@lists.example\r\n".into(),
        ),
        (
            "list",
            "From: a@lists.example\r\nList-Id: <spa.lists.example>\r\n".into(),
        ),
        (
            "unsub",
            "From: b@news.example\r\nList-Unsubscribe: <mailto:u@news.example>\r\n".into(),
        ),
        (
            "bulk",
            "From: c@shop.example\r\nPrecedence: bulk\r\n".into(),
        ),
        (
            "junk",
            "From: d@shop.example\r\nPrecedence: junk\r\n".into(),
        ),
        (
            "auto",
            "From: e@example.org\r\nAuto-Submitted: auto-replied\r\n".into(),
        ),
        ("noreply", "From: no-reply@shop.example\r\n".into()),
        ("daemon", "From: MAILER-DAEMON@mx.example\r\n".into()),
        (
            "nullpath",
            "Return-Path: <>\r\nFrom: f@example.org\r\n".into(),
        ),
        ("own", "From: sarah@hottubman.ca\r\n".into()),
    ];
    let mut all = vec![m("ack-1", pat), m("ack-2", pat)];
    all.extend(excluded.iter().map(|(id, h)| m(id, h)));
    d.deliver_many("alice", "INBOX", &all);
    let sink = SmtpSink::start();
    let pdir = TempDir::new("profile");
    let p = profile(
        &pdir,
        "keyword_only",
        "acknowledgement:\n  template: |\n    Hello {customer_name},\n    thanks for writing to {business}. {member} will answer you shortly.\n",
    );
    let s = maildir_setup(&d, p, &smtp_block(sink.port(), ""));
    let (status, log) = s.run_once(&[]);
    assert!(status.success(), "{log}");
    let got = sink.wait_for(1, Duration::from_secs(10));
    assert_eq!(got.len(), 1, "{got:#?}\n{log}");
    let ack = &got[0];
    assert_eq!(ack.rcpt_to, vec!["pat@example.com".to_string()]);
    assert_eq!(
        ack.header("Auto-Submitted").as_deref(),
        Some("auto-replied")
    );
    assert_eq!(ack.header("Subject").as_deref(), Some("Re: Quote"));
    assert_eq!(
        ack.header("In-Reply-To").as_deref(),
        Some("<ack-1@test.example>")
    );
    assert!(
        ack.text().contains("Hello Pat Customer,\r\nthanks for writing to Hot Tub Man. Mark Johnson will answer you shortly."),
        "{}",
        ack.text()
    );
    // Later the same day, a third message from Pat: still one acknowledgement.
    d.deliver("alice", "INBOX", &m("ack-3", pat));
    let (status, log) = s.run_once(&[]);
    assert!(status.success(), "{log}");
    assert_eq!(sink.messages().len(), 1, "{log}");
}

/// Acknowledgements go wherever a (forgeable) From: points, through the business's own
/// SMTP server: none of that may be turned into a way to send someone else's text.
#[test]
fn acknowledgements_cannot_be_turned_into_spam() {
    let d = Dovecot::start(DovecotOptions::default());
    let m = |id: &str, from: &str, subject: &str, extra: &str| {
        format!(
            "From: {from}\r\n{extra}To: mark@hottubman.ca\r\nSubject: {subject}\r\nMessage-ID: <{id}@test.example>\r\n\r\nCould you send a quote for a new hot tub?\r\n"
        )
        .into_bytes()
    };
    let forged = "Mallory wants to sign you up for";
    let all = vec![
        // The spammer's text in the name and subject, with a right-to-left override.
        m(
            "spam-text",
            "=?utf-8?q?Cheap_pills_at_pills=2Eexample_=E2=80=AE?= <victim@example.net>",
            "=?utf-8?q?Best_prices_www=2Epills=2Eexample_call_555_0142_9999?=",
            "",
        ),
        // One mailbox under many names: one acknowledgement.
        m("tag-1", "Vic Tim <vic+1@example.net>", "Quote", ""),
        m("tag-2", "Vic Tim <vic+2@example.net>", "Quote", ""),
        m("tag-3", "Vic Tim <VIC@example.net>", "Quote", ""),
        m("dots-1", "Gee Mail <gee.mail@gmail.com>", "Quote", ""),
        m("dots-2", "Gee Mail <g.e.e.m.a.i.l+x@googlemail.com>", "Quote", ""),
        // Many mailboxes at one domain: the per-domain cap (3 here) holds.
        m("dom-1", "A <a@bulk.example>", "Quote", ""),
        m("dom-2", "B <b@bulk.example>", "Quote", ""),
        m("dom-3", "C <c@bulk.example>", "Quote", ""),
        m("dom-4", "D <d@bulk.example>", "Quote", ""),
        m("dom-5", "E <e@bulk.example>", "Quote", ""),
        // Our own server checked the sender and DMARC failed: a forged From.
        m(
            "dmarc-fail",
            "Boss <boss@bank.example>",
            "Quote",
            "Authentication-Results: mx.hottubman.ca; spf=pass smtp.mailfrom=x@spammer.example; dmarc=fail header.from=bank.example\r\n",
        ),
        // The same verdict from a server we do not trust changes nothing.
        m(
            "untrusted",
            "Real Person <real@example.org>",
            "Quote",
            "Authentication-Results: mx.elsewhere.example; dmarc=fail header.from=example.org\r\n",
        ),
    ];
    d.deliver_many("alice", "INBOX", &all);
    let sink = SmtpSink::start();
    let pdir = TempDir::new("profile");
    let p = profile(
        &pdir,
        "manual_only",
        &format!(
            "acknowledgement:\n  max_per_domain_per_hour: 3\n  template: |\n    Hello {{customer_name}}, about {{subject}}: {forged} nothing.\n"
        ),
    );
    let s = maildir_setup(
        &d,
        p,
        &format!(
            "    trusted_authserv_ids: [MX.hottubman.ca]\n{}",
            smtp_block(sink.port(), "")
        ),
    );
    let (status, log) = s.run_once(&[]);
    assert!(status.success(), "{log}");
    std::thread::sleep(Duration::from_secs(1));
    let got = sink.messages();
    let mut rcpts: Vec<String> = got.iter().flat_map(|a| a.rcpt_to.clone()).collect();
    rcpts.sort();
    // Messages are taken in the Maildir's order: which three of bulk.example's five get
    // an answer is not fixed, that three do is.
    let bulk = rcpts
        .iter()
        .filter(|r| r.ends_with("@bulk.example"))
        .count();
    assert_eq!(bulk, 3, "{rcpts:?}\n{log}");
    let vic = rcpts
        .iter()
        .filter(|r| r.ends_with("@example.net") && r.starts_with("vic"))
        .count();
    assert_eq!(vic, 2, "victim@ and one of vic+1@/vic+2@/VIC@: {rcpts:?}");
    let gmail = rcpts.iter().filter(|r| r.contains("gmail.com")).count();
    assert_eq!(
        gmail, 1,
        "gee.mail@gmail.com and g.e.e.m.a.i.l+x@googlemail.com: {rcpts:?}"
    );
    rcpts.retain(|r| {
        !r.ends_with("@bulk.example") && !r.starts_with("vic") && !r.contains("gmail.com")
    });
    assert_eq!(
        rcpts,
        vec!["real@example.org"],
        "none for the failed DMARC; the untrusted header changes nothing:\n{log}"
    );
    let spam = got
        .iter()
        .find(|a| a.rcpt_to == ["victim@example.net"])
        .map(|a| {
            (
                a.header("To").unwrap_or_default(),
                a.header("Subject"),
                a.text(),
            )
        });
    let Some((to, subject, text)) = spam else {
        panic!("no acknowledgement to the victim: {got:#?}");
    };
    assert_eq!(
        to, "victim@example.net",
        "no display name chosen by the sender"
    );
    assert_eq!(subject.as_deref(), Some("Re: your message"));
    assert!(text.contains("Hello there, about your message:"), "{text}");
    for bad in ["pills", "555", "\u{202E}"] {
        assert!(
            !text.contains(bad) && !to.contains(bad),
            "{bad:?} reflected: {text}"
        );
    }
    assert!(
        log.contains("max_per_domain_per_hour"),
        "the cap is logged:\n{log}"
    );
}

#[test]
fn digest_is_sent_once_a_day_with_counts_and_escalations_over_authenticated_smtp() {
    let d = Dovecot::start(DovecotOptions::default());
    d.deliver_many(
        "alice",
        "INBOX",
        &[
            msg("dg-1", "Quote", "Could you send a quote for a new hot tub?"),
            msg("dg-2", "Cover", "I will call my lawyer."),
        ],
    );
    let sink = SmtpSink::start_with_auth("alerts@hottubman.ca", "s3cret-smtp");
    let pdir = TempDir::new("profile");
    let p = profile(
        &pdir,
        "keyword_only",
        "digest: {time: \"00:00\", members: [Mark Johnson]}\n",
    );
    let auth = ", user: alerts@hottubman.ca, password: {env: MT_SMTP_PASSWORD}";
    let s = maildir_setup(&d, p, &smtp_block(sink.port(), auth));
    let env = [("MT_SMTP_PASSWORD", "s3cret-smtp")];
    let (status, log) = s.run_once(&env);
    assert!(status.success(), "{log}");
    assert!(!log.contains("s3cret-smtp"), "the password reached the log");
    // Two alerts for the escalated message, and Mark's digest of the day (due at 00:00).
    let got = sink.wait_for(3, Duration::from_secs(10));
    let digests: Vec<&Received> = got
        .iter()
        .filter(|m| {
            m.header("Subject")
                .is_some_and(|s| s.starts_with("Hot Tub Man:"))
        })
        .collect();
    assert_eq!(digests.len(), 1, "{got:#?}\n{log}");
    assert_eq!(digests[0].rcpt_to, vec!["mark@hottubman.ca".to_string()]);
    assert_eq!(alerts_about(&got, "dg-2").len(), 2, "{log}");
    let (status, log) = s.run_once(&env);
    assert!(status.success(), "{log}");
    assert_eq!(
        sink.messages().len(),
        3,
        "a second digest on the same day:\n{log}"
    );
}

#[test]
fn a_wrong_smtp_password_keeps_alerts_queued_and_out_of_the_log() {
    let d = Dovecot::start(DovecotOptions::default());
    d.deliver(
        "alice",
        "INBOX",
        &msg("pw", "Cover", "I will call my lawyer."),
    );
    let sink = SmtpSink::start_with_auth("alerts@hottubman.ca", "right-password");
    let pdir = TempDir::new("profile");
    let auth = ", user: alerts@hottubman.ca, password: {env: MT_SMTP_PASSWORD}";
    let s = maildir_setup(
        &d,
        profile(&pdir, "keyword_only", ""),
        &smtp_block(sink.port(), auth),
    );
    let (status, log) = s.run_once(&[("MT_SMTP_PASSWORD", "wrong-password")]);
    assert!(status.success(), "{log}");
    assert!(log.contains("cannot send the alert"), "{log}");
    assert!(
        !log.contains("wrong-password"),
        "the password reached the log:\n{log}"
    );
    assert!(sink.messages().is_empty());
    // Fixed password: the queued alerts go out (authentication failures are retried).
    let (status, log) = s.run_once(&[("MT_SMTP_PASSWORD", "right-password")]);
    assert!(status.success(), "{log}");
    assert_eq!(
        alerts_about(&sink.wait_for(2, Duration::from_secs(10)), "pw").len(),
        2,
        "{log}"
    );
}

#[test]
fn sigkill_at_random_points_never_copies_twice_and_loses_no_alert() {
    let d = Dovecot::start(DovecotOptions::default());
    let originals: Vec<Vec<u8>> = (0..150)
        .map(|i| {
            msg_from(
                &format!("pat{i}@example.com"),
                &format!("kill-{i}"),
                &format!("Cover {i}"),
                "I will call my lawyer.",
            )
        })
        .collect();
    d.deliver_many("alice", "INBOX", &originals);
    let sink = SmtpSink::start();
    let pdir = TempDir::new("profile");
    let s = imap_setup(&d, profile(&pdir, "keyword_only", ""), sink.port(), "");
    // Deterministic "random" kill points between 30 ms and 600 ms.
    s.kill_repeatedly(&[PW], 8, 0x2545_f491_4f6c_dd1d, 30..600);
    let (status, log) = s.run_once(&[PW]);
    assert!(status.success(), "{log}");
    let contents = mailbox_contents(&d, "alice");
    assert!(contents.get("INBOX").is_none_or(Vec::is_empty), "{log}");
    let escalated = contents.get("ESCALATED").cloned().unwrap_or_default();
    assert_eq!(escalated.len(), originals.len(), "copies in ESCALATED");
    for o in &originals {
        let n = contents.values().flatten().filter(|m| &m.raw == o).count();
        assert_eq!(n, 2, "the original and exactly one copy");
    }
    for (folder, msgs) in &contents {
        for m in msgs {
            assert!(
                has(&m.flags, "\\Flagged") && has(&m.flags, "$Escalated"),
                "{folder}: {:?}",
                m.flags
            );
            assert!(!has(&m.flags, "\\Seen"), "{folder}");
        }
    }
    // No alert is lost. A kill between the server's acceptance and our record of it
    // resends that one alert (the documented at-least-once window): same Message-ID,
    // and at most one extra per kill.
    let got = sink.messages();
    let mut extra = 0;
    for i in 0..originals.len() {
        let alerts = alerts_about(&got, &format!("kill-{i}"));
        assert!(alerts.len() >= 2, "kill-{i}: {} alerts", alerts.len());
        let mut ids: Vec<String> = alerts
            .iter()
            .filter_map(|a| a.header("Message-ID"))
            .collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 2, "kill-{i}: resends keep their Message-ID");
        extra += alerts.len() - 2;
    }
    eprintln!("sigkill: {extra} alert(s) resent after 8 kills");
    assert!(extra <= 8, "{extra} resent alerts after 8 kills");
}

/// Regression: a deleted escalation folder stayed in the session's cache of known
/// folders, so every copy into it was refused until the daemon restarted.
#[test]
fn regression_escalation_folder_deleted_under_us_was_never_created_again() {
    let d = Dovecot::start(DovecotOptions::default());
    let sink = SmtpSink::start();
    let pdir = TempDir::new("profile");
    let s = imap_setup(&d, profile(&pdir, "keyword_only", ""), sink.port(), "");
    let daemon = s.start(&[PW]);
    assert!(daemon.wait_log("connected", Duration::from_secs(10)));
    d.deliver(
        "alice",
        "INBOX",
        &msg("esc-del1", "Cover", "I will call my lawyer."),
    );
    assert!(
        wait_count(&d, "alice", "ESCALATED", 1, Duration::from_secs(10)),
        "{}",
        daemon.log()
    );
    d.delete_folder("alice", "ESCALATED");
    d.deliver(
        "alice",
        "INBOX",
        &msg("esc-del2", "Cover", "I will call my lawyer."),
    );
    assert!(
        wait_count(&d, "alice", "ESCALATED", 1, Duration::from_secs(10)),
        "{}",
        daemon.log()
    );
    let copies = copies_of(&d, "esc-del2");
    assert!(copies.iter().any(|(f, _)| f == "ESCALATED"), "{copies:?}");
    assert!(d.messages("alice", "INBOX").is_empty(), "{}", daemon.log());
}

#[test]
fn alerts_go_out_over_implicit_tls_and_starttls_with_verified_certificates() {
    for mode in ["implicit", "starttls"] {
        let d = Dovecot::start(DovecotOptions::default());
        d.deliver(
            "alice",
            "INBOX",
            &msg(&format!("tls-{mode}"), "Cover", "I will call my lawyer."),
        );
        let sink = SmtpSink::start_tls(mode, "alerts@hottubman.ca", "tls-secret");
        let pdir = TempDir::new("profile");
        let host = if mode == "implicit" {
            "127.0.0.1"
        } else {
            "localhost"
        };
        let block = |ca: &str| {
            format!(
                "smtp: {{host: {host}, port: {}, tls: {mode}, user: alerts@hottubman.ca, password: {{env: MT_SMTP_PASSWORD}}, from: \"Triage <alerts@hottubman.ca>\"{ca}}}\n",
                sink.port()
            )
        };
        let profile = profile(&pdir, "keyword_only", "");
        let env = [("MT_SMTP_PASSWORD", "tls-secret")];
        // Unknown CA: refused, nothing sent, the alerts stay queued.
        let s = maildir_setup(&d, profile.clone(), &block(""));
        let (status, log) = s.run_once(&env);
        assert!(status.success(), "{mode}: {log}");
        assert!(log.contains("cannot send the alert"), "{mode}: {log}");
        assert!(
            log.contains("UnknownIssuer"),
            "{mode}: not a certificate refusal: {log}"
        );
        assert!(
            sink.messages().is_empty(),
            "{mode}: sent without a verified certificate"
        );
        // The CA trusted: the queued alerts go out, encrypted and authenticated.
        let ca = format!(", ca_file: {}", sink.ca_file().display());
        let cfg = fs::read_to_string(&s.config).expect("config");
        fs::write(&s.config, cfg.replace(&block(""), &block(&ca))).expect("config");
        let (status, log) = s.run_once(&env);
        assert!(status.success(), "{mode}: {log}");
        let got = sink.wait_for(2, Duration::from_secs(10));
        assert_eq!(
            alerts_about(&got, &format!("tls-{mode}")).len(),
            2,
            "{mode}: {log}"
        );
    }
}
