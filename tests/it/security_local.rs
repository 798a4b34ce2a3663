//! Issue 19: what another local process, or a slip in the configuration, can do; proven
//! against the real binary on 127.0.0.1.
//!
//! - Password commands (`{command: ...}`): one that prints a mebibyte fails at once with
//!   a clear error (no pipe deadlock), one that hangs is killed after 30 s with
//!   everything it started, a normal one logs in, and the secret never reaches the log,
//!   not even from a command that echoes it on stderr.
//! - The loopback listener of `mailtriage auth`: a connection that says nothing, a
//!   redirect with the wrong state, a favicon and garbage neither block nor end the
//!   consent; the right redirect still completes it and the token is stored; the
//!   overall `--timeout` still ends a consent whose answer never comes.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::daemon::{root, Conf, Setup};
use super::harness::{free_port, run, Dovecot, DovecotOptions, OauthProvider};

// ---------------------------------------------------------------------------------
// Password commands
// ---------------------------------------------------------------------------------

/// A config for account `test` on 127.0.0.1:`port` whose IMAP password is `password`
/// (a `{command: ...}`), logging at trace level.
fn password_setup(port: u16, password: &str) -> Setup {
    let s = Setup::imap_port(
        port,
        Conf {
            profile: root().join("profiles/hottub.yaml"),
            user: "alice",
            password_env: "UNUSED",
            extra: "",
        },
    );
    let yaml = std::fs::read_to_string(&s.config)
        .expect("config")
        .replace("info,mailtriage=debug", "trace")
        .replace("{env: UNUSED}", password);
    std::fs::write(&s.config, yaml).expect("write config");
    s
}

/// `mailtriage run --once` at trace level, killed after `limit`: (success, log, time).
fn run_once(s: &Setup, limit: Duration) -> (bool, String, Duration) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mailtriage"));
    cmd.args(["run", "--once", "--config"])
        .arg(&s.config)
        .env("MAILTRIAGE_LOG", "trace");
    let started = Instant::now();
    let out = run(cmd, None, limit).unwrap_or_else(|e| panic!("{e}"));
    let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), out.stderr);
    (out.status.success(), log, started.elapsed())
}

/// A YAML string for a shell command (double-quoted: backslashes and quotes escaped).
fn yaml_command(cmd: &str) -> String {
    format!(
        "{{command: \"{}\"}}",
        cmd.replace('\\', "\\\\").replace('"', "\\\"")
    )
}

/// Issue 19: its stdout was read only after it exited, so a command printing more than
/// a pipe holds waited for ever on us (until the 30 s timeout, with the wrong reason).
#[test]
fn a_password_command_printing_a_mebibyte_fails_at_once_with_a_clear_error() {
    let s = password_setup(free_port(), &yaml_command("yes x | head -c 1048576"));
    let (ok, log, took) = run_once(&s, Duration::from_secs(20));
    assert!(!ok, "{log}");
    assert!(
        log.contains(
            "reading the IMAP password: the password command printed more than 64 KiB; a secret is a single line"
        ),
        "{log}"
    );
    assert!(took < Duration::from_secs(10), "took {took:?}:\n{log}");
}

/// True when process `pid` is gone or a zombie.
fn gone(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return true;
    };
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    matches!(state, Some("Z" | "X"))
}

/// Issue 19: the timeout killed the shell only; what it started (here a `sleep`, in
/// life `gpg` waiting for a pinentry) lived on, one more with every retry.
#[test]
fn a_password_command_over_its_timeout_is_killed_with_what_it_started() {
    let dir = super::harness::TempDir::new("pw-timeout");
    let pid_file = dir.path().join("sleep.pid");
    let s = password_setup(
        free_port(),
        &yaml_command(&format!(
            "echo 'waiting for the pinentry' >&2; sleep 300 & echo $! > '{}'; wait",
            pid_file.display()
        )),
    );
    let (ok, log, took) = run_once(&s, Duration::from_secs(90));
    assert!(!ok, "{log}");
    assert!(
        log.contains("the password command did not finish within 30s and was stopped; it said: waiting for the pinentry"),
        "{log}"
    );
    assert!(took >= Duration::from_secs(29), "took {took:?}:\n{log}");
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .expect("pid file")
        .trim()
        .parse()
        .expect("a pid");
    let dead = super::harness::poll(Duration::from_secs(5), || gone(pid).then_some(()));
    assert!(dead.is_some(), "the command's sleep {pid} is still running");
}

fn secret_file(dir: &Path, value: &str) -> PathBuf {
    let f = dir.join("imap-password");
    std::fs::write(&f, format!("{value}\n")).expect("secret");
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    f
}

/// A normal command still logs in; a command that echoes the secret on stderr too gets
/// no word of it into the log, whether it succeeds or fails; a failing command's own
/// error message is shown (it was thrown away).
#[test]
fn a_password_command_logs_in_and_its_secret_never_reaches_the_log() {
    const SECRET: &str = "kx9-local-secret-2207";
    let d = Dovecot::start(DovecotOptions {
        users: vec![("alice".into(), SECRET.into())],
        ..DovecotOptions::default()
    });
    let dir = super::harness::TempDir::new("pw-command");
    let file = secret_file(dir.path(), SECRET);
    // The secret is in the file only, never in the configuration.
    let good = password_setup(
        d.port(),
        &yaml_command(&format!(
            "cat '{f}'; echo \"debug: read $(cat '{f}')\" >&2",
            f = file.display()
        )),
    );
    let (ok, log, _) = run_once(&good, Duration::from_secs(60));
    assert!(ok, "{log}");
    assert!(log.contains("TRACE"), "the log is at trace level:\n{log}");
    assert!(!log.contains(SECRET), "the secret is in the log:\n{log}");

    let failing = password_setup(
        d.port(),
        &yaml_command(&format!(
            "cat '{f}'; echo \"gpg: decryption failed: no secret key for $(cat '{f}')\" >&2; exit 2",
            f = file.display()
        )),
    );
    let (ok, log, _) = run_once(&failing, Duration::from_secs(60));
    assert!(!ok, "{log}");
    assert!(
        log.contains("the password command failed (exit status: 2); it said: gpg: decryption failed: no secret key for <redacted>"),
        "{log}"
    );
    assert!(!log.contains(SECRET), "the secret is in the log:\n{log}");
}

// ---------------------------------------------------------------------------------
// The loopback listener of `mailtriage auth`
// ---------------------------------------------------------------------------------

/// A config whose account `test` logs in to 127.0.0.1:`imap_port` with XOAUTH2, the
/// test provider consenting through a browser and a loopback redirect.
fn auth_setup(imap_port: u16, p: &OauthProvider) -> Setup {
    let profile = root().join("profiles/hottub.yaml");
    let s = Setup::imap_port(
        imap_port,
        Conf {
            profile: profile.clone(),
            user: "alice",
            password_env: "UNUSED",
            extra: "",
        },
    );
    let yaml = format!(
        "state: {state}\naccounts:\n  - name: test\n    profile: {profile}\n    imap:\n      host: 127.0.0.1\n      port: {imap_port}\n      tls: none\n      user: alice\n      auth: xoauth2\n      oauth: {{token_url: {token}, auth_url: {auth}, client_id: mailtriage-test}}\n",
        state = s.state.display(),
        profile = profile.display(),
        token = p.url("/token"),
        auth = p.url("/authorize"),
    );
    std::fs::write(&s.config, yaml).expect("write config");
    s
}

/// `mailtriage auth test --timeout TIMEOUT` with its stdout lines on a channel.
struct Auth {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Auth {
    fn start(s: &Setup, timeout: &str) -> Auth {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mailtriage"))
            .args(["auth", "test", "--timeout", timeout, "--config"])
            .arg(&s.config)
            .env_remove("MAILTRIAGE_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("mailtriage auth starts");
        let out = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Auth {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits (up to 30 s) for a stdout line satisfying `f`.
    fn line_where(&mut self, f: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        if let Some(l) = self.seen.iter().find(|l| f(l)) {
            return l.clone();
        }
        while Instant::now() < deadline {
            if let Ok(l) = self.lines.recv_timeout(Duration::from_millis(100)) {
                self.seen.push(l.clone());
                if f(&l) {
                    return l;
                }
            }
        }
        panic!("no such line in:\n{}", self.seen.join("\n"));
    }

    /// The authorization URL's query parameters.
    fn authorization(&mut self, p: &OauthProvider) -> HashMap<String, String> {
        let url = self.line_where(|l| l.trim_start().starts_with(&p.url("/authorize")));
        oauth2::url::Url::parse(url.trim())
            .expect("a URL")
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    /// Waits (up to `within`) for the exit; returns (success, stdout and stderr).
    fn finish(mut self, within: Duration) -> (bool, String) {
        let deadline = Instant::now() + within;
        let status = loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                break st;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "mailtriage auth still running after {within:?}:\n{}",
                    self.seen.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        self.seen.extend(self.lines.try_iter());
        (status.success(), format!("{}\n{err}", self.seen.join("\n")))
    }
}

fn port_of(redirect_uri: &str) -> u16 {
    let u = oauth2::url::Url::parse(redirect_uri).expect("redirect URI");
    assert_eq!(u.host_str(), Some("127.0.0.1"), "loopback redirect: {u}");
    u.port().expect("a port")
}

/// Sends `request` to the listener; its answer, which must come within 3 s.
fn ask(port: u16, request: &str) -> String {
    let mut c = TcpStream::connect(("127.0.0.1", port)).expect("the loopback listener");
    c.set_read_timeout(Some(Duration::from_secs(3)))
        .expect("read timeout");
    c.write_all(request.as_bytes()).expect("send");
    let mut answer = Vec::new();
    if let Err(e) = c.read_to_end(&mut answer) {
        panic!(
            "no complete answer within 3 s ({e}); got {:?}",
            String::from_utf8_lossy(&answer)
        );
    }
    String::from_utf8_lossy(&answer).into_owned()
}

/// What a browser sends after consent: GET / with code and state.
fn redirect(port: u16, code: &str, state: &str) -> String {
    let mut u = oauth2::url::Url::parse("http://127.0.0.1/").expect("url");
    u.query_pairs_mut()
        .append_pair("code", code)
        .append_pair("state", state);
    format!(
        "GET /?{} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: test\r\nConnection: close\r\n\r\n",
        u.query().unwrap_or_default()
    )
}

/// Connections that hold the listener's attention: one that says nothing, one that
/// stops halfway through its request line.
fn stallers(port: u16) -> Vec<TcpStream> {
    let silent = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let mut half = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    half.write_all(b"GET /?code=").expect("send");
    vec![silent, half]
}

/// Issue 19: the listener served one connection at a time (a silent one held it for
/// 10 s), and one redirect with the wrong state ended the whole consent.
#[test]
fn auth_survives_silent_connections_and_a_wrong_state_and_stores_the_token() {
    let p = OauthProvider::start();
    let d = Dovecot::start(DovecotOptions {
        oauth2_introspection: Some(p.url("/introspect")),
        ..DovecotOptions::default()
    });
    let s = auth_setup(d.port(), &p);
    let mut auth = Auth::start(&s, "60s");
    let q = auth.authorization(&p);
    let (challenge, state, redirect_uri) = (&q["code_challenge"], &q["state"], &q["redirect_uri"]);
    let port = port_of(redirect_uri);
    let _stalled = stallers(port);

    // A stale tab's redirect, bound to this very challenge: refused, not exchanged.
    let stale = p.add_code("alice", challenge, redirect_uri);
    let answer = ask(port, &redirect(port, &stale, "state-of-an-earlier-run"));
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("does not belong"), "{answer}");
    auth.line_where(|l| l.contains("still waiting for the right one"));
    let answer = ask(port, "GET /favicon.ico HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    let answer = ask(port, "BREW /pot HTCPCP/1.0\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(
        p.grants("authorization_code").is_empty(),
        "a code was exchanged"
    );

    // The browser's real redirect, while the silent connections are still open.
    let code = p.add_code("alice", challenge, redirect_uri);
    let page = ask(port, &redirect(port, &code, state));
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("text/html") && page.contains("You can close this window"));
    let (ok, output) = auth.finish(Duration::from_secs(30));
    assert!(ok, "{output}");
    assert!(
        output.contains("Logged in to 127.0.0.1 as alice"),
        "{output}"
    );
    let exchanged = p.grants("authorization_code");
    assert_eq!(exchanged.len(), 1, "only the right code is exchanged");
    assert_eq!(exchanged[0].form.get("code"), Some(&code));
    let token_file = s.state.parent().expect("state dir").join("oauth/test.json");
    let stored: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&token_file).expect("token file"))
            .expect("json");
    let refresh = stored["refresh_token"].as_str().expect("refresh token");
    assert!(refresh.starts_with("rt-issued-"), "{stored}");
    for secret in [refresh, &code, &stale] {
        assert!(
            !output.contains(secret),
            "{secret} in the output:\n{output}"
        );
    }
    assert!(!output.contains("at-issued-"), "access token in the output");
}

/// The overall deadline still ends a consent whose answer never comes, and says what
/// was refused meanwhile.
#[test]
fn auth_without_the_right_redirect_ends_at_its_timeout_with_a_clear_error() {
    let p = OauthProvider::start();
    // Never connected to: the consent ends before any login.
    let s = auth_setup(free_port(), &p);
    let started = Instant::now();
    let mut auth = Auth::start(&s, "3s");
    let q = auth.authorization(&p);
    let port = port_of(&q["redirect_uri"]);
    let _stalled = stallers(port);
    let forged = p.add_code("alice", &q["code_challenge"], &q["redirect_uri"]);
    let answer = ask(port, &redirect(port, &forged, "forged-state"));
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    let (ok, output) = auth.finish(Duration::from_secs(20));
    assert!(!ok, "{output}");
    assert!(
        output.contains("error: no answer from the browser within 3 seconds (a redirect with the wrong state was refused"),
        "{output}"
    );
    assert!(output.contains("run the command again"), "{output}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert!(
        p.grants("authorization_code").is_empty(),
        "a code was exchanged"
    );
    assert!(!s
        .state
        .parent()
        .expect("dir")
        .join("oauth/test.json")
        .exists());
    assert!(!output.contains(&forged), "{output}");
}
