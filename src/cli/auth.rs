//! `mailtriage auth ACCOUNT`: the OAuth2 consent for an account, once; stores the refresh
//! token under the state directory and proves it by logging in to the IMAP server.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _, Result};

use super::outln;
use crate::config::{AuthKind, Backend, Config};
use crate::mailbox::imap::connect as imap_connect;
use crate::oauth::{self, consent, StoredToken, TokenFile};
use crate::yaml::durations::parse_duration;

/// Runs the consent flow for `account` and stores its refresh token.
pub fn run(account: &str, config: Option<&Path>, timeout: &str) -> Result<ExitCode> {
    let path = super::run::discover(config).ok_or_else(|| {
        anyhow!("no configuration: pass --config FILE, set MAILTRIAGE_CONFIG, or create ./mailtriage.yaml")
    })?;
    let cfg = Config::load(&path).map_err(|e| anyhow!("invalid configuration\n{e}"))?;
    let timeout = Duration::from_secs(
        parse_duration(timeout)
            .map_err(|e| anyhow!("--timeout: {e}"))?
            .max(1),
    );
    let acct = cfg.account(account).ok_or_else(|| {
        let names: Vec<&str> = cfg.accounts.iter().map(|a| a.name.as_str()).collect();
        anyhow!(
            "no account named {account} in {} (accounts: {})",
            path.display(),
            names.join(", ")
        )
    })?;
    let Backend::Imap(imap) = &acct.backend else {
        bail!("account {account} is a Maildir: it needs no login");
    };
    let (AuthKind::Xoauth2 | AuthKind::Oauthbearer, Some(o)) = (imap.auth, &imap.oauth) else {
        bail!(
            "account {account} does not log in with OAuth2 (set imap.auth: xoauth2 and imap.oauth)"
        );
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let mut stdout = std::io::stdout();
    outln!(
        "Authorising mailtriage for account {account} ({} on {}).",
        imap.user,
        imap.host
    );
    let grant = rt.block_on(consent::run(o, &imap.user, &mut stdout, timeout))?;
    let Some(refresh_token) = grant.refresh_token else {
        bail!("the provider granted access but issued no refresh token, so the daemon could not stay logged in; check that the scopes include offline access (Microsoft: offline_access) and run the command again");
    };
    let file = TokenFile::new(&oauth::token_dir(&cfg.state), account);
    file.save(&StoredToken {
        refresh_token,
        token_url: o.token_url.clone(),
    })?;
    outln!(
        "Stored the refresh token in {} (readable by you only).",
        file.path().display()
    );
    let tls = imap_connect::tls_config(imap.ca_file.as_deref())?;
    let login = rt.block_on(async {
        let session = imap_connect::connect(imap, &tls, &grant.access_token).await?;
        let mut session = session;
        let _ = tokio::time::timeout(Duration::from_secs(5), session.logout()).await;
        Ok::<_, imap_connect::ConnectError>(())
    });
    match login {
        Ok(()) => {
            outln!(
                "Logged in to {} as {}: the daemon can use account {account} now.",
                imap.host,
                imap.user
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => bail!(
            "the token was stored, but logging in to {} with it failed: {e}",
            imap.host
        ),
    }
}
