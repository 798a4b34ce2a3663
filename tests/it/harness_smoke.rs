//! Tests of the harness itself: if these fail, nothing built on the harness can be trusted.

use crate::harness::{
    free_port, imap_append, imap_command, mutf7, run, Dovecot, DovecotOptions, ImapClient,
    POST_LOGIN_CAPABILITIES,
};
use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

fn start() -> Dovecot {
    Dovecot::start(DovecotOptions::default())
}

/// The words of the first `* CAPABILITY` line after LOGIN in a transcript.
fn post_login_caps(transcript: &str) -> BTreeSet<String> {
    let line = transcript
        .lines()
        .skip_while(|l| !l.contains(" OK ") || !l.contains("Logged in"))
        .find(|l| l.starts_with("S: * CAPABILITY "))
        .unwrap_or_else(|| panic!("no post-login CAPABILITY in:\n{transcript}"));
    line["S: * CAPABILITY ".len()..]
        .split(' ')
        .map(String::from)
        .collect()
}

fn caps(words: &str) -> BTreeSet<String> {
    words.split(' ').map(String::from).collect()
}

/// Messages that are easy to mangle: line endings, 8-bit, no final newline, and
/// bytes that look like doveadm's record separator.
fn tricky_messages() -> Vec<Vec<u8>> {
    vec![
        b"Subject: crlf\r\nFrom: a@example.com\r\n\r\nline one\r\nline two\r\n".to_vec(),
        b"Subject: lf\nFrom: b@example.com\n\nline one\nline two\n".to_vec(),
        b"Subject: mixed\r\n\r\ncrlf\r\nlf\nbare cr\rend".to_vec(),
        b"Subject: =?utf-8?q?8bit?=\n\nLatin-1 \xe9\xe8 and UTF-8 \xc3\xa9 and \xff\xfe raw\n"
            .to_vec(),
        b"Subject: no final newline\r\n\r\nlast line without CRLF".to_vec(),
        b"Subject: separator lookalike\n\nbody\x0c\nuid: 99\nflags: \\Seen\n\x0c\n".to_vec(),
        b"Subject: empty body\r\n\r\n".to_vec(),
    ]
}

#[test]
fn start_and_login() {
    let t = Instant::now();
    let dc = start();
    eprintln!("start: {:?}", t.elapsed());
    let transcript = imap_command(dc.port(), "alice", "alicepw", &["SELECT INBOX"]);
    assert!(
        transcript.contains("S: t1 OK"),
        "LOGIN failed:\n{transcript}"
    );
    assert!(transcript.contains("S: * 0 EXISTS"), "{transcript}");
    let bob = imap_command(dc.port(), "bob", "wrong", &[]);
    assert!(bob.contains("S: t1 NO [AUTHENTICATIONFAILED]"), "{bob}");
    assert!(dc.log().contains("starting up for imap"), "{}", dc.log());
    assert!(
        dc.maildir("alice").is_dir(),
        "LOGIN + SELECT should have made alice's Maildir"
    );
    assert!(dc.dir().join("dovecot.conf").is_file());
    assert_eq!((dc.tls_port(), dc.ca_file()), (None, None));
}

#[test]
fn deliver_reads_back_byte_identical() {
    let dc = start();
    let raws = tricky_messages();
    for (folder, user) in [("INBOX", "alice"), ("Triage/Zoë Müller", "bob")] {
        for raw in &raws {
            dc.deliver(user, folder, raw);
        }
        let stored = dc.messages(user, folder);
        let uids: Vec<u32> = stored.iter().map(|m| m.uid).collect();
        assert_eq!(
            uids,
            (1..=raws.len() as u32).collect::<Vec<_>>(),
            "{user}/{folder}"
        );
        for (m, raw) in stored.iter().zip(&raws) {
            assert_eq!(
                m.raw,
                *raw,
                "uid {}: {:?}",
                m.uid,
                String::from_utf8_lossy(&m.raw)
            );
            assert!(m.flags.is_empty(), "{:?}", m.flags);
        }
    }
    assert!(dc.folders("bob").contains(&"Triage/Zoë Müller".to_string()));
    // IMAP clients see them too (with CRLF line endings, as IMAP requires).
    let transcript = imap_command(
        dc.port(),
        "alice",
        "alicepw",
        &["SELECT INBOX", "FETCH 5 BODY.PEEK[TEXT]"],
    );
    assert!(
        transcript.contains(&format!("S: * {} EXISTS", raws.len())),
        "{transcript}"
    );
    assert!(
        transcript.contains("last line without CRLF)"),
        "{transcript}"
    );
}

#[test]
fn save_via_doveadm_stores_lf_line_endings() {
    // Why `deliver` writes Maildir files itself: Dovecot's own saving normalises.
    let dc = start();
    dc.save_via_doveadm("alice", "Saved", b"Subject: s\r\n\r\nbody\r\nend");
    let stored = dc.messages("alice", "Saved");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].raw, b"Subject: s\n\nbody\nend");
}

#[test]
fn deliver_many_is_fast_and_in_uid_order() {
    let dc = start();
    let raws: Vec<Vec<u8>> = (0..2000)
        .map(|i| {
            format!("Message-ID: <{i}@bulk>\r\nSubject: bulk {i}\r\n\r\nbody {i}\r\n").into_bytes()
        })
        .collect();
    let t = Instant::now();
    dc.deliver_many("alice", "INBOX", &raws);
    let delivered = t.elapsed();
    let t = Instant::now();
    let stored = dc.messages("alice", "INBOX");
    let read = t.elapsed();
    eprintln!("deliver_many 2000: {delivered:?}; messages(): {read:?}");
    assert!(
        delivered < Duration::from_secs(10),
        "deliver_many 2000 took {delivered:?}"
    );
    assert_eq!(stored.len(), 2000);
    for (i, (m, raw)) in stored.iter().zip(&raws).enumerate() {
        assert_eq!(m.uid, i as u32 + 1);
        assert_eq!(m.raw, *raw, "uid {}", m.uid);
    }
    // A second batch goes after the first; IMAP sees all of them.
    dc.deliver_many("alice", "INBOX", &raws[..3]);
    let stored = dc.messages("alice", "INBOX");
    assert_eq!(
        (stored.len(), stored[2002].uid, &stored[2002].raw),
        (2003, 2003, &raws[2])
    );
    let transcript = imap_command(dc.port(), "alice", "alicepw", &["SELECT INBOX"]);
    assert!(transcript.contains("S: * 2003 EXISTS"), "{transcript}");
}

#[test]
fn flags_and_folders() {
    let dc = start();
    dc.deliver("alice", "INBOX", b"Subject: one\r\n\r\n1\r\n");
    dc.deliver("alice", "INBOX", b"Subject: two\r\n\r\n2\r\n");
    dc.set_flags("alice", "INBOX", 2, "\\Seen $Label1");
    let flags: Vec<Vec<String>> = dc
        .messages("alice", "INBOX")
        .into_iter()
        .map(|m| m.flags)
        .collect();
    assert_eq!(
        flags,
        vec![vec![], vec!["\\Seen".to_string(), "$Label1".to_string()]]
    );

    assert_eq!(dc.folders("alice"), vec!["INBOX"]);
    dc.create_folder("alice", "Projects/2024/Q1");
    dc.create_folder("alice", "Triage");
    // Parents made implicitly are \Noselect and not listed.
    assert_eq!(
        dc.folders("alice"),
        vec!["INBOX", "Projects/2024/Q1", "Triage"]
    );
    dc.deliver("alice", "Triage", b"Subject: t\r\n\r\nt\r\n");
    dc.delete_folder("alice", "Triage");
    assert_eq!(dc.folders("alice"), vec!["INBOX", "Projects/2024/Q1"]);
    // Delivering to a deleted folder makes it again, empty but for the new message.
    dc.deliver("alice", "Triage", b"Subject: t2\r\n\r\nt2\r\n");
    assert_eq!(dc.messages("alice", "Triage").len(), 1);
    // A user who never logged in: delivering makes their Maildir.
    assert!(!dc.maildir("bob").exists());
    dc.deliver("bob", "INBOX", b"Subject: first\r\n\r\nmail\r\n");
    assert_eq!(dc.messages("bob", "INBOX").len(), 1);
    assert_eq!(dc.folders("bob"), vec!["INBOX"], "users are isolated");
}

#[test]
fn dot_separator() {
    let dc = Dovecot::start(DovecotOptions {
        separator: '.',
        ..Default::default()
    });
    dc.create_folder("alice", "Team.Alice");
    dc.deliver("alice", "Team.Bob", b"Subject: x\r\n\r\nx\r\n");
    assert_eq!(dc.folders("alice"), vec!["INBOX", "Team.Alice", "Team.Bob"]);
    let transcript = imap_command(dc.port(), "alice", "alicepw", &["LIST \"\" \"\""]);
    assert!(
        transcript.contains("S: * LIST (\\Noselect) \".\" \"\""),
        "{transcript}"
    );
}

#[test]
fn change_uidvalidity_changes_it() {
    let dc = start();
    dc.deliver("alice", "INBOX", b"Subject: v\r\n\r\nv\r\n");
    let before = dc.uidvalidity("alice", "INBOX");
    dc.change_uidvalidity("alice", "INBOX");
    let after = dc.uidvalidity("alice", "INBOX");
    assert_ne!(before, after);
    let transcript = imap_command(
        dc.port(),
        "alice",
        "alicepw",
        &["STATUS INBOX (UIDVALIDITY MESSAGES)"],
    );
    assert!(
        transcript.contains(&format!(" UIDVALIDITY {after})")),
        "{transcript}"
    );
}

#[test]
fn restart_keeps_data_and_port() {
    let mut dc = start();
    let port = dc.port();
    dc.deliver("alice", "INBOX", b"Subject: survives\r\n\r\nrestart\r\n");
    let mut client = ImapClient::connect(port);
    assert!(client.login("alice", "alicepw").contains(" OK"));
    client.command("SELECT INBOX");

    let t = Instant::now();
    dc.restart();
    eprintln!("restart: {:?}", t.elapsed());
    // The old session was told and dropped, like a real server restart.
    assert!(
        client
            .read_line(Duration::from_secs(5))
            .is_some_and(|l| l.starts_with("* BYE")),
        "{}",
        client.transcript()
    );
    assert_eq!(dc.port(), port);
    assert_eq!(
        dc.messages("alice", "INBOX")[0].raw,
        b"Subject: survives\r\n\r\nrestart\r\n"
    );
    let transcript = imap_command(port, "alice", "alicepw", &["SELECT INBOX"]);
    assert!(transcript.contains("S: * 1 EXISTS"), "{transcript}");

    let t = Instant::now();
    dc.stop();
    eprintln!("stop: {:?}", t.elapsed());
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "port still open after stop()"
    );
    dc.restart();
    assert_eq!(dc.messages("alice", "INBOX").len(), 1);
}

#[test]
fn capabilities_default_without_move_without_idle() {
    let cases = [
        (DovecotOptions::default(), None),
        (
            DovecotOptions {
                without_move: true,
                ..Default::default()
            },
            Some("MOVE"),
        ),
        (
            DovecotOptions {
                without_idle: true,
                ..Default::default()
            },
            Some("IDLE"),
        ),
    ];
    for (opts, dropped) in cases {
        let dc = Dovecot::start(opts);
        let transcript = imap_command(dc.port(), "alice", "alicepw", &["CAPABILITY"]);
        let mut expected = caps(POST_LOGIN_CAPABILITIES);
        if let Some(word) = dropped {
            expected.remove(word);
        }
        assert_eq!(post_login_caps(&transcript), expected, "{transcript}");
        // Nothing advertised twice (Dovecot appends some capabilities dynamically).
        let line = transcript
            .lines()
            .rfind(|l| l.starts_with("S: * CAPABILITY"))
            .unwrap();
        assert_eq!(line.split(' ').count() - 3, expected.len(), "{line}");
    }
}

#[test]
fn tls_implicit_and_starttls_verify_against_test_ca() {
    let dc = Dovecot::start(DovecotOptions {
        tls: true,
        ..Default::default()
    });
    let (tls_port, ca) = (dc.tls_port().unwrap(), dc.ca_file().unwrap());
    let s_client = |extra: &[&str], port: u16, with_ca: bool| {
        let mut cmd = Command::new("openssl");
        cmd.args([
            "s_client",
            "-brief",
            "-verify_return_error",
            "-verify_hostname",
            "localhost",
        ]);
        cmd.arg("-connect")
            .arg(format!("127.0.0.1:{port}"))
            .args(extra);
        if with_ca {
            cmd.arg("-CAfile").arg(&ca);
        }
        let out = run(cmd, Some(b"a LOGOUT\r\n"), Duration::from_secs(20)).unwrap();
        (
            out.status.success(),
            format!("{}{}", String::from_utf8_lossy(&out.stdout), out.stderr),
        )
    };
    let (ok, out) = s_client(&[], tls_port, true);
    assert!(
        ok && out.contains("Verification: OK"),
        "implicit TLS:\n{out}\n{}",
        dc.log()
    );
    let (ok, out) = s_client(&["-starttls", "imap"], dc.port(), true);
    assert!(
        ok && out.contains("Verification: OK"),
        "STARTTLS:\n{out}\n{}",
        dc.log()
    );
    let (ok, out) = s_client(&[], tls_port, false);
    assert!(!ok, "verification must fail without the test CA:\n{out}");

    let transcript = imap_command(dc.port(), "alice", "alicepw", &[]);
    let greeting = transcript.lines().next().unwrap();
    assert!(greeting.contains(" STARTTLS"), "{greeting}");
    assert!(
        transcript.contains("S: t1 OK"),
        "plaintext LOGIN still works:\n{transcript}"
    );
}

#[test]
fn several_dovecots_in_parallel() {
    let dcs: Vec<Dovecot> = std::thread::scope(|s| {
        let starts: Vec<_> = (0..3).map(|_| s.spawn(start)).collect();
        starts.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ports: BTreeSet<u16> = dcs.iter().map(|d| d.port()).collect();
    assert_eq!(ports.len(), 3);
    for (i, dc) in dcs.iter().enumerate() {
        dc.deliver(
            "alice",
            "INBOX",
            format!("Subject: instance {i}\r\n\r\n").as_bytes(),
        );
    }
    for (i, dc) in dcs.iter().enumerate() {
        let stored = dc.messages("alice", "INBOX");
        assert_eq!(stored.len(), 1);
        assert_eq!(
            stored[0].raw,
            format!("Subject: instance {i}\r\n\r\n").into_bytes()
        );
    }
}

#[test]
fn idle_sees_append_and_deliver() {
    let dc = start();
    let mut idler = ImapClient::connect(dc.port());
    assert!(idler.login("alice", "alicepw").contains(" OK"));
    idler.command("SELECT INBOX");
    let tag = idler.send_command("IDLE");
    idler.wait_for(Duration::from_secs(5), |l| l.starts_with('+'));

    let uid = imap_append(
        dc.port(),
        "alice",
        "alicepw",
        "INBOX",
        b"Subject: pushed\r\n\r\nhi\r\n",
    );
    assert_eq!(uid, 1);
    // Dovecot re-checks the mailbox ~0.5 s after a change, on purpose.
    idler.wait_for(Duration::from_secs(5), |l| l == "* 1 EXISTS");
    dc.deliver("alice", "INBOX", b"Subject: delivered\r\n\r\nhi\r\n");
    idler.wait_for(Duration::from_secs(5), |l| l == "* 2 EXISTS");
    idler.send_line("DONE");
    let done = idler.read_until_tagged(&tag);
    assert!(
        done.contains(&format!("{tag} OK")),
        "{}",
        idler.transcript()
    );

    // APPEND into a folder with a non-ASCII name (sent as modified UTF-7).
    dc.create_folder("alice", "Triage/Zoë");
    imap_append(
        dc.port(),
        "alice",
        "alicepw",
        "Triage/Zoë",
        b"Subject: z\r\n\r\nz\r\n",
    );
    assert_eq!(dc.messages("alice", "Triage/Zoë").len(), 1);
}

#[test]
fn set_password_takes_effect() {
    let dc = start();
    dc.set_password("alice", "newsecret");
    let old = imap_command(dc.port(), "alice", "alicepw", &[]);
    assert!(old.contains("S: t1 NO"), "{old}");
    let new = imap_command(dc.port(), "alice", "newsecret", &[]);
    assert!(new.contains("S: t1 OK"), "{new}");
    // Twice within the same second, same length: still noticed.
    dc.set_password("alice", "newsecreT");
    assert!(imap_command(dc.port(), "alice", "newsecret", &[]).contains("S: t1 NO"));
    dc.set_password("carol", "carolpw");
    assert!(imap_command(dc.port(), "carol", "carolpw", &[]).contains("S: t1 OK"));
}

#[test]
fn mutf7_and_free_port() {
    assert_eq!(mutf7("Zoë Müller"), "Zo&AOs- M&APw-ller");
    assert_eq!(mutf7("Sinéad O'Brien"), "Sin&AOk-ad O'Brien");
    assert_eq!(mutf7("R&D/日本語"), "R&-D/&ZeVnLIqe-");
    assert_eq!(mutf7("plain/ascii"), "plain/ascii");
    let (a, b) = (free_port(), free_port());
    assert_ne!(a, b);
}

/// Timings for the report: `cargo test --test it -- --ignored --nocapture bulk_timings`.
#[test]
#[ignore = "benchmark, run by hand"]
fn bulk_timings() {
    let t = Instant::now();
    let dc = start();
    eprintln!("start: {:?}", t.elapsed());
    let raws: Vec<Vec<u8>> = (0..5000)
        .map(|i| format!("Subject: bulk {i}\r\n\r\n{}\r\n", "x".repeat(2000)).into_bytes())
        .collect();
    let t = Instant::now();
    dc.deliver_many("alice", "INBOX", &raws);
    eprintln!("deliver_many 5000: {:?}", t.elapsed());
    let t = Instant::now();
    assert_eq!(dc.messages("alice", "INBOX").len(), 5000);
    eprintln!("messages() 5000: {:?}", t.elapsed());
    let t = Instant::now();
    for raw in &raws[..50] {
        dc.deliver("alice", "Single", raw);
    }
    eprintln!("deliver x50: {:?}", t.elapsed());
}
