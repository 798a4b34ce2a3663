//! Secrets (passwords, tokens): referenced from the configuration, resolved only when a
//! connection needs them, and never printed — `SecretString` has no `Display` and its
//! `Debug` is redacted, so a secret cannot reach a log line or an error by accident.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Where a secret comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Secret {
    /// An environment variable (its name).
    Env(String),
    /// The first line of a file.
    File(PathBuf),
    /// The first line printed by `sh -c COMMAND`.
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

/// How long a password command may run.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

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

    /// Reads the secret now.
    pub fn resolve(&self) -> Result<SecretString> {
        let value = match self {
            Secret::Literal(v) => v.clone(),
            Secret::Env(var) => match std::env::var(var) {
                Ok(v) => v,
                Err(_) => bail!("environment variable {var} is not set"),
            },
            Secret::File(path) => {
                warn_if_readable_by_others(path);
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read secret file {}", path.display()))?;
                first_line(&text)
            }
            Secret::Command(cmd) => run_command(cmd)?,
        };
        if value.is_empty() {
            bail!("the secret from {} is empty", self.describe());
        }
        Ok(SecretString(value))
    }
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

fn run_command(cmd: &str) -> Result<String> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot run the password command")?;
    let start = Instant::now();
    loop {
        match child.try_wait().context("password command")? {
            Some(status) => {
                let mut out = String::new();
                if let Some(mut so) = child.stdout.take() {
                    so.read_to_string(&mut out)
                        .context("cannot read the password command's output")?;
                }
                if !status.success() {
                    bail!("the password command failed ({status})");
                }
                return Ok(first_line(&out));
            }
            None if start.elapsed() > COMMAND_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "the password command did not finish within {}s",
                    COMMAND_TIMEOUT.as_secs()
                );
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_resolve_and_never_print() {
        let s = Secret::Command("printf 'hunter2\\nsecond'".into())
            .resolve()
            .expect("resolves");
        assert_eq!(s.expose(), "hunter2");
        assert_eq!(format!("{s:?}"), "<redacted>");
        assert!(Secret::Env("MAILTRIAGE_TEST_UNSET_VAR".into())
            .resolve()
            .is_err());
        let err = Secret::Command("exit 3".into())
            .resolve()
            .expect_err("fails");
        assert!(!format!("{err:#}").contains("hunter2"));
    }
}
