//! The SMTP side of the STARTTLS promises (issue 19), proven against the real binary, a
//! real aiosmtpd on 127.0.0.1 requiring STARTTLS, and a man in the middle of our own
//! between them:
//!
//! 1. Bytes appended after the server's `220` to STARTTLS are never read as an answer
//!    over TLS: the exchange is refused as a temporary failure and the alerts stay
//!    queued, then go out exactly once when the injection stops.
//! 2. A refusal forged in clear text (`554` instead of `220` to STARTTLS) cannot make
//!    a queued alert fail for good either: before TLS, nothing the other side says is
//!    authenticated.
//!
//! 3. STARTTLS removed from the EHLO reply stops the exchange before any login.
//!
//! In every case the password never crosses the wire in clear text.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::daemon::Setup;
use super::harness::{Dovecot, DovecotOptions, SmtpSink, TempDir};

/// What the man in the middle forges: a permanent refusal.
const INJECTED: &str = "554 5.7.1 injected\r\n";
const USER: &str = "alerts@hottubman.ca";
const PASSWORD: &str = "smtp-secret-never-in-clear";

/// What the man in the middle does to the server's `220` answer to STARTTLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Attack {
    /// Relays faithfully.
    None,
    /// Sends the `220` and [`INJECTED`] right behind it, in one write.
    Append,
    /// Sends [`INJECTED`] instead of the `220`.
    Replace,
    /// Removes STARTTLS from the EHLO reply (the client must not go on in clear text).
    Strip,
}

/// A man in the middle on 127.0.0.1 in front of the SMTP server's port: relays both
/// ways, attacks the answer to STARTTLS as `attack` currently says, and keeps every
/// byte the client sent before STARTTLS (the clear-text part).
struct Mitm {
    port: u16,
    attack: Arc<Mutex<Attack>>,
    clear_from_client: Arc<Mutex<Vec<u8>>>,
}

impl Mitm {
    fn start(upstream: u16, attack: Attack) -> Mitm {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the relay");
        let port = listener.local_addr().expect("relay address").port();
        let attack = Arc::new(Mutex::new(attack));
        let clear_from_client = Arc::new(Mutex::new(Vec::new()));
        let (now, transcript) = (attack.clone(), clear_from_client.clone());
        // Detached: it ends with the test process; each connection ends with its peers.
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let attack = *now.lock().expect("attack");
                let transcript = transcript.clone();
                std::thread::spawn(move || relay(client, upstream, attack, transcript));
            }
        });
        Mitm {
            port,
            attack,
            clear_from_client,
        }
    }

    /// Changes the attack for connections accepted from now on.
    fn set(&self, attack: Attack) {
        *self.attack.lock().expect("attack") = attack;
    }

    /// Everything the client sent before STARTTLS, lossily decoded.
    fn clear_text(&self) -> String {
        String::from_utf8_lossy(&self.clear_from_client.lock().expect("transcript")).into_owned()
    }
}

/// Copies bytes from `r` to `w` until either side closes.
fn pump(mut r: impl Read, w: &Mutex<TcpStream>) {
    let mut buf = [0u8; 16384];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let Ok(mut w) = w.lock() else { return };
        if w.write_all(&buf[..n]).is_err() {
            return;
        }
    }
}

fn relay(client: TcpStream, upstream: u16, attack: Attack, clear: Arc<Mutex<Vec<u8>>>) {
    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
        return;
    };
    let timeout = Some(Duration::from_secs(30));
    for s in [&client, &server] {
        let _ = s.set_read_timeout(timeout);
    }
    let (Ok(client_w), Ok(server_r), Ok(server_w)) =
        (client.try_clone(), server.try_clone(), server.try_clone())
    else {
        return;
    };
    let client_w = Arc::new(Mutex::new(client_w));
    let starttls_sent = Arc::new(std::sync::atomic::AtomicBool::new(false));

    // Server → client: line by line until the answer to STARTTLS, then raw (TLS).
    let (to_client, sent) = (client_w.clone(), starttls_sent.clone());
    let down = std::thread::spawn(move || {
        let mut r = BufReader::new(server_r);
        let mut line = Vec::new();
        while matches!(r.read_until(b'\n', &mut line), Ok(n) if n > 0) {
            let answers_starttls =
                sent.load(std::sync::atomic::Ordering::SeqCst) && line.starts_with(b"220");
            let out = match attack {
                Attack::Append if answers_starttls => [&line, INJECTED.as_bytes()].concat(),
                Attack::Replace if answers_starttls => INJECTED.as_bytes().to_vec(),
                Attack::Strip if line.starts_with(b"250") => String::from_utf8_lossy(&line)
                    .replace("STARTTLS", "XNOTLS")
                    .into_bytes(),
                _ => line.clone(),
            };
            {
                let Ok(mut w) = to_client.lock() else { return };
                if w.write_all(&out).is_err() {
                    return;
                }
            }
            line.clear();
            if answers_starttls {
                let rest = r.buffer().to_vec();
                if let Ok(mut w) = to_client.lock() {
                    let _ = w.write_all(&rest);
                }
                r.consume(rest.len());
                pump(r.into_inner(), &to_client);
                break;
            }
        }
        if let Ok(w) = to_client.lock() {
            let _ = w.shutdown(Shutdown::Write);
        }
    });

    // Client → server: recorded and scanned for STARTTLS, then raw.
    let mut client_r = client;
    let mut server_w = server_w;
    let mut buf = [0u8; 16384];
    let mut pending: Vec<u8> = Vec::new();
    let mut raw = false;
    loop {
        let n = match client_r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if raw {
            if server_w.write_all(&buf[..n]).is_err() {
                break;
            }
            continue;
        }
        if let Ok(mut t) = clear.lock() {
            t.extend_from_slice(&buf[..n]);
        }
        pending.extend_from_slice(&buf[..n]);
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            if String::from_utf8_lossy(&line)
                .trim()
                .eq_ignore_ascii_case("STARTTLS")
            {
                // Marked before the server can answer it.
                starttls_sent.store(true, std::sync::atomic::Ordering::SeqCst);
                raw = true;
            }
            if server_w.write_all(&line).is_err() {
                break;
            }
            if raw {
                break;
            }
        }
        if raw && !pending.is_empty() {
            let rest = std::mem::take(&mut pending);
            if server_w.write_all(&rest).is_err() {
                break;
            }
        }
    }
    let _ = server_w.shutdown(Shutdown::Both);
    let _ = down.join();
}

/// A profile whose URGENT mail alerts the recipient and the fallback (two alerts).
fn profile(dir: &TempDir) -> PathBuf {
    let yaml = "business:
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
  mode: keyword_only
  actions:
    URGENT: {flag: true, notify: [recipient, fallback]}
";
    let p = dir.path().join("profile.yaml");
    fs::write(&p, yaml).expect("write profile");
    p
}

/// An urgent message to Mark with this Message-ID.
fn urgent(id: &str) -> Vec<u8> {
    format!(
        "From: Pat Customer <pat@example.com>\r\nTo: mark@hottubman.ca\r\nSubject: Cover\r\nDate: Mon, 2 Mar 2026 10:00:00 -0500\r\nMessage-ID: <{id}@test.example>\r\n\r\nI will call my lawyer.\r\n"
    )
    .into_bytes()
}

/// The `smtp:` block: STARTTLS to 127.0.0.1:`port`, the test CA trusted, LOGIN/PLAIN.
fn smtp_block(port: u16, ca: &Path) -> String {
    format!(
        "smtp: {{host: 127.0.0.1, port: {port}, tls: starttls, ca_file: {}, user: {USER}, password: {{env: MT_SMTP_PASSWORD}}, from: \"Triage <{USER}>\"}}\n",
        ca.display()
    )
}

/// The outbox rows by status, read from the state database after a run.
fn outbox(state: &Path) -> Vec<(String, i64)> {
    let db =
        rusqlite::Connection::open_with_flags(state, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open the state database");
    let mut stmt = db
        .prepare("SELECT status, count(*) FROM outbox GROUP BY status ORDER BY status")
        .expect("query the outbox");
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("read the outbox");
    rows.collect::<Result<_, _>>().expect("outbox rows")
}

/// Alerts the sink received about the message with this Message-ID.
fn alerts_about(sink: &SmtpSink, id: &str) -> usize {
    let want = format!("<{id}@test.example>");
    sink.messages()
        .iter()
        .filter(|m| m.header("In-Reply-To").as_deref() == Some(want.as_str()))
        .count()
}

/// One urgent message in a Maildir, the daemon sending its two alerts through a man in
/// the middle doing `attack`: the first run must keep both alerts queued, a second run
/// with the man in the middle gone honest must deliver each exactly once.
fn attacked_then_honest(id: &str, attack: Attack) -> String {
    let d = Dovecot::start(DovecotOptions::default());
    d.deliver("alice", "INBOX", &urgent(id));
    let sink = SmtpSink::start_tls("starttls", USER, PASSWORD);
    let mitm = Mitm::start(sink.port(), attack);
    let pdir = TempDir::new("profile");
    let s = Setup::maildir(
        &d.maildir("alice"),
        &profile(&pdir),
        &format!(
            "    backfill: all\n{}",
            smtp_block(mitm.port, &sink.ca_file())
        ),
    );
    let env = [("MT_SMTP_PASSWORD", PASSWORD)];

    let (status, log) = s.run_once(&env);
    assert!(status.success(), "{log}");
    assert!(log.contains("cannot send the alert"), "not logged:\n{log}");
    assert!(!log.contains("giving up"), "failed for good:\n{log}");
    assert_eq!(
        outbox(&s.state),
        vec![("pending".to_string(), 2)],
        "the alerts must stay queued:\n{log}"
    );
    assert_eq!(sink.messages().len(), 0, "sent despite the attack:\n{log}");
    let clear = mitm.clear_text();
    assert!(clear.contains("EHLO"), "{clear}");
    assert!(
        !clear.to_ascii_uppercase().contains("AUTH") && !clear.contains(PASSWORD),
        "credentials went in clear text:\n{clear}"
    );

    mitm.set(Attack::None);
    let (status, second) = s.run_once(&env);
    assert!(status.success(), "{second}");
    sink.wait_for(2, Duration::from_secs(10));
    assert_eq!(alerts_about(&sink, id), 2, "{second}");
    // Once more: nothing is sent twice.
    let (status, third) = s.run_once(&env);
    assert!(status.success(), "{third}");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(sink.messages().len(), 2, "sent twice:\n{second}{third}");
    assert_eq!(outbox(&s.state), vec![("sent".to_string(), 2)]);
    log
}

/// Regression (issue 19): lettre kept its buffered reader across the STARTTLS upgrade,
/// so a `554` a man in the middle appended to the server's `220` was read as the first
/// answer over TLS, and the alert failed for good.
#[test]
fn regression_reply_injected_after_starttls_220_is_refused_and_retried() {
    let log = attacked_then_honest("inj-append", Attack::Append);
    assert!(
        log.contains("sent data before TLS started; refusing"),
        "no clear error:\n{log}"
    );
    assert!(
        !log.contains("injected"),
        "acted on the forged reply:\n{log}"
    );
}

/// A refusal before TLS is unauthenticated: retried, never final.
#[test]
fn refusal_forged_in_clear_text_instead_of_starttls_220_is_retried() {
    let log = attacked_then_honest("inj-replace", Attack::Replace);
    assert!(log.contains("554"), "the refusal is not shown:\n{log}");
    assert!(log.contains("before TLS"), "not explained:\n{log}");
}

/// STARTTLS stripped from the EHLO reply: no login in clear text, retried, never final.
#[test]
fn starttls_stripped_from_ehlo_stops_before_login_and_is_retried() {
    let log = attacked_then_honest("strip", Attack::Strip);
    assert!(
        log.contains("does not offer STARTTLS (or someone in between removed it)"),
        "not explained:\n{log}"
    );
}
