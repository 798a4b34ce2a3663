//! Where a busy-calendar feed may lead the daemon (issue 19), proven against the real
//! binary and real HTTP and HTTPS servers on 127.0.0.1 (README "Busy calendars"):
//!
//! 1. A redirect never goes from https down to plain http — the reported case, an
//!    https feed sending the daemon to `http://127.0.0.1:…` on every refresh.
//! 2. A redirect never reaches another host that is loopback or private, whether it is
//!    written as an IP address (refused by the redirect policy) or as a name that
//!    resolves there (refused by the resolver when connecting).
//! 3. A feed on a loopback address keeps working, redirects within its own host
//!    included, and no `Referer` carries the feed's secret address along.
//! 4. Five redirects are followed, a sixth is not.
//! 5. A calendar over 16 MiB is refused with a clear error, whether its length is
//!    announced or not.
//! 6. The daemon keeps running and treats a refused feed as unreadable: the provider
//!    counts as free within their hours.
//! 7. OAuth's HTTP client follows no redirect at all.
//!
//! Errors and logs never show a feed's path, query or user name (they carry secrets).
//!
//! Tests may only use loopback, so "another host" is this machine under another name: a
//! feed configured as `localhost` redirects to `127.0.0.1`, or the other way round. To
//! the daemon those are different hosts, exactly as a remote host and 127.0.0.1 are;
//! this works wherever `localhost` resolves, unlike binding 127.0.0.2. The HTTPS servers
//! present a certificate from a throwaway CA, valid for both names, which the binary
//! trusts through `SSL_CERT_FILE` (read by rustls-native-certs).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_rustls::rustls;

use super::daemon::{root, Conf, Setup};
use super::harness::{make_certs, poll, Dovecot, DovecotOptions, TempDir};

// ---------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------

/// Parts of the feed addresses that are secrets: none may reach an error or a log.
const SECRETS: [&str; 4] = ["feeduser", "s3cr3t-pw", "private-3f9a", "s3cr3t-token"];
/// A secret path and query, as calendar services put in their feed addresses.
const SECRET_PATH: &str = "private-3f9a/basic.ics?token=s3cr3t-token";

/// A feed address whose path and query are secrets, and over https its user name and
/// password too (the profile takes plain http only to a bare loopback host).
fn secret_feed(scheme: &str, host: &str, port: u16) -> String {
    match scheme {
        "https" => format!("https://feeduser:s3cr3t-pw@{host}:{port}/{SECRET_PATH}"),
        _ => format!("{scheme}://{host}:{port}/{SECRET_PATH}"),
    }
}

fn assert_no_secret(text: &str) {
    for s in SECRETS {
        assert!(!text.contains(s), "`{s}` leaked:\n{text}");
    }
}

/// A throwaway CA and a server certificate for `localhost` and `127.0.0.1`.
struct Certs {
    dir: TempDir,
    ca: PathBuf,
}

impl Certs {
    fn new() -> Certs {
        let dir = TempDir::new("feed-tls");
        let ca = make_certs(&dir.path().join("tls"), &["localhost", "127.0.0.1"]);
        Certs { dir, ca }
    }

    fn server_config(&self) -> Arc<rustls::ServerConfig> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let tls = self.dir.path().join("tls");
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(tls.join("server.pem"))
                .and_then(|certs| certs.collect())
                .expect("server.pem");
        let key = PrivateKeyDer::from_pem_file(tls.join("server.key")).expect("server.key");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("server certificate");
        Arc::new(config)
    }
}

/// One scripted answer of a [`Web`] server.
#[derive(Clone)]
struct Answer {
    status: u16,
    location: Option<String>,
    body: Arc<Vec<u8>>,
    /// Send `Content-Length` (otherwise the body ends when the connection closes).
    announce_length: bool,
}

impl Answer {
    /// Nancy's calendar: away all Wednesday 4 March 2026.
    fn calendar() -> Answer {
        let ics = std::fs::read(root().join("profiles/calendars/nancy.ics")).expect("nancy.ics");
        Answer {
            status: 200,
            location: None,
            body: Arc::new(ics),
            announce_length: true,
        }
    }

    fn redirect(status: u16, to: &str) -> Answer {
        Answer {
            status,
            location: Some(to.to_string()),
            body: Arc::new(Vec::new()),
            announce_length: true,
        }
    }

    /// A calendar of `size` bytes (a valid one, padded with a long description).
    fn huge(size: usize, announce_length: bool) -> Answer {
        let mut body = b"BEGIN:VCALENDAR\r\nX-PADDING:".to_vec();
        body.resize(size, b'x');
        Answer {
            status: 200,
            location: None,
            body: Arc::new(body),
            announce_length,
        }
    }
}

/// A small HTTP/1.1 server on 127.0.0.1, plain or over TLS: answers each request with
/// the next scripted answer (repeating the last) and keeps every request's head.
struct Web {
    port: u16,
    heads: Arc<Mutex<Vec<String>>>,
}

impl Web {
    fn plain(script: Vec<Answer>) -> Web {
        Web::start(None, script)
    }

    fn tls(certs: &Certs, script: Vec<Answer>) -> Web {
        Web::start(Some(certs.server_config()), script)
    }

    fn start(tls: Option<Arc<rustls::ServerConfig>>, script: Vec<Answer>) -> Web {
        assert!(!script.is_empty(), "a server needs at least one answer");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local address").port();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let seen = heads.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(tcp) = conn else { break };
                serve(tcp, tls.clone(), &script, &seen);
            }
        });
        Web { port, heads }
    }

    /// Requests answered so far.
    fn hits(&self) -> usize {
        self.heads.lock().expect("heads").len()
    }

    /// The head of every request so far, oldest first.
    fn heads(&self) -> Vec<String> {
        self.heads.lock().expect("heads").clone()
    }
}

/// One connection: one request, one answer, then close (after TLS close_notify).
fn serve(
    tcp: TcpStream,
    tls: Option<Arc<rustls::ServerConfig>>,
    script: &[Answer],
    heads: &Mutex<Vec<String>>,
) {
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = tcp.set_write_timeout(Some(Duration::from_secs(10)));
    match tls {
        None => exchange(tcp, script, heads),
        Some(config) => {
            let Ok(conn) = rustls::ServerConnection::new(config) else {
                return;
            };
            let mut stream = rustls::StreamOwned::new(conn, tcp);
            exchange(&mut stream, script, heads);
            stream.conn.send_close_notify();
            let _ = stream.conn.complete_io(&mut stream.sock);
        }
    }
}

fn exchange(mut stream: impl Read + Write, script: &[Answer], heads: &Mutex<Vec<String>>) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let n = {
        let mut heads = heads.lock().expect("heads");
        heads.push(String::from_utf8_lossy(&head).into_owned());
        heads.len() - 1
    };
    let a = &script[n.min(script.len() - 1)];
    let mut out = format!("HTTP/1.1 {} X\r\nConnection: close\r\n", a.status);
    if let Some(to) = &a.location {
        out.push_str(&format!("Location: {to}\r\n"));
    }
    if a.announce_length {
        out.push_str(&format!("Content-Length: {}\r\n", a.body.len()));
    }
    out.push_str("Content-Type: text/calendar\r\n\r\n");
    // The client may hang up mid-body (an oversized calendar): not an error here.
    let _ = stream
        .write_all(out.as_bytes())
        .and_then(|()| stream.write_all(&a.body))
        .and_then(|()| stream.flush());
}

/// The clinic profile with Nancy's busy calendar at `feed` (Marcus's stays a file), in a
/// directory of its own; returns the directory and the profile's path.
fn clinic_with_feed(feed: &str) -> (TempDir, PathBuf) {
    let dir = TempDir::new("clinic-feed");
    let cals = dir.path().join("calendars");
    std::fs::create_dir_all(&cals).expect("calendars dir");
    std::fs::copy(
        root().join("profiles/calendars/marcus.ics"),
        cals.join("marcus.ics"),
    )
    .expect("copy marcus.ics");
    let clinic = std::fs::read_to_string(root().join("profiles/clinic.yaml"))
        .expect("clinic.yaml")
        .replace(
            "busy_calendar: calendars/nancy.ics",
            &format!("busy_calendar: \"{feed}\""),
        );
    let profile = dir.path().join("clinic.yaml");
    std::fs::write(&profile, clinic).expect("write profile");
    (dir, profile)
}

/// `mailtriage check` on a clinic profile whose Nancy reads `feed`, trusting only the
/// test CA; returns its line about Nancy's busy calendar (the whole output checked for
/// secrets).
fn check_feed(feed: &str, certs: &Certs) -> String {
    let (_dir, profile) = clinic_with_feed(feed);
    let out = Command::new(env!("CARGO_BIN_EXE_mailtriage"))
        .arg("check")
        .arg(&profile)
        .env("SSL_CERT_FILE", &certs.ca)
        .env_remove("SSL_CERT_DIR")
        .output()
        .expect("mailtriage runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert_no_secret(&text);
    text.lines()
        .find(|l| l.contains("busy calendar") && !l.contains("marcus.ics"))
        .unwrap_or_else(|| panic!("no line about Nancy's calendar:\n{text}"))
        .trim()
        .to_string()
}

fn assert_unreadable(line: &str, why: &str) {
    assert!(
        line.starts_with("busy calendar UNREADABLE:")
            && line.contains(why)
            && line.ends_with("(treated as free)"),
        "expected an unreadable calendar because {why:?}, got:\n{line}"
    );
}

// ---------------------------------------------------------------------------------
// 1-2. No way down to plain http, none into another host on this machine
// ---------------------------------------------------------------------------------

/// Issue 19 as reported: an https feed redirects to plain http on 127.0.0.1, where
/// something answers. The daemon followed it (plain http "to this machine" was allowed
/// after any redirect); now the redirect is refused and named without its secrets.
#[test]
fn an_https_feed_redirecting_to_plain_http_on_loopback_is_refused() {
    let certs = Certs::new();
    let inside = Web::plain(vec![Answer::calendar()]);
    let to = format!("http://127.0.0.1:{}/{SECRET_PATH}", inside.port);
    let feed = Web::tls(&certs, vec![Answer::redirect(302, &to)]);
    let line = check_feed(&secret_feed("https", "localhost", feed.port), &certs);
    assert_unreadable(
        &line,
        &format!(
            "refused a redirect to http://127.0.0.1:{}/…: it would go from https to plain http",
            inside.port
        ),
    );
    assert_eq!(feed.hits(), 1, "the feed itself is fetched");
    assert_eq!(inside.hits(), 0, "the redirect was followed: {line}");
}

/// A redirect to another host that is loopback, over https: as an IP literal (the feed
/// is `localhost`, the redirect goes to `127.0.0.1`), and as a name that resolves to
/// loopback (the feed is `127.0.0.1`, the redirect goes to `localhost`).
#[test]
fn an_https_feed_redirecting_to_another_loopback_host_is_refused() {
    let certs = Certs::new();
    let inside = Web::tls(&certs, vec![Answer::calendar()]);
    let cases = [
        (
            "localhost",
            "127.0.0.1",
            "refused a redirect to https://127.0.0.1:PORT/…: 127.0.0.1 is a loopback, private or link-local address, and not the feed's own host",
        ),
        (
            "127.0.0.1",
            "localhost",
            "refused to connect to localhost: it resolves to 127.0.0.1, a loopback, private or link-local address, and it is not the feed's own host",
        ),
    ];
    for (feed_host, other_host, why) in cases {
        let to = format!("https://{other_host}:{}/{SECRET_PATH}", inside.port);
        let feed = Web::tls(&certs, vec![Answer::redirect(302, &to)]);
        let line = check_feed(&secret_feed("https", feed_host, feed.port), &certs);
        assert_unreadable(&line, &why.replace("PORT", &inside.port.to_string()));
        assert_eq!(feed.hits(), 1, "{feed_host}: the feed itself is fetched");
        assert_eq!(
            inside.hits(),
            0,
            "{feed_host} → {other_host} followed: {line}"
        );
    }
}

// ---------------------------------------------------------------------------------
// 3. A loopback feed keeps working within its own host
// ---------------------------------------------------------------------------------

/// A feed on this machine (the daemon's own tests, a local calendar proxy) may redirect
/// within its own host, over http or https. The redirected request carries no
/// `Referer`: it would hand the feed's secret address to wherever the redirect points.
#[test]
fn a_loopback_feed_may_redirect_within_its_own_host_without_a_referer() {
    let certs = Certs::new();
    let plain = Web::plain(vec![
        Answer::redirect(301, "/moved/basic.ics"),
        Answer::calendar(),
    ]);
    let secure = Web::tls(
        &certs,
        vec![
            Answer::redirect(307, "/moved/basic.ics"),
            Answer::calendar(),
        ],
    );
    for (web, feed) in [
        (&plain, secret_feed("http", "127.0.0.1", plain.port)),
        (&secure, secret_feed("https", "localhost", secure.port)),
    ] {
        let line = check_feed(&feed, &certs);
        assert!(
            line.contains("(2 busy time(s))"),
            "a redirect within the feed's own host must work:\n{line}"
        );
        let heads = web.heads();
        assert_eq!(heads.len(), 2, "{heads:#?}");
        assert!(heads[1].starts_with("GET /moved/basic.ics "), "{heads:#?}");
        assert!(
            !heads[1].to_ascii_lowercase().contains("\r\nreferer:"),
            "the secret address went along as a Referer:\n{}",
            heads[1]
        );
    }
}

// ---------------------------------------------------------------------------------
// 4-5. Limits: redirects and size
// ---------------------------------------------------------------------------------

/// Five redirects are followed, the sixth is refused and says so.
#[test]
fn five_redirects_are_followed_and_a_sixth_is_refused() {
    let certs = Certs::new();
    let hop = || Answer::redirect(302, "/next.ics");
    let five = Web::plain(vec![hop(), hop(), hop(), hop(), hop(), Answer::calendar()]);
    let line = check_feed(&secret_feed("http", "127.0.0.1", five.port), &certs);
    assert!(line.contains("(2 busy time(s))"), "{line}");
    assert_eq!(five.hits(), 6);

    let endless = Web::plain(vec![hop()]);
    let line = check_feed(&secret_feed("http", "127.0.0.1", endless.port), &certs);
    assert_unreadable(
        &line,
        &format!(
            "refused a redirect to http://127.0.0.1:{}/…: more than 5 redirects",
            endless.port
        ),
    );
    assert_eq!(endless.hits(), 6, "the first request and 5 redirects");
}

/// A calendar over 16 MiB is refused with an error that says what the limit is, both
/// when its length is announced (refused before reading) and when it is not (refused
/// once 16 MiB have been read).
#[test]
fn a_calendar_over_16_mib_is_refused_with_a_clear_error() {
    let certs = Certs::new();
    let size = 16 * 1024 * 1024 + 1;
    for announce_length in [true, false] {
        let web = Web::plain(vec![Answer::huge(size, announce_length)]);
        let line = check_feed(&secret_feed("http", "127.0.0.1", web.port), &certs);
        assert_unreadable(
            &line,
            &format!(
                "the calendar http://127.0.0.1:{}/… is larger than 16 MiB, the most a busy calendar may be; it was not read",
                web.port
            ),
        );
    }
    // Just under the limit is read (and found to hold no events).
    let web = Web::plain(vec![Answer::huge(size - 2, false)]);
    let line = check_feed(&secret_feed("http", "127.0.0.1", web.port), &certs);
    assert!(line.contains("(0 busy time(s))"), "{line}");
}

// ---------------------------------------------------------------------------------
// 6. The daemon
// ---------------------------------------------------------------------------------

const PW: (&str, &str) = ("MT_TEST_PASSWORD", "alicepw");

/// The daemon, given a feed that redirects into this machine, keeps running: the
/// refusal is logged (target named, secrets not), the calendar counts as unreadable and
/// Nancy as free. Had the redirect been followed, her calendar (away all Wednesday)
/// would have sent the Wednesday request to Marcus.
#[test]
fn the_daemon_keeps_running_and_treats_a_refused_feed_as_free() {
    let d = Dovecot::start(DovecotOptions::default());
    let certs = Certs::new();
    let inside = Web::tls(&certs, vec![Answer::calendar()]);
    let to = format!("https://127.0.0.1:{}/{SECRET_PATH}", inside.port);
    let feed = Web::tls(&certs, vec![Answer::redirect(302, &to)]);
    let (_pdir, profile) = clinic_with_feed(&secret_feed("https", "localhost", feed.port));
    let s = Setup::imap(
        &d,
        Conf {
            profile,
            user: "alice",
            password_env: PW.0,
            extra: "    backfill: all\n",
        },
    );
    let m: &[u8] = b"From: Pat Customer <pat@example.com>\r\nTo: info@sothismassage.ca\r\nSubject: Deep tissue\r\nDate: Mon, 2 Mar 2026 10:00:00 -0500\r\nMessage-ID: <refused-feed-1@test.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nDo you have availability for a deep tissue massage on Wednesday?\r\n";
    d.deliver("alice", "INBOX", m);
    let ca = certs.ca.display().to_string();
    let mut daemon = s.start(&[PW, ("SSL_CERT_FILE", &ca)]);
    let filed = poll(Duration::from_secs(30), || {
        d.messages("alice", "BOOKING/Nancy Reyes")
            .iter()
            .any(|m| String::from_utf8_lossy(&m.raw).contains("<refused-feed-1@test.example>"))
            .then_some(())
    });
    let log = daemon.log();
    assert!(filed.is_some(), "not filed to Nancy:\n{log}");
    assert!(daemon.running(), "the daemon stopped:\n{log}");
    assert!(
        log.contains(&format!(
            "refused a redirect to https://127.0.0.1:{}/…: 127.0.0.1 is a loopback",
            inside.port
        )) && log.contains("treating them as free within their hours"),
        "{log}"
    );
    assert_no_secret(&log);
    assert_eq!(feed.hits(), 1);
    assert_eq!(inside.hits(), 0, "the redirect was followed");
    assert!(daemon.term(Duration::from_secs(15)).is_some(), "{log}");
}

// ---------------------------------------------------------------------------------
// 7. OAuth
// ---------------------------------------------------------------------------------

/// The OAuth client (token and device endpoints) follows no redirect, not even within
/// its own host: a 307 would post the refresh token or authorization code again to
/// wherever it points. The redirect comes back as the answer, and oauth2 reports it as
/// an error.
#[test]
fn the_oauth_client_follows_no_redirect() {
    let elsewhere = Web::plain(vec![Answer::redirect(200, "")]);
    let to = format!("http://127.0.0.1:{}/token", elsewhere.port);
    let endpoint = Web::plain(vec![Answer::redirect(307, &to)]);
    let client = mailtriage::oauth::http_client().expect("OAuth HTTP client");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let status = rt
        .block_on(async {
            client
                .post(format!("http://127.0.0.1:{}/token", endpoint.port))
                .body("grant_type=refresh_token&refresh_token=r")
                .send()
                .await
        })
        .map(|r| r.status().as_u16());
    assert_eq!(status.ok(), Some(307));
    assert_eq!(elsewhere.hits(), 0);
}
