//! The server matrix (issue 17): the daemon's core promises on every server layout a
//! small business is on — Dovecot as the other tests run it, Dovecot with the `INBOX.`
//! namespace of shared-hosting panels, and Cyrus IMAP 3.6 with Debian's stock namespace
//! (`INBOX.`, `.`) and a quota near full. Each scenario is one function; the macro at
//! the end makes one test per (scenario, layout), so they run in parallel.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use super::daemon::{backlog, mailbox_contents, message, wait_count, Conf, Setup};
use super::harness::{Layout, Server, StoredMessage, TempDir};
use super::proxy::Proxy;

const PW: (&str, &str) = ("MT_TEST_PASSWORD", "alicepw");

/// A team whose support crew's name has a `/` (not a sub-folder, on any server), an
/// escalation that flags and copies, and lists filed apart.
fn profile(dir: &TempDir) -> PathBuf {
    let yaml = "business:
  name: Hot Tub Man
  domains: [hottubman.ca]
  timezone: America/Toronto
team:
  - name: Mark Johnson
    email: mark@hottubman.ca
    roles: [sales_manager, operations_manager]
  - name: Night/Day Crew
    email: crew@hottubman.ca
    roles: [service_manager, support_lead]
  - name: Sarah Williams
    email: sarah@hottubman.ca
    roles: [owner]
routing:
  lists: {folder: Newsletters}
escalation:
  mode: keyword_only
  keywords: {lawyer: URGENT}
  actions:
    URGENT: {flag: true, copy_to: ESCALATED}
";
    let p = dir.path().join("matrix.yaml");
    fs::write(&p, yaml).expect("write profile");
    p
}

/// The daemon's configuration for `server` (IMAP, loopback, plain) with `extra`.
fn setup(server: &Server, extra: &str) -> (Setup, TempDir) {
    setup_port(server.port(), extra)
}

fn setup_port(port: u16, extra: &str) -> (Setup, TempDir) {
    let dir = TempDir::new("matrix-profile");
    let s = Setup::imap_port(
        port,
        Conf {
            profile: profile(&dir),
            user: "alice",
            password_env: PW.0,
            extra,
        },
    );
    (s, dir)
}

/// A message without a Message-ID; `body` makes it distinct.
fn no_id(body: &str) -> Vec<u8> {
    format!(
        "From: Pat Customer <pat@example.com>\r\nTo: info@hottubman.ca\r\nSubject: Quote\r\nDate: Mon, 2 Mar 2026 10:00:00 -0500\r\n\r\nA quote for a new hot tub please. {body}\r\n"
    )
    .into_bytes()
}

/// A message larger than the scan cap (256 KiB): a short text and a 300 KiB attachment.
/// Only its header and text are fetched.
fn with_attachment() -> Vec<u8> {
    let line =
        "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0NTY3\r\n";
    let mut m = String::from(
        "From: Pat Customer <pat@example.com>\r\nTo: info@hottubman.ca\r\nSubject: Photos of the broken heater\r\n\
         Date: Mon, 2 Mar 2026 10:00:00 -0500\r\nMessage-ID: <photos@test.example>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\n\
         The heater is broken, photos attached.\r\n--b1\r\nContent-Type: image/jpeg\r\n\
         Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=heater.jpg\r\n\r\n",
    );
    for _ in 0..(300 * 1024 / line.len()) {
        m.push_str(line);
    }
    m.push_str("--b1--\r\n");
    m.into_bytes()
}

fn has(m: &StoredMessage, flag: &str) -> bool {
    m.flags.iter().any(|f| f == flag)
}

fn contains(m: &StoredMessage, needle: &str) -> bool {
    String::from_utf8_lossy(&m.raw).contains(needle)
}

/// Every original stored exactly once outside `except` (byte for byte), nothing else
/// there; returns the folders' message counts.
fn exactly_once(
    contents: &BTreeMap<String, Vec<StoredMessage>>,
    originals: &[Vec<u8>],
    except: &str,
) -> BTreeMap<String, usize> {
    let mut seen: BTreeMap<&[u8], usize> = BTreeMap::new();
    let mut per_folder = BTreeMap::new();
    for (folder, msgs) in contents.iter().filter(|(f, _)| f.as_str() != except) {
        for m in msgs {
            *seen.entry(m.raw.as_slice()).or_default() += 1;
        }
        if !msgs.is_empty() {
            per_folder.insert(folder.clone(), msgs.len());
        }
    }
    for o in originals {
        let n = seen.remove(o.as_slice()).unwrap_or(0);
        assert_eq!(
            n,
            1,
            "{n} copies of {:?}\nfolders: {per_folder:?}",
            String::from_utf8_lossy(o).lines().nth(2)
        );
    }
    assert!(seen.is_empty(), "{} unexpected messages", seen.len());
    per_folder
}

/// A backlog is filed once each, byte-identical, never \Seen, flags kept, into folders
/// inside the server's namespace (a name with `/` included); an escalation is flagged
/// and copied; messages told apart only by their bodies, or sharing one Message-ID, are
/// each filed; a message above the scan cap is filed whole; on Cyrus near its quota,
/// the SELECT's `[ALERT]` is a warning logged once.
fn backlog_is_filed_inside_the_namespace(layout: Layout) {
    let mut server = layout.start();
    let mut originals = backlog(24, "mx");
    originals.push(b"From: list@example.com\r\nList-Id: <spa.lists.example.com>\r\nSubject: Newsletter\r\nMessage-ID: <nl@test.example>\r\n\r\nSpring sale on covers!\r\n".to_vec());
    // Identical headers, no Message-ID; and one Message-ID on two different messages.
    originals.push(no_id("First of two."));
    originals.push(no_id("Second of two."));
    originals.push(message(
        "twin",
        "Quote",
        "A quote for a new hot tub please.",
    ));
    originals.push(message(
        "twin",
        "Quote",
        "A quote for two new hot tubs please.",
    ));
    let lawyer = message(
        "lawyer",
        "Leak",
        "The tub leaks again; my lawyer will call you.",
    );
    originals.push(lawyer.clone());
    originals.push(with_attachment());
    server.deliver_many("alice", "INBOX", &originals);
    server.set_flags("alice", "INBOX", 1, "\\Flagged $Custom");
    server.set_flags("alice", "INBOX", 2, "\\Answered");
    if let Some(c) = server.cyrus() {
        // Above Cyrus' warning level (90 %), with room for the escalation's copy.
        c.fill_quota("alice", 92);
        c.restart();
    }
    let (s, _dir) = setup(&server, "    backfill: all\n");
    let (status, log) = s.run_once(&[PW]);
    assert!(status.success(), "{log}");
    let contents = mailbox_contents(&*server, "alice");
    let escalated = server.folder_name("ESCALATED");
    let per_folder = exactly_once(&contents, &originals, &escalated);
    assert_eq!(per_folder.get("INBOX"), None, "{per_folder:?}");
    let crew = server.folder_name("SUPPORT/Night-Day Crew");
    assert!(
        per_folder.contains_key(&crew),
        "{crew} in {per_folder:?}\n{log}"
    );
    assert_eq!(
        per_folder.get(&server.folder_name("Newsletters")),
        Some(&1),
        "{per_folder:?}"
    );
    // Inside the personal namespace: on the prefixed layouts, nothing at the top level.
    let prefix = server.folder_name("");
    for f in contents.keys().filter(|f| f.as_str() != "INBOX") {
        assert!(
            f.starts_with(&prefix),
            "{f} outside {prefix:?}: {per_folder:?}"
        );
    }
    // The escalation: flagged where it was filed, and one copy.
    let copies = contents.get(&escalated).cloned().unwrap_or_default();
    assert_eq!(copies.len(), 1, "{escalated}: {copies:?}\n{log}");
    assert!(copies[0].raw == lawyer, "the copy is the escalated message");
    for (folder, msgs) in &contents {
        for m in msgs {
            assert!(!has(m, "\\Seen"), "{folder} uid {} was marked seen", m.uid);
            assert!(
                !has(m, "\\Deleted"),
                "{folder} uid {} left \\Deleted",
                m.uid
            );
            if contains(m, "<mx-0@test.example>") {
                assert!(has(m, "\\Flagged") && has(m, "$Custom"), "{:?}", m.flags);
            }
            if contains(m, "<mx-1@test.example>") {
                assert!(has(m, "\\Answered"), "{:?}", m.flags);
            }
            if m.raw == lawyer && folder != &escalated {
                assert!(has(m, "\\Flagged"), "escalated and flagged: {:?}", m.flags);
            }
        }
    }
    assert!(!log.contains("already decided"), "{log}");
    if layout == Layout::Cyrus {
        let warned = log.matches("the server warns").count();
        assert!(
            warned >= 1 && log.contains("STORAGE quota"),
            "Cyrus's quota alert is logged: {log}"
        );
    }
}

/// New mail is filed while the daemon waits in IDLE (Cyrus: through its idled).
fn idle_arrival_is_filed(layout: Layout) {
    let server = layout.start();
    let (s, _dir) = setup(&server, "");
    let mut daemon = s.start(&[PW]);
    assert!(
        daemon.wait_log("first start", Duration::from_secs(20)),
        "{}",
        daemon.log()
    );
    let sales = server.folder_name("SALES/Mark Johnson");
    let crew = server.folder_name("SUPPORT/Night-Day Crew");
    server.deliver(
        "alice",
        "INBOX",
        &message("idle-1", "Quote", "A quote for a new hot tub please"),
    );
    assert!(
        wait_count(&*server, "alice", &sales, 1, Duration::from_secs(20)),
        "{}",
        daemon.log()
    );
    server.deliver(
        "alice",
        "INBOX",
        &message("idle-2", "Heater", "The heater is broken, please repair it"),
    );
    assert!(
        wait_count(&*server, "alice", &crew, 1, Duration::from_secs(20)),
        "{}",
        daemon.log()
    );
    assert_eq!(
        daemon.term(Duration::from_secs(15)).map(|st| st.success()),
        Some(true),
        "{}",
        daemon.log()
    );
    assert!(server.messages("alice", "INBOX").is_empty());
}

/// SIGKILL at random points of a backlog (large enough for the second session), then a
/// run to the end: nothing lost, nothing duplicated, nothing left.
fn kill_and_restart_loses_and_duplicates_nothing(layout: Layout) {
    let server = layout.start();
    let originals = backlog(1100, "k");
    server.deliver_many("alice", "INBOX", &originals);
    let (s, _dir) = setup(&server, "    backfill: all\n");
    s.kill_repeatedly(&[PW], 6, 0x2545_f491_4f6c_dd1d, 40..700);
    let (status, log) = s.run_once(&[PW]);
    assert!(status.success(), "{log}");
    let contents = mailbox_contents(&*server, "alice");
    let escalated = server.folder_name("ESCALATED");
    let per_folder = exactly_once(&contents, &originals, &escalated);
    assert_eq!(per_folder.get("INBOX"), None, "{per_folder:?}");
}

/// Regression (issue 17): after a move the server completed but the daemon never heard
/// of (killed, or the connection cut, before the journal write), messages without a
/// Message-ID were recorded `gone` although they were in their folder. Recovery now
/// finds them there by size and signature — and tells apart two whose headers are
/// identical.
fn a_completed_move_the_daemon_missed_is_recorded_as_filed(layout: Layout) {
    let server = layout.start();
    let originals = vec![
        no_id("One."),
        no_id("Two, a little longer."),
        message("with-id", "Quote", "A quote for a new hot tub please."),
    ];
    server.deliver_many("alice", "INBOX", &originals);
    let proxy = Proxy::start(server.port(), 7);
    proxy.swallow_answers("UID MOVE", 1);
    let (s, _dir) = setup_port(proxy.port(), "    backfill: all\n");
    let (first, log) = s.run_once(&[PW]);
    assert!(
        !first.success(),
        "the cut must have ended the first run: {log}"
    );
    assert_eq!(proxy.stats().cuts(), 1, "{log}");
    let sales = server.folder_name("SALES/Mark Johnson");
    assert_eq!(
        server.messages("alice", &sales).len(),
        3,
        "the server did the move"
    );
    let (second, log) = s.run_once(&[PW]);
    assert!(second.success(), "{log}");
    assert!(
        !log.contains("left the folder before it was filed"),
        "{log}"
    );
    let history = std::process::Command::new(env!("CARGO_BIN_EXE_mailtriage"))
        .args(["history", "--format", "json", "--limit", "0", "--state"])
        .arg(&s.state)
        .output()
        .expect("history runs");
    let history = String::from_utf8_lossy(&history.stdout).into_owned();
    assert_eq!(
        history.matches("\"status\":\"filed\"").count(),
        3,
        "{history}"
    );
    exactly_once(&mailbox_contents(&*server, "alice"), &originals, "-");
}

macro_rules! on_every_server {
    ($($scenario:ident),* $(,)?) => {
        $(
            mod $scenario {
                use super::Layout;
                #[test]
                fn dovecot() {
                    super::$scenario(Layout::Dovecot)
                }
                #[test]
                fn dovecot_inbox_prefix() {
                    super::$scenario(Layout::DovecotInboxPrefix)
                }
                #[test]
                fn cyrus() {
                    super::$scenario(Layout::Cyrus)
                }
            }
        )*
    };
}

on_every_server!(
    backlog_is_filed_inside_the_namespace,
    idle_arrival_is_filed,
    kill_and_restart_loses_and_duplicates_nothing,
    a_completed_move_the_daemon_missed_is_recorded_as_filed,
);
