//! `mailtriage run`: find the configuration (or the bundled demo), set up logging and the
//! async runtime, and hand over to the daemon.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, Result};

use crate::config::Config;
use crate::daemon::{self, RunOptions};

/// Where a configuration was found, in order of precedence.
pub(crate) fn discover(given: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = given {
        return Some(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("MAILTRIAGE_CONFIG") {
        return Some(PathBuf::from(p));
    }
    ["mailtriage.yaml", "/etc/mailtriage/mailtriage.yaml"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// Runs the daemon.
pub fn run(config: Option<&Path>, once: bool, dry_run: bool) -> Result<ExitCode> {
    let cfg = match discover(config) {
        Some(path) => Config::load(&path).map_err(|e| anyhow!("invalid configuration\n{e}"))?,
        None => {
            let here = std::env::current_dir()?;
            match daemon::demo_config(&here)? {
                Some(cfg) => {
                    eprintln!("mailtriage: no configuration found; running the demo (profiles/hottub.yaml over var/demo-mail, seeded from sample-mail/).");
                    eprintln!("mailtriage: drop a message into var/demo-mail/new/ and watch it being filed; Ctrl-C stops.");
                    cfg
                }
                None => {
                    return Err(anyhow!(
                        "no configuration: pass --config FILE, set MAILTRIAGE_CONFIG, or create ./mailtriage.yaml or /etc/mailtriage/mailtriage.yaml"
                    ))
                }
            }
        }
    };
    daemon::init_logging(&cfg.log);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("mailtriage")
        .build()?;
    match rt.block_on(daemon::run(cfg, RunOptions { once, dry_run })) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            tracing::error!("{e:#}");
            Err(e)
        }
    }
}
