//! Issue 19: what another local process, or a slip in the configuration, can do; proven
//! against the real binary on 127.0.0.1.
//!
//! - Password commands (`{command: ...}`): one that prints a mebibyte fails at once with
//!   a clear error (no pipe deadlock), one that hangs is killed after 30 s with
//!   everything it started, a normal one logs in, and the secret never reaches the log,
//!   not even from a command that echoes it on stderr.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::daemon::{root, Conf, Setup};
use super::harness::{free_port, run, Dovecot, DovecotOptions};

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
