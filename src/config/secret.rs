//! Secrets (passwords, tokens): referenced from the configuration, resolved only when a
//! connection needs them, and never printed — `SecretString` has no `Display` and its
//! `Debug` is redacted, so a secret cannot reach a log line or an error by accident.
//!
//! Resolving is async: a password command (`sh -c`) runs as a child process the runtime
//! waits on, and a secret file is read on the blocking pool, so a slow `pass` or `gpg`
//! never holds up a runtime worker (IMAP sessions, SMTP, OAuth2 refreshes). A command
//! may print at most 64 KiB and run at most 30 s; it is killed with everything it
//! started when it goes over either, or when the caller gives up (shutdown).

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Where a secret comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Secret {
    /// An environment variable (its name).
    Env(String),
    /// The first line of a file.
    File(PathBuf),
    /// The first line printed by `sh -c COMMAND` (at most 64 KiB of output, within 30 s).
    Command(String),
    /// A value written in the configuration (only for non-secrets such as an OAuth client id).
    Literal(String),
}

/// A resolved secret. Deliberately not `Display`; `Debug` prints `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl SecretString {
    /// Wraps a value known to be secret.
    pub fn new(s: String) -> Self {
        SecretString(s)
    }

    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// How much a password command may print and how long it may run.
#[derive(Debug, Clone, Copy)]
struct Limits {
    /// Most bytes on stdout: a secret is a single line, so anything bigger is a mistake
    /// (`cat` of the wrong file, a command that never stops printing).
    output: usize,
    /// How long it may run, output included.
    timeout: Duration,
}

/// The limits of every password command.
const COMMAND_LIMITS: Limits = Limits {
    output: 64 * 1024,
    timeout: Duration::from_secs(30),
};

/// Most bytes of a password command's stderr kept for an error message; the rest is read
/// and dropped, so a chatty command never blocks on a full pipe.
const STDERR_KEPT: usize = 4 * 1024;

/// Most characters of stderr quoted in an error message.
const STDERR_SHOWN: usize = 300;

fn first_line(s: &str) -> String {
    s.lines()
        .next()
        .unwrap_or_default()
        .trim_end_matches('\r')
        .to_string()
}

impl Secret {
    /// Where the secret comes from, for messages (never the value).
    pub fn describe(&self) -> String {
        match self {
            Secret::Env(v) => format!("environment variable {v}"),
            Secret::File(p) => format!("file {}", p.display()),
            Secret::Command(_) => "password command".to_string(),
            Secret::Literal(_) => "the configuration".to_string(),
        }
    }

    /// Reads the secret now: the file on the blocking pool, the command as a child
    /// process, so no runtime worker waits on either.
    pub async fn resolve(&self) -> Result<SecretString> {
        let value = match self {
            Secret::Literal(v) => v.clone(),
            Secret::Env(var) => match std::env::var(var) {
                Ok(v) => v,
                Err(std::env::VarError::NotPresent) => {
                    bail!("environment variable {var} is not set")
                }
                Err(std::env::VarError::NotUnicode(_)) => {
                    bail!("environment variable {var} is set but is not valid UTF-8")
                }
            },
            Secret::File(path) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || read_first_line(&path))
                    .await
                    .context("reading the secret file stopped")??
            }
            Secret::Command(cmd) => run_command(cmd, COMMAND_LIMITS).await?,
        };
        if value.is_empty() {
            bail!("the secret from {} is empty", self.describe());
        }
        Ok(SecretString(value))
    }
}

/// The first line of a secret file (blocking).
fn read_first_line(path: &Path) -> Result<String> {
    warn_if_readable_by_others(path);
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read secret file {}", path.display()))?;
    Ok(first_line(&text))
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(
                file = %path.display(),
                mode = format!("{:o}", mode & 0o777),
                "secret file is readable by other users; run: chmod 600 {}",
                path.display()
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &std::path::Path) {}

/// Why reading a password command's output ended early.
enum Stop {
    /// It printed more than the limit.
    TooMuch,
    /// Reading a pipe or waiting for its exit failed.
    Io(std::io::Error),
}

/// Runs a password command (`sh -c COMMAND`, stdin from /dev/null) and returns the first
/// line it printed. Stdout and stderr are read while it runs (a command that prints more
/// than a pipe holds would otherwise wait for us forever), stdout up to `limits.output`.
/// It runs in a process group of its own, so giving up on it (too slow, too much output,
/// the caller dropped the future at shutdown) kills whatever it started (`pass` → `gpg`
/// → …), not only the shell. The price: it cannot read the terminal, which a daemon's
/// password command has no business doing anyway (stdin is /dev/null).
///
/// Its stderr is quoted in the error when it failed or was stopped, as its own error
/// message, with whatever its stdout's first line holds masked. It is never quoted when
/// the command succeeded: a command that prints the secret on the wrong stream (or a
/// shell's `set -x` trace) would put the secret there.
async fn run_command(cmd: &str, limits: Limits) -> Result<String> {
    let mut command = tokio::process::Command::new("sh");
    command
        .arg("-c")
        .arg(cmd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    #[cfg(unix)]
    command.process_group(0);
    let mut child = command
        .spawn()
        .context("cannot run the password command (sh -c)")?;
    let group = GroupKiller::new(child.id());
    let (Some(mut stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
        bail!("cannot read the password command's output");
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let finished = tokio::time::timeout(limits.timeout, async {
        tokio::try_join!(
            read_capped(&mut stdout, &mut out, limits.output),
            read_head(&mut stderr, &mut err, STDERR_KEPT),
        )?;
        child.wait().await.map_err(Stop::Io)
    })
    .await;
    let status = match finished {
        Ok(Ok(status)) => {
            group.disarm();
            status
        }
        Ok(Err(Stop::TooMuch)) => {
            stop(group, &mut child).await;
            bail!(
                "the password command printed more than {} KiB; a secret is a single line",
                limits.output / 1024
            );
        }
        Ok(Err(Stop::Io(e))) => {
            stop(group, &mut child).await;
            return Err(anyhow!(e).context("cannot read the password command's output"));
        }
        Err(_) => {
            stop(group, &mut child).await;
            let mask = first_line(&String::from_utf8_lossy(&out));
            bail!(
                "the password command did not finish within {:?} and was stopped{}",
                limits.timeout,
                stderr_note(&err, &mask)
            );
        }
    };
    finish(status, &out, &err)
}

/// The secret from a command that ran to its end, or why there is none.
fn finish(status: ExitStatus, out: &[u8], err: &[u8]) -> Result<String> {
    let line = first_line(&String::from_utf8_lossy(out));
    if !status.success() {
        bail!(
            "the password command failed ({status}){}",
            stderr_note(err, &line)
        );
    }
    if std::str::from_utf8(out).is_err() {
        bail!("the password command printed something that is not UTF-8 text");
    }
    if line.is_empty() && !err.is_empty() {
        bail!("the password command printed an empty first line; what it wrote to stderr is not shown, as it may hold the secret");
    }
    Ok(line)
}

/// Kills the process group of a command we gave up on, then reaps the shell.
async fn stop(group: GroupKiller, child: &mut tokio::process::Child) {
    drop(group);
    if let Err(e) = child.kill().await {
        tracing::debug!("stopping the password command: {e}");
    }
}

/// Reads `from` to its end into `into`; `Stop::TooMuch` past `max` bytes.
async fn read_capped(
    from: &mut (impl AsyncRead + Unpin),
    into: &mut Vec<u8>,
    max: usize,
) -> Result<(), Stop> {
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    from.take(limit).read_to_end(into).await.map_err(Stop::Io)?;
    if into.len() > max {
        return Err(Stop::TooMuch);
    }
    Ok(())
}

/// Reads `from` to its end, keeping its first `keep` bytes in `into`.
async fn read_head(
    from: &mut (impl AsyncRead + Unpin),
    into: &mut Vec<u8>,
    keep: usize,
) -> Result<(), Stop> {
    let mut chunk = [0u8; 4096];
    loop {
        let n = from.read(&mut chunk).await.map_err(Stop::Io)?;
        if n == 0 {
            return Ok(());
        }
        let room = keep.saturating_sub(into.len()).min(n);
        into.extend_from_slice(chunk.get(..room).unwrap_or_default());
    }
}

/// `; it said: …` for an error message: the command's stderr on one line, control
/// characters dropped, `mask` (what its stdout's first line holds) replaced, shortened.
fn stderr_note(stderr: &[u8], mask: &str) -> String {
    let text = String::from_utf8_lossy(stderr);
    let text = if mask.is_empty() {
        text.into_owned()
    } else {
        text.replace(mask, "<redacted>")
    };
    let one_line: String = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    if one_line.is_empty() {
        return String::new();
    }
    let mut shown: String = one_line.chars().take(STDERR_SHOWN).collect();
    if shown.len() < one_line.len() {
        shown.push('…');
    }
    format!("; it said: {shown}")
}

/// Kills a password command's process group when dropped, unless the command finished.
struct GroupKiller {
    /// The shell's pid, which is also the group's id.
    leader: Option<u32>,
}

impl GroupKiller {
    fn new(leader: Option<u32>) -> GroupKiller {
        GroupKiller { leader }
    }

    /// The command finished on its own: what it left running, it left on purpose.
    fn disarm(mut self) {
        self.leader = None;
    }
}

impl Drop for GroupKiller {
    fn drop(&mut self) {
        #[cfg(unix)]
        {
            use rustix::process::{kill_process_group, Pid, Signal};
            // Never 0 or 1: kill(0) and kill(-1) would reach far more than the command.
            let leader = self.leader.take().filter(|&p| p > 1);
            if let Some(pid) = leader.and_then(|p| Pid::from_raw(i32::try_from(p).ok()?)) {
                if let Err(e) = kill_process_group(pid, Signal::KILL) {
                    tracing::debug!("killing the password command's process group: {e}");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// Limits small enough for a test to wait them out.
    const QUICK: Limits = Limits {
        output: 64 * 1024,
        timeout: Duration::from_millis(500),
    };

    async fn command(cmd: &str, limits: Limits) -> Result<String> {
        // A regression to a hang fails the test instead of stalling it.
        tokio::time::timeout(Duration::from_secs(10), run_command(cmd, limits))
            .await
            .map_err(|_| anyhow!("run_command did not return within 10 s"))?
    }

    #[tokio::test]
    async fn secrets_resolve_and_never_print() {
        let s = Secret::Command("printf 'hunter2\\nsecond'".into())
            .resolve()
            .await
            .expect("resolves");
        assert_eq!(s.expose(), "hunter2");
        assert_eq!(format!("{s:?}"), "<redacted>");
        assert!(Secret::Env("MAILTRIAGE_TEST_UNSET_VAR".into())
            .resolve()
            .await
            .is_err());
        let err = Secret::Command("exit 3".into())
            .resolve()
            .await
            .expect_err("fails");
        assert!(!format!("{err:#}").contains("hunter2"));
        assert!(format!("{err:#}").contains("exit status: 3"), "{err:#}");
    }

    /// Issue 19: stdout was read only after the exit, so a command printing more than a
    /// pipe holds (64 KiB on Linux) waited for us until the timeout.
    #[tokio::test]
    async fn a_command_printing_a_mebibyte_fails_at_once_with_the_cap_in_the_message() {
        let started = Instant::now();
        let err = command("yes x | head -c 1048576", COMMAND_LIMITS)
            .await
            .expect_err("refused");
        assert_eq!(
            format!("{err:#}"),
            "the password command printed more than 64 KiB; a secret is a single line"
        );
        assert!(started.elapsed() < Duration::from_secs(5), "{started:?}");
        // Just under the cap is still a secret (its first line).
        let ok = command(
            "printf 'pw\\n'; head -c 65000 /dev/zero | tr '\\0' x",
            QUICK,
        )
        .await
        .expect("under the cap");
        assert_eq!(ok, "pw");
    }

    /// Issue 19: the same deadlock on stderr once it is captured: it must be drained.
    #[tokio::test]
    async fn a_command_chatty_on_stderr_still_gives_its_secret() {
        let got = command("yes noise | head -c 1048576 >&2; echo pw", QUICK)
            .await
            .expect("resolves");
        assert_eq!(got, "pw");
    }

    /// `/proc/PID/stat` says the process is gone or a zombie.
    #[cfg(target_os = "linux")]
    fn gone(pid: u32) -> bool {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return true;
        };
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next());
        matches!(state, Some("Z" | "X"))
    }

    /// A command that starts `sleep 60` in the background, writes its pid to a file,
    /// then waits for it: the shell's child, which killing the shell alone leaves alive.
    #[cfg(target_os = "linux")]
    fn sleeper() -> (String, std::path::PathBuf) {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let file = std::env::temp_dir().join(format!(
            "mailtriage-secret-{}-{}.pid",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let cmd = format!("sleep 60 & echo $! > '{}'; wait", file.display());
        (cmd, file)
    }

    #[cfg(target_os = "linux")]
    fn pid_in(file: &Path) -> u32 {
        let text = std::fs::read_to_string(file).expect("pid file");
        let _ = std::fs::remove_file(file);
        text.trim().parse().expect("a pid")
    }

    #[cfg(target_os = "linux")]
    async fn wait_gone(pid: u32) -> bool {
        for _ in 0..100 {
            if gone(pid) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    /// Issue 19: a timeout killed only the shell; what it started ran on.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_command_over_its_timeout_is_killed_with_everything_it_started() {
        let (cmd, file) = sleeper();
        let started = Instant::now();
        let err = command(&cmd, QUICK).await.expect_err("times out");
        assert!(started.elapsed() < Duration::from_secs(3), "{started:?}");
        assert_eq!(
            format!("{err:#}"),
            "the password command did not finish within 500ms and was stopped"
        );
        let pid = pid_in(&file);
        assert!(wait_gone(pid).await, "sleep {pid} outlived the timeout");
    }

    /// Shutdown drops the future: the command goes with it.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_command_whose_caller_gives_up_is_killed() {
        let (cmd, file) = sleeper();
        let abandoned = tokio::time::timeout(
            Duration::from_millis(300),
            run_command(&cmd, COMMAND_LIMITS),
        )
        .await;
        assert!(abandoned.is_err(), "the command finished?");
        let pid = pid_in(&file);
        assert!(wait_gone(pid).await, "sleep {pid} outlived its caller");
    }

    /// Issue 19: the command ran blocking on a runtime worker, so on the single-threaded
    /// runtime of `mailtriage auth` (and on a busy daemon) nothing else moved meanwhile.
    #[tokio::test(flavor = "current_thread")]
    async fn the_runtime_keeps_running_while_a_command_runs() {
        let ticks = async {
            let mut n = 0u32;
            let mut every = tokio::time::interval(Duration::from_millis(50));
            loop {
                every.tick().await;
                n += 1;
                if n == 5 {
                    return n;
                }
            }
        };
        let secret = Secret::Command("sleep 1; echo pw".into());
        tokio::select! {
            biased;
            n = ticks => assert_eq!(n, 5),
            r = secret.resolve() => panic!("the command finished before the runtime ticked: {r:?}"),
        }
    }

    #[tokio::test]
    async fn a_failing_commands_stderr_is_quoted_with_the_secret_masked() {
        let err = command(
            "echo hunter2; printf 'gpg: decryption failed\\n\\033[31mfor hunter2\\n' >&2; exit 2",
            QUICK,
        )
        .await
        .expect_err("fails");
        assert_eq!(
            format!("{err:#}"),
            "the password command failed (exit status: 2); it said: gpg: decryption failed [31mfor <redacted>"
        );
        let long = command("yes 'an error' | head -c 100000 >&2; exit 1", QUICK)
            .await
            .expect_err("fails");
        let text = format!("{long:#}");
        assert!(text.ends_with('…') && text.len() < 400, "{text}");
    }

    /// A command that prints the secret on stderr only: nothing of it in the error.
    #[tokio::test]
    async fn a_succeeding_commands_stderr_is_never_quoted() {
        let err = Secret::Command("echo hunter2 >&2".into())
            .resolve()
            .await
            .expect_err("no secret");
        let text = format!("{err:#}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("not shown"), "{text}");
    }
}
