//! The Maildir backend on a tree Dovecot serves at the same time: Dovecot must list the
//! folders mailtriage created and find every message byte-identical, flags kept.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use super::daemon::{assert_exactly_once, backlog, message, root, wait_count, Setup};
use super::harness::{poll, Dovecot, DovecotOptions, TempDir};

#[test]
fn maildir_files_within_a_second_and_dovecot_sees_the_same_tree() {
    let d = Dovecot::start(DovecotOptions::default());
    let tree = d.maildir("alice");
    let mut originals = backlog(12, "md");
    d.deliver_many("alice", "INBOX", &originals);
    d.set_flags("alice", "INBOX", 1, "\\Flagged");
    let s = Setup::maildir(
        &tree,
        &root().join("profiles/clinic.yaml"),
        "    backfill: all\n",
    );
    let daemon = s.start(&[]);
    assert!(
        wait_count(&d, "alice", "INBOX", 0, Duration::from_secs(15)),
        "{}",
        daemon.log()
    );
    // New mail is noticed through filesystem events, well within a second.
    let fresh = message(
        "md-fresh",
        "Booking",
        "Could I book a Swedish massage with Sinéad on Friday?",
    );
    let start = Instant::now();
    d.deliver("alice", "INBOX", &fresh);
    let filed = poll(Duration::from_secs(5), || {
        d.messages("alice", "BOOKING/Sinéad O'Brien")
            .iter()
            .any(|m| m.raw == fresh)
            .then_some(start.elapsed())
    });
    let took = filed.unwrap_or_else(|| panic!("not filed:\n{}", daemon.log()));
    assert!(took < Duration::from_millis(1500), "took {took:?}");
    originals.push(fresh);
    assert_exactly_once(&d, "alice", &originals);
    let folders = d.folders("alice");
    assert!(
        folders.iter().any(|f| f == "BOOKING/Sinéad O'Brien"),
        "{folders:?}"
    );
    for (folder, msgs) in super::daemon::mailbox_contents(&d, "alice") {
        for m in msgs {
            assert!(
                !m.flags.iter().any(|f| f == "\\Seen"),
                "{folder}: marked seen"
            );
            if String::from_utf8_lossy(&m.raw).contains("<md-0@test.example>") {
                assert!(
                    m.flags.iter().any(|f| f == "\\Flagged"),
                    "flag kept: {:?}",
                    m.flags
                );
            }
        }
    }
}

#[test]
fn maildir_sigkill_loop_keeps_every_message_exactly_once() {
    let d = Dovecot::start(DovecotOptions::default());
    let tree = d.maildir("alice");
    let originals = backlog(600, "mdkill");
    d.deliver_many("alice", "INBOX", &originals);
    let s = Setup::maildir(
        &tree,
        &root().join("profiles/hottub.yaml"),
        "    backfill: all\n",
    );
    // Deterministic "random" kill points between 20 ms and 320 ms.
    s.kill_repeatedly(&[], 6, 0x2545_f491_4f6c_dd1d, 20..320);
    let (status, log) = s.run_once(&[]);
    assert!(status.success(), "{log}");
    assert_exactly_once(&d, "alice", &originals);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read dir") {
        let e = e.expect("entry");
        let p = e.path();
        if p.is_file() {
            std::fs::copy(&p, to.join(e.file_name())).expect("copy");
        }
    }
}

#[test]
fn the_demo_runs_with_no_configuration_and_files_the_samples() {
    let dir = TempDir::new("mt-demo");
    copy_dir(&root().join("profiles"), &dir.path().join("profiles"));
    copy_dir(&root().join("sample-mail"), &dir.path().join("sample-mail"));
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_mailtriage"))
            .args(["run", "--once"])
            .current_dir(dir.path())
            .env_remove("MAILTRIAGE_CONFIG")
            .output()
            .expect("runs")
    };
    let out = run();
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{log}");
    assert!(log.contains("running the demo"), "{log}");
    assert!(log.contains("60 decided"), "{log}");
    let count = |folder: &str| {
        std::fs::read_dir(dir.path().join("var/demo-mail").join(folder).join("cur"))
            .map(|r| r.count())
            .unwrap_or(0)
    };
    assert_eq!(count(".SALES.Mark Johnson"), 10);
    assert_eq!(count(".MANAGER.Mark Johnson"), 4);
    assert_eq!(count(".Newsletters"), 2);
    // Seeded once: a second run finds nothing new…
    let again = String::from_utf8_lossy(&run().stderr).into_owned();
    assert!(!again.contains("sync done"), "{again}");
    assert!(again.contains("mailtriage stopped decided=0"), "{again}");
    // …until a message is dropped into new/.
    std::fs::write(
        dir.path().join("var/demo-mail/new/1.dropped.demo"),
        message("dropped", "Quote", "A quote for a new hot tub please"),
    )
    .expect("drop");
    let third = String::from_utf8_lossy(&run().stderr).into_owned();
    assert!(third.contains("1 decided, 1 filed"), "{third}");
    assert_eq!(count(".SALES.Mark Johnson"), 11);
}
