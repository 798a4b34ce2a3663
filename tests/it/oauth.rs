//! OAuth2 logins (issue 6) against a real Dovecot whose `oauth2` passdb checks every token
//! at the test provider's introspection endpoint: XOAUTH2 and OAUTHBEARER, refused tokens
//! with the server's error shown, the daemon refreshing tokens and surviving a revoked
//! refresh token, and `mailtriage auth` (loopback redirect with PKCE; device code).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mailtriage::config::{AuthKind, ImapConfig, SecretString, TlsMode};
use mailtriage::mailbox::imap::connect::{connect, tls_config, ConnectError};

use super::daemon::{message, root, wait_count, Conf, Setup};
use super::harness::{Dovecot, DovecotOptions, OauthProvider, SmtpSink, TempDir};

fn dovecot(p: &OauthProvider) -> Dovecot {
    Dovecot::start(DovecotOptions {
        oauth2_introspection: Some(p.url("/introspect")),
        ..DovecotOptions::default()
    })
}

fn imap(d: &Dovecot, user: &str, auth: AuthKind) -> ImapConfig {
    ImapConfig {
        host: "127.0.0.1".into(),
        port: d.port(),
        tls: TlsMode::None,
        user: user.into(),
        password: None,
        auth,
        oauth: None,
        ca_file: None,
        allow_insecure: false,
        timeout: Duration::from_secs(10),
    }
}

fn login(d: &Dovecot, user: &str, auth: AuthKind, token: &str) -> Result<(), ConnectError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let tls = tls_config(None).expect("tls");
        let mut s = connect(&imap(d, user, auth), &tls, &SecretString::new(token.into())).await?;
        let _ = s.logout().await;
        Ok(())
    })
}

#[test]
fn valid_tokens_log_in_with_xoauth2_and_oauthbearer() {
    let p = OauthProvider::start();
    let d = dovecot(&p);
    for auth in [AuthKind::Xoauth2, AuthKind::Oauthbearer] {
        let t = p.mint("alice", Duration::from_secs(60));
        login(&d, "alice", auth, &t).unwrap_or_else(|e| panic!("{auth:?}: {e}"));
    }
    assert!(
        p.seen("/introspect").len() >= 2,
        "Dovecot asked the introspection endpoint"
    );
}

#[test]
fn expired_revoked_and_other_users_tokens_are_refused_with_the_servers_error() {
    let p = OauthProvider::start();
    let d = dovecot(&p);
    let expired = p.mint("alice", Duration::from_millis(500));
    let revoked = p.mint("alice", Duration::from_secs(60));
    p.revoke_access(&revoked);
    let bobs = p.mint("bob", Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(700));
    for auth in [AuthKind::Xoauth2, AuthKind::Oauthbearer] {
        for (what, token) in [
            ("expired", &expired),
            ("revoked", &revoked),
            ("bob's", &bobs),
        ] {
            let e = match login(&d, "alice", auth, token) {
                Ok(()) => panic!("{auth:?}: {what} token accepted"),
                Err(e) => e,
            };
            let text = e.to_string();
            assert!(e.is_auth(), "{auth:?} {what}: not an auth refusal: {text}");
            // The server's JSON error from the SASL challenge is part of the message.
            assert!(
                text.contains("server said: {") && text.contains("status"),
                "{auth:?} {what}: {text}"
            );
            assert!(!text.contains(token.as_str()), "token leaked: {text}");
        }
    }
    // Bob's token is fine for bob.
    login(&d, "bob", AuthKind::Xoauth2, &bobs).expect("bob logs in with his token");
}

/// A config for the daemon or `mailtriage auth` with the test provider as a custom
/// OAuth2 provider (`flow`: `auth_url` or `device_url`).
fn oauth_setup(d: &Dovecot, p: &OauthProvider, auth: &str, flow: &str) -> Setup {
    let s = Setup::imap(
        d,
        Conf {
            profile: root().join("profiles/hottub.yaml"),
            user: "alice",
            password_env: "UNUSED",
            extra: "",
        },
    );
    let flow_url = match flow {
        "device" => format!("device_url: {}", p.url("/device")),
        _ => format!("auth_url: {}", p.url("/authorize")),
    };
    let yaml = format!(
        "state: {state}\nlog: {{level: \"info,mailtriage=debug\"}}\naccounts:\n  - name: test\n    profile: {profile}\n    imap:\n      host: 127.0.0.1\n      port: {port}\n      tls: none\n      user: alice\n      auth: {auth}\n      oauth: {{token_url: {token}, {flow_url}, client_id: mailtriage-test}}\n",
        state = s.state.display(),
        profile = root().join("profiles/hottub.yaml").display(),
        port = d.port(),
        token = p.url("/token"),
    );
    std::fs::write(&s.config, yaml).expect("write config");
    s
}

fn token_file(s: &Setup) -> PathBuf {
    s.state.parent().expect("state dir").join("oauth/test.json")
}

/// Stores a refresh token the way `mailtriage auth` does.
fn store_refresh(s: &Setup, p: &OauthProvider, refresh: &str) {
    let f = token_file(s);
    std::fs::create_dir_all(f.parent().expect("dir")).expect("mkdir");
    std::fs::write(
        &f,
        serde_json::json!({"refresh_token": refresh, "token_url": p.url("/token")}).to_string(),
    )
    .expect("write token file");
}

#[test]
fn the_daemon_refreshes_expired_and_refused_access_tokens_and_keeps_filing() {
    let p = OauthProvider::start();
    let mut d = dovecot(&p);
    let refresh = p.add_refresh("alice");
    p.set_access_ttl(Duration::from_secs(3));
    let s = oauth_setup(&d, &p, "xoauth2", "browser");
    store_refresh(&s, &p, &refresh);
    let daemon = s.start(&[]);
    assert!(
        daemon.wait_log("first start", Duration::from_secs(20)),
        "{}",
        daemon.log()
    );
    d.deliver(
        "alice",
        "INBOX",
        &message("oa1", "Quote", "A quote for a new hot tub please"),
    );
    let sales = "SALES/Mark Johnson";
    assert!(
        wait_count(&d, "alice", sales, 1, Duration::from_secs(15)),
        "{}",
        daemon.log()
    );
    assert_eq!(p.grants("refresh_token").len(), 1, "{}", daemon.log());

    // The access token expires while the session runs; the server drops the session;
    // the reconnect needs (and gets) a new access token.
    std::thread::sleep(Duration::from_secs(3));
    d.restart();
    d.deliver(
        "alice",
        "INBOX",
        &message("oa2", "Quote", "Another quote for a hot tub please"),
    );
    assert!(
        wait_count(&d, "alice", sales, 2, Duration::from_secs(30)),
        "{}",
        daemon.log()
    );
    assert!(p.grants("refresh_token").len() >= 2, "{}", daemon.log());

    // A still-fresh access token is refused by the server (revoked early): the daemon
    // fetches a new one at once and carries on.
    p.set_access_ttl(Duration::from_secs(3600));
    let refreshes = p.grants("refresh_token").len();
    // Make the cached token a long-lived one first.
    std::thread::sleep(Duration::from_secs(3));
    d.restart();
    d.deliver(
        "alice",
        "INBOX",
        &message("oa3", "Quote", "A third quote for a hot tub please"),
    );
    assert!(
        wait_count(&d, "alice", sales, 3, Duration::from_secs(30)),
        "{}",
        daemon.log()
    );
    p.revoke_all_access();
    let before_revoke = p.grants("refresh_token").len();
    assert!(before_revoke > refreshes, "{}", daemon.log());
    d.restart();
    d.deliver(
        "alice",
        "INBOX",
        &message("oa4", "Quote", "A fourth quote for a hot tub please"),
    );
    assert!(
        wait_count(&d, "alice", sales, 4, Duration::from_secs(30)),
        "{}",
        daemon.log()
    );
    let log = daemon.log();
    assert!(
        log.contains("fetching a new access token and trying again"),
        "{log}"
    );
    assert_eq!(p.grants("refresh_token").len(), before_revoke + 1, "{log}");
    assert!(!log.contains(&refresh), "refresh token in the log");
    assert!(!log.contains("at-issued-"), "access token in the log");
}

#[test]
fn a_revoked_refresh_token_asks_to_rerun_auth_without_a_crash_loop() {
    let p = OauthProvider::start();
    let d = dovecot(&p);
    let refresh = p.add_refresh("alice");
    p.revoke_refresh(&refresh);
    let s = oauth_setup(&d, &p, "oauthbearer", "browser");
    store_refresh(&s, &p, &refresh);
    let mut daemon = s.start(&[]);
    assert!(
        daemon.wait_log("re-run `mailtriage auth test`", Duration::from_secs(20)),
        "{}",
        daemon.log()
    );
    std::thread::sleep(Duration::from_secs(3));
    assert!(daemon.running(), "the daemon exited:\n{}", daemon.log());
    let log = daemon.log();
    assert_eq!(
        p.grants("refresh_token").len(),
        1,
        "retried at once instead of backing off:\n{log}"
    );
    assert!(log.contains("invalid_grant"), "{log}");
    assert!(log.contains("retrying in"), "{log}");
    assert!(!log.contains(&refresh), "refresh token in the log");
    assert_eq!(
        daemon.term(Duration::from_secs(10)).map(|s| s.success()),
        Some(true),
        "SIGTERM during the backoff exits 0"
    );
    // `run --once` reports the same and exits non-zero.
    let (status, once) = s.run_once(&[]);
    assert!(!status.success(), "{once}");
    assert!(once.contains("re-run `mailtriage auth test`"), "{once}");
}

/// `mailtriage auth test` as a child; its stdout lines arrive on the channel.
fn auth_command(s: &Setup) -> (Child, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailtriage"))
        .args(["auth", "test", "--timeout", "60s", "--config"])
        .arg(&s.config)
        .env_remove("MAILTRIAGE_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mailtriage auth starts");
    let out = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Waits for a stdout line satisfying `f`; returns it.
fn line_where(rx: &mpsc::Receiver<String>, f: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
            if f(&l) {
                return l;
            }
            seen.push(l);
        }
    }
    panic!("no such line in:\n{}", seen.join("\n"));
}

/// Waits for the child's exit; returns (success, stderr).
fn finish(mut child: Child) -> (bool, String) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            return (st.success(), err);
        }
        assert!(Instant::now() < deadline, "mailtriage auth did not finish");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The authorization URL's query parameters.
fn query(url: &str) -> std::collections::HashMap<String, String> {
    let u = oauth2::url::Url::parse(url.trim()).expect("a URL");
    u.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// What a browser does after consent: GET the redirect URI with code and state.
fn browser_redirect(redirect_uri: &str, code: &str, state: &str) -> String {
    let mut u = oauth2::url::Url::parse(redirect_uri).expect("redirect URI");
    assert_eq!(u.host_str(), Some("127.0.0.1"), "loopback redirect: {u}");
    u.query_pairs_mut()
        .append_pair("code", code)
        .append_pair("state", state);
    let port = u.port().expect("a port");
    let mut c = TcpStream::connect(("127.0.0.1", port)).expect("the loopback listener");
    write!(
        c,
        "GET {}?{} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n",
        u.path(),
        u.query().unwrap_or("")
    )
    .expect("send");
    let mut resp = String::new();
    let _ = c.read_to_string(&mut resp);
    resp
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o777
}

#[test]
fn auth_with_a_loopback_redirect_checks_pkce_and_stores_the_refresh_token() {
    let p = OauthProvider::start();
    let d = dovecot(&p);
    let s = oauth_setup(&d, &p, "xoauth2", "browser");
    let check = |s: &Setup| {
        let out = Command::new(env!("CARGO_BIN_EXE_mailtriage"))
            .arg("check")
            .arg(&s.config)
            .output()
            .expect("mailtriage check runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let before = check(&s);
    assert!(
        before.contains("account test: OAuth2 (http://127.0.0.1:")
            && before.contains("no refresh token yet: run `mailtriage auth test`"),
        "{before}"
    );
    let (child, rx) = auth_command(&s);
    let url = line_where(&rx, |l| l.trim_start().starts_with(&p.url("/authorize")));
    let q = query(&url);
    assert_eq!(
        q.get("code_challenge_method").map(String::as_str),
        Some("S256")
    );
    assert_eq!(
        q.get("client_id").map(String::as_str),
        Some("mailtriage-test")
    );
    assert_eq!(q.get("response_type").map(String::as_str), Some("code"));
    let (challenge, state, redirect) = (&q["code_challenge"], &q["state"], &q["redirect_uri"]);
    // A browser's favicon request is not the answer.
    let mut fav = TcpStream::connect((
        "127.0.0.1",
        oauth2::url::Url::parse(redirect)
            .expect("url")
            .port()
            .expect("port"),
    ))
    .expect("listener");
    write!(fav, "GET /favicon.ico HTTP/1.1\r\nHost: x\r\n\r\n").expect("send");
    let mut r = String::new();
    let _ = fav.read_to_string(&mut r);
    assert!(r.starts_with("HTTP/1.1 404"), "{r}");
    let code = p.add_code("alice", challenge, redirect);
    let page = browser_redirect(redirect, &code, state);
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    let (ok, err) = finish(child);
    assert!(ok, "{err}");
    line_where(&rx, |l| l.starts_with("Logged in to 127.0.0.1 as alice"));
    // The PKCE verifier matched the S256 challenge (the provider refuses otherwise).
    let exchanges = p.grants("authorization_code");
    assert_eq!(exchanges.len(), 1);
    assert!(exchanges[0].form.contains_key("code_verifier"));
    let f = token_file(&s);
    let stored: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&f).expect("token file")).expect("json");
    let rt = stored["refresh_token"].as_str().expect("refresh token");
    assert!(rt.starts_with("rt-issued-"), "{stored}");
    assert_eq!(mode(&f), 0o600);
    assert_eq!(mode(f.parent().expect("dir")), 0o700);
    assert!(!err.contains(rt));
    let after = check(&s);
    assert!(after.contains("refresh token stored in"), "{after}");
    assert!(!after.contains(rt), "{after}");
}

#[test]
fn auth_with_the_device_flow_waits_while_pending_and_slows_down() {
    let p = OauthProvider::start();
    let d = dovecot(&p);
    let s = oauth_setup(&d, &p, "oauthbearer", "device");
    p.script_device("alice", &["authorization_pending", "slow_down"]);
    let (child, rx) = auth_command(&s);
    line_where(&rx, |l| l.contains("WDJB-MJHT"));
    let (ok, err) = finish(child);
    assert!(ok, "{err}");
    let polls = p.grants("urn:ietf:params:oauth:grant-type:device_code");
    assert_eq!(polls.len(), 3, "pending, slow_down, success");
    let first_gap = polls[1].at - polls[0].at;
    let second_gap = polls[2].at - polls[1].at;
    assert!(
        first_gap >= Duration::from_millis(900),
        "polled faster than the interval: {first_gap:?}"
    );
    assert!(
        second_gap >= first_gap + Duration::from_secs(4),
        "slow_down did not lengthen the interval: {first_gap:?} then {second_gap:?}"
    );
    let device = p.seen("/device");
    assert_eq!(device.len(), 1);
    assert_eq!(
        device[0].form.get("client_id").map(String::as_str),
        Some("mailtriage-test")
    );
    assert!(token_file(&s).exists());
    line_where(&rx, |l| l.starts_with("Logged in to 127.0.0.1 as alice"));
}

#[test]
fn auth_with_the_device_flow_stops_when_access_is_denied() {
    let p = OauthProvider::start();
    let d = dovecot(&p);
    let s = oauth_setup(&d, &p, "xoauth2", "device");
    p.script_device("alice", &["authorization_pending", "access_denied"]);
    let (child, rx) = auth_command(&s);
    line_where(&rx, |l| l.contains("WDJB-MJHT"));
    let (ok, err) = finish(child);
    assert!(!ok);
    assert!(err.contains("declined"), "{err}");
    assert!(!token_file(&s).exists());
}

#[test]
fn a_destination_under_gmail_special_folders_is_never_filed_into() {
    let d = Dovecot::start(DovecotOptions::default());
    let dir = super::harness::TempDir::new("mt-gmail-dest");
    let profile = dir.path().join("gmail.yaml");
    let text = std::fs::read_to_string(root().join("profiles/hottub.yaml")).expect("profile");
    let text = text.replace(
        "folder: \"{category}/{member}\"",
        "folder: \"[Gmail]/{category}/{member}\"",
    );
    assert!(text.contains("[Gmail]/{category}"), "template replaced");
    std::fs::write(&profile, text).expect("write profile");
    let s = Setup::imap(
        &d,
        Conf {
            profile,
            user: "alice",
            password_env: "MT_TEST_PASSWORD",
            extra: "    backfill: all\n",
        },
    );
    let quote = message("gm1", "Quote", "A quote for a new hot tub please");
    d.deliver("alice", "INBOX", &quote);
    let (_, log) = s.run_once(&[("MT_TEST_PASSWORD", "alicepw")]);
    assert!(log.contains("never files there"), "{log}");
    assert_eq!(d.messages("alice", "INBOX").len(), 1, "{log}");
    assert!(
        !d.folders("alice").iter().any(|f| f.starts_with("[Gmail]")),
        "{:?}",
        d.folders("alice")
    );
}

/// `smtp.oauth_account`: mail the daemon sends logs in to SMTP with XOAUTH2, using the
/// account's stored refresh token (the SMTP server checks the access token at the same
/// provider); the SMTP server offers nothing else, so a password login could not pass.
#[test]
fn outgoing_mail_logs_in_with_xoauth2_using_the_accounts_token() {
    let p = OauthProvider::start();
    let d = dovecot(&p);
    let refresh = p.add_refresh("alice");
    let sink = SmtpSink::start_xoauth2(&p.url("/introspect"));
    let s = oauth_setup(&d, &p, "xoauth2", "browser");
    store_refresh(&s, &p, &refresh);
    // The hot tub profile with an acknowledgement, so a customer's message sends mail.
    let pdir = TempDir::new("oauth-smtp");
    let profile = pdir.path().join("hottub.yaml");
    let hottub = std::fs::read_to_string(root().join("profiles/hottub.yaml")).expect("profile");
    std::fs::write(
        &profile,
        format!("{hottub}\nacknowledgement:\n  template: \"Hello {{customer_name}}, {{member}} will answer.\"\n"),
    )
    .expect("write profile");
    let yaml = std::fs::read_to_string(&s.config).expect("config");
    let yaml = yaml.replace(
        &root().join("profiles/hottub.yaml").display().to_string(),
        &profile.display().to_string(),
    );
    std::fs::write(
        &s.config,
        format!(
            "{yaml}    backfill: all\nsmtp: {{host: 127.0.0.1, port: {}, tls: none, from: \"Triage <alerts@hottubman.ca>\", oauth_account: test}}\n",
            sink.port()
        ),
    )
    .expect("write config");
    d.deliver(
        "alice",
        "INBOX",
        &message("oas1", "Quote", "A quote for a new hot tub please"),
    );
    let (status, log) = s.run_once(&[]);
    assert!(status.success(), "{log}");
    let got = sink.wait_for(1, Duration::from_secs(10));
    assert_eq!(got.len(), 1, "{got:#?}\n{log}");
    assert!(got[0].text().contains("will answer"), "{}", got[0].raw);
    // The SMTP login used a token the provider issued from the stored refresh token.
    assert!(!p.grants("refresh_token").is_empty(), "{log}");
    assert!(!log.contains(&refresh), "the refresh token reached the log");
}
