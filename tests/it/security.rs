//! Security promises, each proven against the real binary and a real Dovecot on
//! 127.0.0.1 (README "What the daemon promises", SPEC §8 and §13):
//!
//! 1. TLS is verified: an unknown CA and a wrong host name are refused with a clear
//!    error, the configured `ca_file` is accepted — for implicit TLS and STARTTLS.
//! 2. STARTTLS stripping is refused: no LOGIN is ever sent in clear text.
//! 3. Plaintext to a non-loopback host is refused unless `allow_insecure` (at `check`
//!    here; the connect-time refusal is a unit test in `src/mailbox/imap/connect.rs`).
//! 4. Secrets (from `{file:}` and `{command:}`) never appear in logs at trace level,
//!    errors, `explain`, `history`, `stats`, metrics or the state database.
//! 5. The state file and its `-wal`/`-shm`/`.lock` companions are 0600; a secrets file
//!    readable by others gets a warning.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::daemon::{message, root, wait_count, Conf, Setup};
use super::harness::{free_port, poll, Dovecot, DovecotOptions};

// ---------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------

/// A config for alice over `tls` (`implicit` or `starttls`) to 127.0.0.1:`port`, with
/// an optional `ca_file`; one message waits in INBOX (`backfill: all`).
fn tls_setup(d: &Dovecot, tls: &str, port: u16, ca_file: Option<&Path>) -> Setup {
    let s = Setup::imap(
        d,
        Conf {
            profile: root().join("profiles/hottub.yaml"),
            user: "alice",
            password_env: "PW",
            extra: "    backfill: all\n",
        },
    );
    let ca = ca_file
        .map(|p| format!(", ca_file: {}", p.display()))
        .unwrap_or_default();
    let cfg = std::fs::read_to_string(&s.config).expect("config");
    let plain = format!("port: {}, tls: none", d.port());
    assert!(cfg.contains(&plain), "{cfg}");
    let cfg = cfg.replace(&plain, &format!("port: {port}, tls: {tls}{ca}"));
    std::fs::write(&s.config, cfg).expect("config");
    s
}

/// Dovecot's log lines of successful logins over TLS (implicit or STARTTLS).
fn tls_logins(d: &Dovecot) -> usize {
    d.log()
        .lines()
        .filter(|l| l.contains("Login: user=<") && l.contains(", TLS"))
        .count()
}

/// Dovecot's log lines of any successful login.
fn logins(d: &Dovecot) -> usize {
    d.log()
        .lines()
        .filter(|l| l.contains("Login: user=<"))
        .count()
}

/// The two ways to speak TLS, with the port each uses.
fn tls_modes(d: &Dovecot) -> [(&'static str, u16); 2] {
    [
        ("implicit", d.tls_port().expect("TLS port")),
        ("starttls", d.port()),
    ]
}

fn tls_dovecot(cert_names: &[&str]) -> Dovecot {
    Dovecot::start(DovecotOptions {
        tls: true,
        cert_names: cert_names.iter().map(|n| n.to_string()).collect(),
        ..DovecotOptions::default()
    })
}

// ---------------------------------------------------------------------------------
// 1. TLS is verified
// ---------------------------------------------------------------------------------

#[test]
fn tls_unknown_ca_is_refused_naming_ca_file() {
    let d = tls_dovecot(&[]);
    d.deliver("alice", "INBOX", &message("ca1", "Quote", "A quote please"));
    for (mode, port) in tls_modes(&d) {
        let s = tls_setup(&d, mode, port, None);
        let (status, log) = s.run_once(&[("PW", "alicepw")]);
        assert!(!status.success(), "{mode}: accepted an unknown CA:\n{log}");
        assert!(
            log.contains("not signed by a trusted CA") && log.contains("ca_file"),
            "{mode}: the error must say the CA is untrusted and mention ca_file:\n{log}"
        );
        assert_eq!(tls_logins(&d), 0, "{mode}: logged in:\n{}", d.log());
    }
    assert_eq!(d.messages("alice", "INBOX").len(), 1, "nothing was filed");
}

#[test]
fn tls_wrong_hostname_is_refused_naming_both_names() {
    // A certificate from the trusted CA, but for mail.test: the daemon connects to
    // 127.0.0.1, so the certificate does not prove it reached the right server.
    let d = tls_dovecot(&["mail.test"]);
    let ca = d.ca_file().expect("CA");
    d.deliver(
        "alice",
        "INBOX",
        &message("name1", "Quote", "A quote please"),
    );
    for (mode, port) in tls_modes(&d) {
        let s = tls_setup(&d, mode, port, Some(&ca));
        let (status, log) = s.run_once(&[("PW", "alicepw")]);
        assert!(!status.success(), "{mode}: accepted a wrong name:\n{log}");
        assert!(
            log.contains("not valid for the name 127.0.0.1") && log.contains("mail.test"),
            "{mode}: the error must name the host connected to and the certificate's name:\n{log}"
        );
        assert_eq!(tls_logins(&d), 0, "{mode}: logged in:\n{}", d.log());
    }
    assert_eq!(d.messages("alice", "INBOX").len(), 1, "nothing was filed");
}

#[test]
fn tls_configured_ca_file_is_accepted() {
    let d = tls_dovecot(&[]);
    let ca = d.ca_file().expect("CA");
    for (i, (mode, port)) in tls_modes(&d).into_iter().enumerate() {
        let id = format!("ok{i}");
        d.deliver("alice", "INBOX", &message(&id, "Quote", "A quote please"));
        let before = tls_logins(&d);
        let s = tls_setup(&d, mode, port, Some(&ca));
        let (status, log) = s.run_once(&[("PW", "alicepw")]);
        assert!(status.success(), "{mode}:\n{log}");
        assert!(
            wait_count(&d, "alice", "INBOX", 0, Duration::from_secs(5)),
            "{mode}: the message was not filed:\n{log}"
        );
        assert_eq!(
            tls_logins(&d),
            before + 1,
            "{mode}: the login went over TLS:\n{}",
            d.log()
        );
    }
}

// ---------------------------------------------------------------------------------
// 2. STARTTLS stripping
// ---------------------------------------------------------------------------------

/// What the man in the middle on the plain port does.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Attack {
    /// Removes STARTTLS from capability lists and answers the client's STARTTLS with
    /// `BAD`, as a server without TLS would.
    StripBad,
    /// Answers STARTTLS with `OK` itself, then carries on in clear text (the client's
    /// TLS hello reaches Dovecot's plain IMAP).
    FakeOk,
    /// Turns the greeting into `* PREAUTH`: a client that accepts it skips both
    /// STARTTLS and its own login, talking in clear text to whoever is in between.
    PreauthGreeting,
    /// Lets the real STARTTLS through, but appends forged plaintext responses to the
    /// server's `OK` (for the next tags), hoping the client reads them as if they had
    /// come over TLS (response injection, CVE-2011-0411 style); then relays the TLS.
    InjectAfterStarttls,
}

/// The text the response-injection attack forges.
const INJECTED: &str = "injected-in-clear";

/// A man in the middle on 127.0.0.1 in front of Dovecot's plain port: relays both
/// ways, attacks the STARTTLS exchange as `attack` says, and keeps a transcript of
/// every byte the client sent.
struct Mitm {
    port: u16,
    from_client: Arc<Mutex<Vec<u8>>>,
}

impl Mitm {
    fn start(upstream: u16, attack: Attack) -> Mitm {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let from_client = Arc::new(Mutex::new(Vec::new()));
        let transcript = from_client.clone();
        // Detached: it ends with the test process; each connection ends with its peers.
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let transcript = transcript.clone();
                std::thread::spawn(move || relay(client, upstream, attack, transcript));
            }
        });
        Mitm { port, from_client }
    }

    /// Everything the client sent, lossily decoded.
    fn client_sent(&self) -> String {
        String::from_utf8_lossy(&self.from_client.lock().expect("transcript")).into_owned()
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

fn relay(client: TcpStream, upstream: u16, attack: Attack, transcript: Arc<Mutex<Vec<u8>>>) {
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
    let server_w = Arc::new(Mutex::new(server_w));
    // The tag of the client's STARTTLS, once seen (for the injection attack).
    let starttls_tag: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));

    // Server → client: line by line until TLS starts, then raw.
    let (to_client, tag_seen) = (client_w.clone(), starttls_tag.clone());
    let down = std::thread::spawn(move || {
        let mut r = BufReader::new(server_r);
        let mut line = Vec::new();
        let mut first = true;
        while matches!(r.read_until(b'\n', &mut line), Ok(n) if n > 0) {
            let text = String::from_utf8_lossy(&line).into_owned();
            let mut out = line.clone();
            let mut tls_starts = false;
            match attack {
                Attack::StripBad | Attack::FakeOk if text.contains("CAPABILITY") => {
                    out = text.replace(" STARTTLS", "").into_bytes();
                }
                Attack::PreauthGreeting if first => {
                    out = text.replacen("* OK", "* PREAUTH", 1).into_bytes();
                }
                Attack::InjectAfterStarttls => {
                    let tag = tag_seen.lock().ok().and_then(|t| t.clone());
                    if tag.is_some_and(|t| text.starts_with(&format!("{t} OK"))) {
                        // Forged answers for the next few tags (async-imap counts A0001…).
                        for n in 1..=9 {
                            out.extend_from_slice(format!("A000{n} NO {INJECTED}\r\n").as_bytes());
                        }
                        out.extend_from_slice(format!("* BYE {INJECTED}\r\n").as_bytes());
                        tls_starts = true;
                    }
                }
                _ => {}
            }
            first = false;
            {
                let Ok(mut w) = to_client.lock() else { return };
                if w.write_all(&out).is_err() {
                    return;
                }
            }
            line.clear();
            if tls_starts {
                // Whatever the server sent after its OK is TLS: pass it on untouched.
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

    // Client → server: lines until STARTTLS, then raw (or an answer of our own).
    let mut client_r = client;
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = [0u8; 16384];
    let mut raw = false;
    'read: loop {
        let n = match client_r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Ok(mut t) = transcript.lock() {
            t.extend_from_slice(&buf[..n]);
        }
        let forward = |bytes: &[u8]| {
            server_w
                .lock()
                .is_ok_and(|mut w| w.write_all(bytes).is_ok())
        };
        if raw {
            if !forward(&buf[..n]) {
                break;
            }
            continue;
        }
        pending.extend_from_slice(&buf[..n]);
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let text = String::from_utf8_lossy(&line);
            let mut words = text.split_whitespace();
            let tag = words.next().unwrap_or("*").to_string();
            let is_starttls = words
                .next()
                .is_some_and(|w| w.eq_ignore_ascii_case("STARTTLS"));
            let answer = match attack {
                Attack::StripBad if is_starttls => {
                    Some(format!("{tag} BAD STARTTLS is not available\r\n"))
                }
                Attack::FakeOk if is_starttls => {
                    Some(format!("{tag} OK Begin TLS negotiation now\r\n"))
                }
                _ => None,
            };
            if is_starttls {
                if let Ok(mut t) = starttls_tag.lock() {
                    *t = Some(tag.clone());
                }
                raw = attack != Attack::StripBad;
            }
            match answer {
                Some(a) => {
                    if let Ok(mut w) = client_w.lock() {
                        let _ = w.write_all(a.as_bytes());
                    }
                }
                None if !forward(&line) => break 'read,
                None => {}
            }
            if raw {
                let rest = std::mem::take(&mut pending);
                if !forward(&rest) {
                    break 'read;
                }
                break;
            }
        }
    }
    if let Ok(w) = server_w.lock() {
        let _ = w.shutdown(Shutdown::Both);
    }
    let _ = down.join();
}

/// Asserts the client never tried to authenticate and the password never left it.
fn assert_no_login_sent(sent: &str, password: &str) {
    let upper = sent.to_ascii_uppercase();
    assert!(
        !upper.contains("LOGIN") && !upper.contains("AUTHENTICATE"),
        "a login was sent in clear text:\n{sent}"
    );
    assert!(!sent.contains(password), "the password was sent:\n{sent}");
}

#[test]
fn starttls_refused_by_a_server_without_tls_stops_before_login() {
    // The harness's default Dovecot has `ssl = no`: it answers STARTTLS with BAD.
    let d = Dovecot::start(DovecotOptions::default());
    d.deliver("alice", "INBOX", &message("st1", "Quote", "A quote please"));
    let s = tls_setup(&d, "starttls", d.port(), None);
    let before = logins(&d);
    let (status, log) = s.run_once(&[("PW", "alicepw")]);
    assert!(!status.success(), "continued without STARTTLS:\n{log}");
    assert!(
        log.contains("refused STARTTLS") && log.contains("not continuing without encryption"),
        "{log}"
    );
    // Dovecot logs the closed connection once its login process notices.
    let seen = poll(Duration::from_secs(5), || {
        d.log().contains("(no auth attempts").then_some(())
    });
    let dlog = d.log();
    assert!(
        seen.is_some(),
        "Dovecot saw a connection without any login attempt:\n{dlog}"
    );
    assert_eq!(logins(&d), before, "the daemon logged in:\n{dlog}");
    assert_eq!(d.messages("alice", "INBOX").len(), 1);
}

#[test]
fn starttls_stripped_by_a_man_in_the_middle_is_refused_without_login() {
    let d = tls_dovecot(&[]);
    let ca = d.ca_file().expect("CA");
    d.deliver("alice", "INBOX", &message("st2", "Quote", "A quote please"));
    let proxy = Mitm::start(d.port(), Attack::StripBad);
    let s = tls_setup(&d, "starttls", proxy.port, Some(&ca));
    let before = logins(&d);
    let (status, log) = s.run_once(&[("PW", "alicepw")]);
    assert!(!status.success(), "continued without STARTTLS:\n{log}");
    assert!(
        log.contains("refused STARTTLS") && log.contains("not continuing without encryption"),
        "{log}"
    );
    let sent = proxy.client_sent();
    assert!(sent.contains("STARTTLS"), "STARTTLS was asked for:\n{sent}");
    assert_no_login_sent(&sent, "alicepw");
    assert_eq!(logins(&d), before, "the daemon logged in:\n{}", d.log());
}

#[test]
fn starttls_acknowledged_but_not_started_fails_tls_without_login() {
    let d = tls_dovecot(&[]);
    let ca = d.ca_file().expect("CA");
    let proxy = Mitm::start(d.port(), Attack::FakeOk);
    let s = tls_setup(&d, "starttls", proxy.port, Some(&ca));
    let (status, log) = s.run_once(&[("PW", "alicepw")]);
    assert!(!status.success(), "continued without TLS:\n{log}");
    assert!(
        log.contains("TLS with 127.0.0.1 failed")
            && log.contains("accepted STARTTLS but did not start TLS"),
        "{log}"
    );
    let sent = proxy.client_sent();
    assert!(sent.contains("STARTTLS"), "{sent}");
    assert_no_login_sent(&sent, "alicepw");
}

#[test]
fn starttls_preauth_greeting_is_refused_without_sending_anything() {
    let d = tls_dovecot(&[]);
    let ca = d.ca_file().expect("CA");
    let proxy = Mitm::start(d.port(), Attack::PreauthGreeting);
    let s = tls_setup(&d, "starttls", proxy.port, Some(&ca));
    let (status, log) = s.run_once(&[("PW", "alicepw")]);
    assert!(!status.success(), "accepted a plaintext PREAUTH:\n{log}");
    assert!(log.contains("pre-authenticated"), "{log}");
    let sent = proxy.client_sent();
    assert!(
        !sent.to_ascii_uppercase().contains("SELECT") && !sent.contains("FETCH"),
        "worked in clear text:\n{sent}"
    );
    assert_no_login_sent(&sent, "alicepw");
}

#[test]
fn starttls_responses_injected_before_tls_are_discarded() {
    let d = tls_dovecot(&[]);
    let ca = d.ca_file().expect("CA");
    d.deliver(
        "alice",
        "INBOX",
        &message("inj1", "Quote", "A quote please"),
    );
    let proxy = Mitm::start(d.port(), Attack::InjectAfterStarttls);
    let s = tls_setup(&d, "starttls", proxy.port, Some(&ca));
    let (status, log) = s.run_once(&[("PW", "alicepw")]);
    // Either outcome is safe: the forged lines are dropped with the plaintext buffer
    // (the run succeeds over TLS), or they break the TLS handshake (it fails). Never
    // may they be read as the server's answer.
    assert!(!log.contains(INJECTED), "acted on forged responses:\n{log}");
    if status.success() {
        assert!(
            wait_count(&d, "alice", "INBOX", 0, Duration::from_secs(5)),
            "{log}"
        );
        assert_eq!(tls_logins(&d), 1, "{}", d.log());
    } else {
        assert!(log.contains("TLS with 127.0.0.1 failed"), "{log}");
    }
    assert!(
        !proxy.client_sent().contains("alicepw"),
        "LOGIN went in clear"
    );
}

// ---------------------------------------------------------------------------------
// 3. Plaintext only to loopback
// ---------------------------------------------------------------------------------

fn check(config: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mailtriage"))
        .arg("check")
        .arg(config)
        .output()
        .expect("check runs");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn plaintext_to_a_remote_host_is_refused_by_check_unless_allow_insecure() {
    let dir = super::harness::TempDir::new("mt-plain");
    let config = dir.path().join("mailtriage.yaml");
    let write = |imap: &str| {
        let yaml = format!(
            "state: {}\naccounts:\n  - name: info\n    profile: {}\n    imap: {imap}\n",
            dir.path().join("state.db").display(),
            root().join("profiles/hottub.yaml").display()
        );
        std::fs::write(&config, yaml).expect("config");
    };
    write("{host: imap.example.com, tls: none, user: u, password: {env: PW}}");
    let (code, out) = check(&config);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("clear text"), "{out}");
    // Located: file, line and column of the `tls:` value.
    let at = format!("{}:5:", config.display());
    assert!(out.contains(&at), "no location {at}:\n{out}");
    assert!(out.contains("allow_insecure"), "names the override:\n{out}");

    write(
        "{host: imap.example.com, tls: none, allow_insecure: true, user: u, password: {env: PW}}",
    );
    let (code, out) = check(&config);
    assert_eq!(code, 0, "allow_insecure is the explicit override:\n{out}");

    for host in ["127.0.0.1", "localhost", "\"::1\""] {
        write(&format!(
            "{{host: {host}, tls: none, user: u, password: {{env: PW}}}}"
        ));
        let (code, out) = check(&config);
        assert_eq!(code, 0, "{host} is loopback:\n{out}");
    }
}

// ---------------------------------------------------------------------------------
// 4. Secrets never appear
// ---------------------------------------------------------------------------------

fn scrape(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

fn mailtriage(args: &[&str], state: &Path) -> Vec<u8> {
    let out = Command::new(env!("CARGO_BIN_EXE_mailtriage"))
        .args(args)
        .arg("--state")
        .arg(state)
        .output()
        .expect("runs");
    [out.stdout, out.stderr].concat()
}

/// Every file in the state file's directory (the database, -wal, -shm, .lock).
fn state_files(state: &Path, into: &mut BTreeMap<String, Vec<u8>>, label: &str) {
    for entry in std::fs::read_dir(state.parent().expect("state dir"))
        .expect("state dir")
        .flatten()
    {
        into.insert(
            format!("{label} {}", entry.path().display()),
            std::fs::read(entry.path()).unwrap_or_default(),
        );
    }
}

#[test]
fn secrets_from_file_and_command_never_appear_anywhere() {
    // The daemon reads the secret from a file, or from a command that lower-cases
    // another file: the command line itself never holds the secret.
    const SECRET: &str = "zq7-secret-4411-pw";
    const WRONG: &str = "wrong-7y3-secret";
    let d = Dovecot::start(DovecotOptions {
        users: vec![("alice".into(), SECRET.into())],
        ..DovecotOptions::default()
    });
    let ids: Vec<String> = (0..4).map(|i| format!("sec{i}")).collect();
    let bodies = [
        "Could you send a quote for a new hot tub?",
        "The heater is broken and needs a repair.",
        "This is unacceptable, I am disappointed with the service.",
        "We'd like to discuss a franchise opportunity.",
    ];
    for (id, body) in ids.iter().zip(bodies) {
        d.deliver("alice", "INBOX", &message(id, "Hello", body));
    }
    let s = Setup::imap(
        &d,
        Conf {
            profile: root().join("profiles/hottub.yaml"),
            user: "alice",
            password_env: "UNUSED",
            extra: "    backfill: all\n",
        },
    );
    let secret_file = s.dir.path().join("imap-password");
    let upper_file = s.dir.path().join("imap-password-upper");
    let write_secret = |value: &str| {
        for (file, text) in [
            (&secret_file, value.to_string()),
            (&upper_file, value.to_uppercase()),
        ] {
            std::fs::write(file, format!("{text}\n")).expect("secret");
            std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        }
    };
    let metrics = free_port();
    let base = std::fs::read_to_string(&s.config)
        .expect("config")
        .replace("info,mailtriage=debug", "trace");
    let use_password = |password: &str| {
        let cfg = base.replace("{env: UNUSED}", password);
        std::fs::write(&s.config, format!("metrics: 127.0.0.1:{metrics}\n{cfg}")).expect("cfg");
    };
    let mut places: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let trace = [("MAILTRIAGE_LOG", "trace")];

    // 1. {file: PATH}, as a running daemon: file everything, scrape metrics, look at the
    //    state files while the WAL is live.
    write_secret(SECRET);
    use_password(&format!("{{file: {}}}", secret_file.display()));
    let mut daemon = s.start(&trace);
    assert!(
        wait_count(&d, "alice", "INBOX", 0, Duration::from_secs(15)),
        "{}",
        daemon.log()
    );
    let scraped = poll(Duration::from_secs(5), || {
        scrape(metrics).filter(|t| t.contains("mailtriage_messages_filed_total"))
    })
    .unwrap_or_else(|| panic!("no metrics:\n{}", daemon.log()));
    places.insert("metrics".into(), scraped.into_bytes());
    state_files(&s.state, &mut places, "while running:");
    assert!(daemon
        .term(Duration::from_secs(10))
        .is_some_and(|st| st.success()));

    // 2. {command: ...}: a successful run with new mail, then wrong secrets both ways.
    d.deliver(
        "alice",
        "INBOX",
        &message("sec-cmd", "Quote", "A quote please"),
    );
    use_password(&format!(
        "{{command: \"tr A-Z a-z < {}\"}}",
        upper_file.display()
    ));
    let (status, _) = s.run_once(&trace);
    assert!(status.success(), "{}", s.log_text());
    assert!(wait_count(&d, "alice", "INBOX", 0, Duration::from_secs(5)));
    write_secret(WRONG);
    let (status, log) = s.run_once(&trace);
    assert!(!status.success(), "{log}");
    assert!(log.contains("login refused"), "{log}");
    use_password(&format!("{{file: {}}}", secret_file.display()));
    let (status, log) = s.run_once(&trace);
    assert!(!status.success(), "{log}");
    assert!(log.contains("login refused"), "{log}");

    // 3. Everything a person or a program can read afterwards.
    places.insert("log".into(), s.log_text().into_bytes());
    state_files(&s.state, &mut places, "after:");
    places.insert("check".into(), check(&s.config).1.into_bytes());
    for args in [
        vec!["history", "--format", "json", "--limit", "0"],
        vec!["history"],
        vec!["stats"],
        vec!["stats", "--format", "json"],
    ] {
        places.insert(args.join(" "), mailtriage(&args, &s.state));
    }
    for id in ids.iter().map(String::as_str).chain(["sec-cmd"]) {
        let mid = format!("<{id}@test.example>");
        for format in ["text", "json"] {
            let out = mailtriage(
                &["explain", "--message-id", &mid, "--format", format],
                &s.state,
            );
            assert!(
                String::from_utf8_lossy(&out).contains("Mark Johnson")
                    || String::from_utf8_lossy(&out).contains("Sarah Williams"),
                "explain {mid}: {}",
                String::from_utf8_lossy(&out)
            );
            places.insert(format!("explain {mid} {format}"), out);
        }
    }
    assert!(
        places.keys().any(|k| k.ends_with("-wal")),
        "the WAL was looked at: {:?}",
        places.keys()
    );
    let trace_lines = places["log"]
        .split(|&b| b == b'\n')
        .filter(|l| String::from_utf8_lossy(l).contains("TRACE"))
        .count();
    assert!(trace_lines > 0, "the log is at trace level");
    for (place, bytes) in &places {
        // Either case: the upper-cased form is only ever in our own file.
        let text = String::from_utf8_lossy(bytes).to_ascii_lowercase();
        for secret in [SECRET, WRONG] {
            assert!(!text.contains(secret), "{secret} found in {place}");
        }
    }
}

// ---------------------------------------------------------------------------------
// 5. File modes
// ---------------------------------------------------------------------------------

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

fn companion(state: &Path, suffix: &str) -> PathBuf {
    let mut p = state.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

#[test]
fn state_file_wal_and_shm_are_private_even_under_umask_000() {
    let d = Dovecot::start(DovecotOptions::default());
    d.deliver(
        "alice",
        "INBOX",
        &message("mode1", "Quote", "A quote please"),
    );
    let s = Setup::imap(
        &d,
        Conf {
            profile: root().join("profiles/hottub.yaml"),
            user: "alice",
            password_env: "PW",
            extra: "    backfill: all\n",
        },
    );
    // The most permissive umask: every file the daemon makes would be world-writable
    // unless it chooses the mode itself.
    let log = std::fs::File::create(&s.log).expect("log");
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("umask 000 && exec \"$0\" run --config \"$1\"")
        .arg(env!("CARGO_BIN_EXE_mailtriage"))
        .arg(&s.config)
        .env("PW", "alicepw")
        .env_remove("MAILTRIAGE_LOG")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("starts");
    let filed = wait_count(&d, "alice", "INBOX", 0, Duration::from_secs(15));
    let files = ["", "-wal", "-shm", ".lock"].map(|sfx| companion(&s.state, sfx));
    let present = poll(Duration::from_secs(5), || {
        files.iter().all(|f| f.exists()).then_some(())
    });
    let modes: Vec<(String, u32)> = files
        .iter()
        .filter(|f| f.exists())
        .map(|f| (f.display().to_string(), mode(f)))
        .collect();
    let state_dir = mode(s.state.parent().expect("dir"));
    let _ = child.kill();
    let _ = child.wait();
    assert!(filed, "{}", s.log_text());
    assert!(present.is_some(), "missing companions: {modes:?}");
    for (file, m) in &modes {
        assert_eq!(*m, 0o600, "{file} is {m:o}");
    }
    assert_eq!(
        state_dir & 0o077,
        0,
        "the state directory the daemon created is {state_dir:o}"
    );
}

#[test]
fn world_readable_secret_file_gets_a_warning_private_one_does_not() {
    let d = Dovecot::start(DovecotOptions::default());
    let s = Setup::imap(
        &d,
        Conf {
            profile: root().join("profiles/hottub.yaml"),
            user: "alice",
            password_env: "UNUSED",
            extra: "",
        },
    );
    let secret_file = s.dir.path().join("imap-password");
    std::fs::write(&secret_file, "alicepw\n").expect("secret");
    let cfg = std::fs::read_to_string(&s.config).expect("config").replace(
        "{env: UNUSED}",
        &format!("{{file: {}}}", secret_file.display()),
    );
    std::fs::write(&s.config, cfg).expect("config");
    let shown = secret_file.display().to_string();
    for (m, warned) in [(0o644, true), (0o600, false)] {
        std::fs::set_permissions(&secret_file, std::fs::Permissions::from_mode(m)).expect("chmod");
        let (status, log) = s.run_once(&[]);
        assert!(status.success(), "{m:o}:\n{log}");
        let warning = log
            .lines()
            .find(|l| l.contains("WARN") && l.contains(&shown) && l.contains("chmod 600"));
        assert_eq!(warning.is_some(), warned, "mode {m:o}:\n{log}");
    }
}

/// Regression: the cap on protocol libraries' logging (`WIRE_LEVEL_CRATES`) was added as
/// `async_imap=info`, which a more specific directive outranked:
/// `MAILTRIAGE_LOG=async_imap::imap_stream=trace` logged `LOGIN "alice" "PASSWORD"`.
#[test]
fn wire_level_cap_holds_against_a_more_specific_log_directive() {
    let d = Dovecot::start(DovecotOptions::default());
    let s = Setup::imap(
        &d,
        Conf {
            profile: root().join("profiles/hottub.yaml"),
            user: "alice",
            password_env: "PW",
            extra: "",
        },
    );
    for filter in [
        "trace,async_imap::imap_stream=trace",
        "info,async_imap::imap_stream=trace,imap_proto::parser=trace",
    ] {
        let (status, log) = s.run_once(&[("PW", "alicepw"), ("MAILTRIAGE_LOG", filter)]);
        assert!(status.success(), "{log}");
        let leaked: Vec<&str> = log.lines().filter(|l| l.contains("alicepw")).collect();
        assert!(
            leaked.is_empty(),
            "MAILTRIAGE_LOG={filter} leaks: {leaked:?}"
        );
    }
}
