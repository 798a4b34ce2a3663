//! The daemon against a real Dovecot over IMAP: every promise of the daemon issue, each
//! by a test that fails if it breaks.

use std::time::Duration;

use super::daemon::{assert_exactly_once, backlog, message, root, wait_count, Conf, Setup};
use super::harness::{imap_append, Dovecot, DovecotOptions};

const PW: (&str, &str) = ("MT_TEST_PASSWORD", "alicepw");

fn hottub() -> std::path::PathBuf {
    root().join("profiles/hottub.yaml")
}

fn setup(d: &Dovecot, extra: &str) -> Setup {
    Setup::imap(
        d,
        Conf {
            profile: hottub(),
            user: "alice",
            password_env: PW.0,
            extra,
        },
    )
}

#[test]
fn backlog_is_filed_byte_identical_with_flags_kept_and_never_seen() {
    let d = Dovecot::start(DovecotOptions::default());
    let mut originals = backlog(30, "bl");
    originals.push(b"From: list@example.com\r\nList-Id: <spa.lists.example.com>\r\nSubject: Newsletter\r\nMessage-ID: <nl@test.example>\r\n\r\nSpring sale on covers!\r\n".to_vec());
    d.deliver_many("alice", "INBOX", &originals);
    d.set_flags("alice", "INBOX", 1, "\\Flagged $Custom");
    d.set_flags("alice", "INBOX", 2, "\\Answered");
    let s = setup(&d, "    backfill: all\n");
    let (status, log) = s.run_once(&[PW]);
    assert!(status.success(), "{log}");
    let per_folder = assert_exactly_once(&d, "alice", &originals);
    assert_eq!(
        per_folder.get("INBOX"),
        None,
        "everything left the inbox: {per_folder:?}"
    );
    assert_eq!(per_folder.get("Newsletters"), Some(&1), "{per_folder:?}");
    for (folder, msgs) in super::daemon::mailbox_contents(&d, "alice") {
        for m in msgs {
            assert!(
                !m.flags.iter().any(|f| f == "\\Seen"),
                "{folder} uid {} was marked seen",
                m.uid
            );
            assert!(
                !m.flags.iter().any(|f| f == "\\Deleted"),
                "{folder} uid {} left \\Deleted",
                m.uid
            );
            let raw = String::from_utf8_lossy(&m.raw);
            if raw.contains("<bl-0@test.example>") {
                assert!(
                    m.flags.contains(&"\\Flagged".to_string())
                        && m.flags.contains(&"$Custom".to_string()),
                    "{:?}",
                    m.flags
                );
            }
            if raw.contains("<bl-1@test.example>") {
                assert!(m.flags.contains(&"\\Answered".to_string()), "{:?}", m.flags);
            }
        }
    }
}

#[test]
fn new_mail_during_idle_is_filed_and_mail_arriving_while_down_on_start() {
    let d = Dovecot::start(DovecotOptions::default());
    // First start without backfill: the old message stays untouched.
    let old = message("old", "Quote", "A quote for a new hot tub please");
    d.deliver("alice", "INBOX", &old);
    let s = setup(&d, "");
    let mut daemon = s.start(&[PW]);
    // Mail delivered before the first start is "old" (backfill: none): wait for it.
    assert!(
        daemon.wait_log("first start", Duration::from_secs(10)),
        "{}",
        daemon.log()
    );
    // Delivered by an MDA while idling, and appended by another client.
    let fresh = message("fresh", "Quote", "A quote for a new hot tub please");
    d.deliver("alice", "INBOX", &fresh);
    assert!(
        wait_count(
            &d,
            "alice",
            "SALES/Mark Johnson",
            1,
            Duration::from_secs(10)
        ),
        "{}",
        daemon.log()
    );
    imap_append(
        d.port(),
        "alice",
        "alicepw",
        "INBOX",
        &message("appended", "Heater", "The heater is broken, please repair"),
    );
    assert!(
        wait_count(
            &d,
            "alice",
            "SUPPORT/Sarah Williams",
            1,
            Duration::from_secs(10)
        ),
        "{}",
        daemon.log()
    );
    assert_eq!(
        daemon.term(Duration::from_secs(10)).map(|s| s.success()),
        Some(true),
        "SIGTERM exits 0"
    );
    // Mail that arrives while the daemon is down is filed on the next start.
    let while_down = backlog(5, "down");
    d.deliver_many("alice", "INBOX", &while_down);
    let (status, log) = s.run_once(&[PW]);
    assert!(status.success(), "{log}");
    let inbox = d.messages("alice", "INBOX");
    assert_eq!(inbox.len(), 1, "only the pre-existing message stays");
    assert_eq!(inbox[0].raw, old);
}

#[test]
fn polling_when_the_server_has_no_idle() {
    let d = Dovecot::start(DovecotOptions {
        without_idle: true,
        ..DovecotOptions::default()
    });
    let s = setup(&d, "    poll_interval: 1s\n");
    let daemon = s.start(&[PW]);
    assert!(
        daemon.wait_log("no IDLE; polling", Duration::from_secs(10)),
        "{}",
        daemon.log()
    );
    d.deliver(
        "alice",
        "INBOX",
        &message("p1", "Quote", "A quote for a new hot tub please"),
    );
    assert!(
        wait_count(
            &d,
            "alice",
            "SALES/Mark Johnson",
            1,
            Duration::from_secs(10)
        ),
        "{}",
        daemon.log()
    );
}

#[test]
fn explicit_poll_mode() {
    let d = Dovecot::start(DovecotOptions::default());
    let s = setup(
        &d,
        "    watch: poll\n    poll_interval: 1s\n    backfill: all\n",
    );
    let daemon = s.start(&[PW]);
    assert!(daemon.wait_log("connected", Duration::from_secs(10)));
    d.deliver(
        "alice",
        "INBOX",
        &message("p2", "Heater", "The heater is broken, please repair"),
    );
    assert!(
        wait_count(
            &d,
            "alice",
            "SUPPORT/Sarah Williams",
            1,
            Duration::from_secs(10)
        ),
        "{}",
        daemon.log()
    );
}

#[test]
fn member_names_non_ascii_apostrophe_dots_and_slash_make_safe_folders() {
    let d = Dovecot::start(DovecotOptions::default());
    let dir = super::harness::TempDir::new("mt-names");
    let profile = dir.path().join("names.yaml");
    std::fs::write(
        &profile,
        "business: {name: Names}\nteam:\n  - {name: \"Sinéad O'Brien\", email: sinead@example.org, roles: [owner]}\n  - {name: Dr. J. Smith, email: smith@example.org, roles: [support_lead]}\n  - {name: AC/DC Repairs, email: acdc@example.org, roles: [service_manager]}\n  - {name: \"Zoë *%Müller\", email: zoe@example.org, roles: [sales_manager]}\n",
    )
    .expect("profile");
    let mut originals = Vec::new();
    for (i, to) in [
        "sinead@example.org",
        "smith@example.org",
        "acdc@example.org",
        "zoe@example.org",
    ]
    .iter()
    .enumerate()
    {
        originals.push(format!("From: c@example.com\r\nTo: {to}\r\nSubject: hello\r\nMessage-ID: <n{i}@t>\r\n\r\nHello there\r\n").into_bytes());
    }
    d.deliver_many("alice", "INBOX", &originals);
    let s = Setup::imap(
        &d,
        Conf {
            profile,
            user: "alice",
            password_env: PW.0,
            extra: "    backfill: all\n",
        },
    );
    let (status, log) = s.run_once(&[PW]);
    assert!(status.success(), "{log}");
    let folders = d.folders("alice");
    for want in [
        "SUPPORT/Sinéad O'Brien",
        "SUPPORT/Dr J Smith",
        "SUPPORT/AC-DC Repairs",
        "SUPPORT/Zoë __Müller",
    ] {
        assert!(
            folders.iter().any(|f| f == want),
            "missing {want:?} in {folders:?}\n{log}"
        );
    }
    assert_exactly_once(&d, "alice", &originals);
}

#[test]
fn move_less_server_gets_copy_store_uid_expunge() {
    let d = Dovecot::start(DovecotOptions {
        without_move: true,
        ..DovecotOptions::default()
    });
    let originals = backlog(24, "nomove");
    d.deliver_many("alice", "INBOX", &originals);
    // A message the user marked \Deleted themselves must survive: no bare EXPUNGE.
    let keep = message("user-deleted", "Hours", "What are your opening hours?");
    d.deliver("alice", "Archive", &keep);
    d.set_flags("alice", "Archive", 1, "\\Deleted");
    let s = setup(&d, "    backfill: all\n");
    let (status, log) = s.run_once(&[PW]);
    assert!(status.success(), "{log}");
    let mut all = originals.clone();
    all.push(keep);
    let per_folder = assert_exactly_once(&d, "alice", &all);
    assert_eq!(per_folder.get("INBOX"), None, "{per_folder:?}");
}

#[test]
fn uidvalidity_change_rescans_without_refiling() {
    let d = Dovecot::start(DovecotOptions::default());
    let first = backlog(6, "uv1");
    let list = b"From: list@example.com\r\nList-Id: <l.example.com>\r\nSubject: digest\r\nMessage-ID: <uv-list@test.example>\r\n\r\nhi\r\n".to_vec();
    d.deliver_many("alice", "INBOX", &first);
    d.deliver("alice", "INBOX", &list);
    // Lists stay in the inbox with this profile.
    let dir = super::harness::TempDir::new("mt-uv");
    let profile = dir.path().join("p.yaml");
    let text = std::fs::read_to_string(hottub())
        .expect("profile")
        .replace("lists: {folder: Newsletters}", "lists: leave");
    std::fs::write(&profile, text).expect("write profile");
    let s = Setup::imap(
        &d,
        Conf {
            profile,
            user: "alice",
            password_env: PW.0,
            extra: "    backfill: all\n",
        },
    );
    assert!(s.run_once(&[PW]).0.success(), "{}", s.log_text());
    // A person moves a filed message back to the inbox (a second copy, same Message-ID).
    d.deliver("alice", "INBOX", &first[0]);
    d.change_uidvalidity("alice", "INBOX");
    let late = message("uv-late", "Quote", "A quote for a new hot tub please");
    d.deliver("alice", "INBOX", &late);
    let (status, log) = s.run_once(&[PW]);
    assert!(status.success(), "{log}");
    assert!(log.contains("UIDVALIDITY changed"), "{log}");
    let inbox: Vec<Vec<u8>> = d
        .messages("alice", "INBOX")
        .into_iter()
        .map(|m| m.raw)
        .collect();
    assert!(
        inbox.contains(&list),
        "the list message is not triaged again"
    );
    assert!(
        inbox.contains(&first[0]),
        "a message moved back by a person is left alone"
    );
    assert_eq!(inbox.len(), 2, "the late message was filed");
    assert_eq!(
        d.messages("alice", "SALES/Mark Johnson")
            .iter()
            .filter(|m| m.raw == late)
            .count(),
        1
    );
}

#[test]
fn a_destination_deleted_under_us_is_created_again() {
    let d = Dovecot::start(DovecotOptions::default());
    let s = setup(&d, "    backfill: all\n");
    let daemon = s.start(&[PW]);
    assert!(daemon.wait_log("connected", Duration::from_secs(10)));
    d.deliver(
        "alice",
        "INBOX",
        &message("del1", "Quote", "A quote for a new hot tub please"),
    );
    assert!(
        wait_count(
            &d,
            "alice",
            "SALES/Mark Johnson",
            1,
            Duration::from_secs(10)
        ),
        "{}",
        daemon.log()
    );
    d.delete_folder("alice", "SALES/Mark Johnson");
    d.deliver(
        "alice",
        "INBOX",
        &message("del2", "Quote", "Another quote for a new hot tub please"),
    );
    assert!(
        wait_count(
            &d,
            "alice",
            "SALES/Mark Johnson",
            1,
            Duration::from_secs(10)
        ),
        "{}",
        daemon.log()
    );
    assert!(d.messages("alice", "INBOX").is_empty());
}

#[test]
fn dovecot_restart_mid_run_is_survived() {
    let mut d = Dovecot::start(DovecotOptions::default());
    let s = setup(&d, "    poll_interval: 2s\n    backfill: all\n");
    let daemon = s.start(&[PW]);
    assert!(daemon.wait_log("connected", Duration::from_secs(10)));
    let before = backlog(10, "rs1");
    d.deliver_many("alice", "INBOX", &before);
    d.restart();
    let after = backlog(10, "rs2");
    d.deliver_many("alice", "INBOX", &after);
    assert!(
        wait_count(&d, "alice", "INBOX", 0, Duration::from_secs(30)),
        "{}",
        daemon.log()
    );
    let mut all = before;
    all.extend(after);
    assert_exactly_once(&d, "alice", &all);
    assert!(daemon.log().contains("reconnecting in"), "{}", daemon.log());
}

#[test]
fn wrong_password_gives_a_clear_error_and_backs_off() {
    let d = Dovecot::start(DovecotOptions::default());
    let s = setup(&d, "");
    let mut daemon = s.start(&[(PW.0, "not-the-password")]);
    assert!(
        daemon.wait_log("login refused for alice", Duration::from_secs(10)),
        "{}",
        daemon.log()
    );
    std::thread::sleep(Duration::from_secs(3));
    assert!(daemon.running(), "no crash");
    let log = daemon.log();
    assert_eq!(
        log.matches("login refused").count(),
        1,
        "backs off instead of hammering:\n{log}"
    );
    assert!(
        log.contains("check the account's user and password") && log.contains("retrying in"),
        "{log}"
    );
    assert!(
        !log.contains("not-the-password"),
        "the password never appears in logs"
    );
    assert_eq!(
        daemon.term(Duration::from_secs(10)).map(|s| s.success()),
        Some(true)
    );
    // --once reports the failure with a non-zero exit.
    let (status, log) = s.run_once(&[(PW.0, "still-wrong")]);
    assert!(!status.success() && log.contains("login refused"), "{log}");
}

#[test]
fn a_second_daemon_on_the_same_state_refuses_to_start() {
    let d = Dovecot::start(DovecotOptions::default());
    let s = setup(&d, "");
    let daemon = s.start(&[PW]);
    assert!(daemon.wait_log("connected", Duration::from_secs(10)));
    let (status, log) = s.run_once(&[PW]);
    assert!(!status.success());
    assert!(
        log.contains("another mailtriage is already running"),
        "{log}"
    );
}

#[test]
fn dry_run_decides_and_records_but_never_moves() {
    let d = Dovecot::start(DovecotOptions::default());
    let originals = backlog(6, "dry");
    d.deliver_many("alice", "INBOX", &originals);
    let s = setup(&d, "    backfill: all\n    dry_run: true\n");
    let (status, log) = s.run_once(&[PW]);
    assert!(status.success(), "{log}");
    assert!(log.contains("[dry run]"), "{log}");
    assert_eq!(d.messages("alice", "INBOX").len(), 6, "nothing moved");
    assert_eq!(
        d.folders("alice"),
        vec!["INBOX".to_string()],
        "no folders created"
    );
    // The CLI flag does the same for a normal account.
    let s2 = setup(&d, "    backfill: all\n");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mailtriage"))
        .args(["run", "--once", "--dry-run", "--config"])
        .arg(&s2.config)
        .env(PW.0, PW.1)
        .output()
        .expect("runs");
    assert!(out.status.success());
    assert_eq!(
        d.messages("alice", "INBOX").len(),
        6,
        "nothing moved with --dry-run"
    );
}

#[test]
fn sigkill_at_random_points_loses_and_duplicates_nothing() {
    let d = Dovecot::start(DovecotOptions::default());
    let originals = backlog(2000, "kill");
    d.deliver_many("alice", "INBOX", &originals);
    let s = setup(&d, "    backfill: all\n");
    // Deterministic "random" kill points between 30 ms and 600 ms.
    s.kill_repeatedly(&[PW], 8, 0x9e37_79b9_7f4a_7c15, 30..600);
    let (status, log) = s.run_once(&[PW]);
    assert!(status.success(), "{log}");
    assert_exactly_once(&d, "alice", &originals);
    assert!(d.messages("alice", "INBOX").is_empty());
}

/// A large backlog is filed on a second session while the first one keeps fetching; a
/// server that refuses the extra connection gets everything filed all the same, on the
/// first session.
#[test]
fn a_large_backlog_uses_a_second_session_and_does_without_one() {
    for (extra, second) in [("", true), ("mail_max_userip_connections = 1\n", false)] {
        let d = Dovecot::start(DovecotOptions {
            extra_config: extra.to_string(),
            ..DovecotOptions::default()
        });
        let originals = backlog(1200, "two");
        d.deliver_many("alice", "INBOX", &originals);
        d.set_flags("alice", "INBOX", 7, "\\Flagged");
        let logins_before = d.log().matches("Login: user=<alice>").count();
        let s = setup(&d, "    backfill: all\n");
        let (status, log) = s.run_once(&[PW]);
        assert!(status.success(), "{log}");
        let per_folder = assert_exactly_once(&d, "alice", &originals);
        assert_eq!(per_folder.get("INBOX"), None, "{per_folder:?}");
        let flagged: Vec<_> = super::daemon::mailbox_contents(&d, "alice")
            .into_values()
            .flatten()
            // URGENT mail is flagged by its escalation ($Escalated); count the user's flag.
            .filter(|m| {
                m.flags.iter().any(|f| f == "\\Flagged")
                    && !m.flags.iter().any(|f| f == "$Escalated")
            })
            .collect();
        assert_eq!(flagged.len(), 1, "the flag travelled with the move");
        let dovecot_log = d.log();
        let logins = dovecot_log.matches("Login: user=<alice>").count() - logins_before;
        // A refused login is logged as a disconnect, not a login.
        assert_eq!(
            logins,
            if second { 2 } else { 1 },
            "one session per folder, plus one for the backlog when allowed ({extra:?}):\n{dovecot_log}"
        );
        let refused = dovecot_log.contains("Maximum number of connections from user+IP exceeded");
        assert_eq!(refused, !second, "{dovecot_log}");
        assert_eq!(
            log.contains("no second session for the backlog"),
            !second,
            "{log}"
        );
    }
}

/// A message without a Message-ID whose headers are `Subject: Order` and the rest fixed.
fn order(body: &str) -> Vec<u8> {
    format!(
        "From: Pat Customer <pat@example.com>\r\nTo: info@hottubman.ca\r\nSubject: Order\r\nDate: Mon, 2 Mar 2026 10:00:00 -0500\r\n\r\nA quote for a new hot tub please, order {body}\r\n"
    )
    .into_bytes()
}

/// Regression (issue 17): in a burst, messages sharing a Message-ID with another one, or
/// having none and the same header, were skipped as "already decided earlier" by the
/// daemon while `run --once` filed them. Now both file every distinct message, and both
/// leave a true copy of one already filed where it is.
#[test]
fn lookalikes_are_filed_and_a_true_copy_left_alike_by_the_daemon_and_once() {
    let twin_a = message("twin", "Quote", "A quote for a new hot tub please.");
    let twin_b = message("twin", "Quote", "A quote for two new hot tubs please.");
    let set = [
        twin_a.clone(),
        twin_b,
        order("1001"),
        order("1002"),
        twin_a.clone(),
    ];
    let filed_once = |d: &Dovecot| {
        let inbox = d.messages("alice", "INBOX");
        assert_eq!(inbox.len(), 1, "only the copy stays");
        assert_eq!(inbox[0].raw, twin_a);
        let sales = d.messages("alice", "SALES/Mark Johnson");
        let mut got: Vec<&[u8]> = sales.iter().map(|m| m.raw.as_slice()).collect();
        got.sort();
        let mut want: Vec<&[u8]> = set[..4].iter().map(Vec::as_slice).collect();
        want.sort();
        assert_eq!(got, want, "each distinct message filed once");
    };
    // All in one batch.
    let d = Dovecot::start(DovecotOptions::default());
    d.deliver_many("alice", "INBOX", &set);
    let s = setup(&d, "    backfill: all\n");
    let (status, log) = s.run_once(&[PW]);
    assert!(status.success(), "{log}");
    filed_once(&d);
    assert!(
        log.contains("another copy of a message decided just now"),
        "{log}"
    );
    // One at a time, to the daemon.
    let d = Dovecot::start(DovecotOptions::default());
    let s = setup(&d, "");
    let daemon = s.start(&[PW]);
    assert!(daemon.wait_log("first start", Duration::from_secs(10)));
    for (i, m) in set.iter().enumerate() {
        d.deliver("alice", "INBOX", m);
        let settled = super::harness::poll(Duration::from_secs(10), || {
            let decided = daemon.log().matches(" → ").count()
                + daemon.log().matches("already decided earlier").count();
            (decided > i).then_some(())
        });
        assert!(settled.is_some(), "message {i}:\n{}", daemon.log());
        assert!(wait_count(
            &d,
            "alice",
            "SALES/Mark Johnson",
            i.min(3) + 1,
            Duration::from_secs(10)
        ));
    }
    filed_once(&d);
    assert!(
        daemon.log().contains("already decided earlier"),
        "{}",
        daemon.log()
    );
}

/// Issue 17: `run --once` exits non-zero when mail it decided could not be filed, and
/// says why and what to change; the daemon reports a refusal that repeats as one error
/// per interval, not one line per sync and message group.
#[test]
fn refusals_fail_once_and_are_reported_once_per_interval() {
    let acl = "mail_plugins = $mail_plugins acl\nprotocol imap {\n  mail_plugins = $mail_plugins imap_acl\n}\nplugin {\n  acl = vfile:{dir}/acl.global\n}\n";
    let d = Dovecot::start(DovecotOptions {
        extra_config: acl.to_string(),
        ..DovecotOptions::default()
    });
    // No inserting into SALES/*.
    std::fs::write(d.dir().join("acl.global"), "SALES/* owner lrwstexa\n").expect("acl");
    d.create_folder("alice", "SALES/Mark Johnson");
    let quotes: Vec<Vec<u8>> = (0..3)
        .map(|i| {
            message(
                &format!("q{i}"),
                "Quote",
                "A quote for a new hot tub please",
            )
        })
        .collect();
    d.deliver_many("alice", "INBOX", &quotes);
    let s = setup(&d, "    backfill: all\n    poll_interval: 1s\n");
    let (status, log) = s.run_once(&[PW]);
    assert!(!status.success(), "decided but not filed must fail: {log}");
    let last = log.lines().last().unwrap_or_default();
    assert!(
        last.contains("3 message(s) could not be filed into SALES/Mark Johnson")
            && last.contains("stay in INBOX")
            && last.contains("NOPERM")
            && last.contains("routing.folder"),
        "{last}"
    );
    assert_eq!(d.messages("alice", "INBOX").len(), 3, "nothing lost");
    // The daemon retries every poll; the error is said once.
    let daemon = s.start(&[PW]);
    let retried = super::harness::poll(Duration::from_secs(20), || {
        (daemon.log().matches("the server refused again").count() >= 2).then_some(())
    });
    assert!(retried.is_some(), "{}", daemon.log());
    let errors = daemon
        .log()
        .lines()
        .filter(|l| l.contains("ERROR") && l.contains("the server refused to file"))
        .count();
    // One from the --once run above (same log file), one from the daemon.
    assert_eq!(errors, 2, "{}", daemon.log());
}

/// Issue 17: a server with an `INBOX.` namespace that does not say so (no NAMESPACE
/// capability) still gets every folder inside INBOX: a refused top-level CREATE makes
/// the daemon try there, once, and keep to it.
#[test]
fn a_prefixed_server_without_namespace_gets_its_folders_under_inbox() {
    let d = Dovecot::start(DovecotOptions {
        separator: '.',
        prefix: "INBOX.".into(),
        without_namespace: true,
        ..DovecotOptions::default()
    });
    let originals = backlog(6, "nons");
    d.deliver_many("alice", "INBOX", &originals);
    let s = setup(&d, "    backfill: all\n");
    let (status, log) = s.run_once(&[PW]);
    assert!(status.success(), "{log}");
    let per_folder = assert_exactly_once(&d, "alice", &originals);
    assert_eq!(per_folder.get("INBOX"), None, "{per_folder:?}");
    assert!(
        per_folder.contains_key("INBOX.SALES.Mark Johnson"),
        "{per_folder:?}"
    );
    assert!(log.contains("creating folders under INBOX."), "{log}");
    assert_eq!(
        log.matches("creating folders under INBOX.").count(),
        1,
        "learned once: {log}"
    );
}
