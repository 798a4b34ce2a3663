//! The refresh token on disk: `<state dir>/oauth/ACCOUNT.json`, 0600 in a 0700
//! directory, written atomically (temp file + rename) so a crash never leaves half a token.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use serde::{Deserialize, Serialize};

use crate::config::SecretString;

/// What `mailtriage auth` stores for an account.
#[derive(Debug, Clone)]
pub struct StoredToken {
    pub refresh_token: SecretString,
    /// The token endpoint it was issued by (a token is useless with another provider).
    pub token_url: String,
}

/// The file's JSON shape.
#[derive(Serialize, Deserialize)]
struct OnDisk {
    refresh_token: String,
    token_url: String,
}

/// One account's token file.
#[derive(Debug, Clone)]
pub struct TokenFile {
    dir: PathBuf,
    path: PathBuf,
}

impl TokenFile {
    /// The token file of `account` in `dir` (account names are validated: no `/`).
    pub fn new(dir: &Path, account: &str) -> TokenFile {
        TokenFile {
            dir: dir.to_path_buf(),
            path: dir.join(format!("{account}.json")),
        }
    }

    /// Where it lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stored token; None when there is none yet.
    pub fn load(&self) -> Result<Option<StoredToken>> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read {}", self.path.display()))
            }
        };
        // serde_json's error names line and column, never the content.
        let d: OnDisk = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is damaged; re-run `mailtriage auth` for this account",
                self.path.display()
            )
        })?;
        if d.refresh_token.is_empty() {
            bail!("{} holds an empty refresh token", self.path.display());
        }
        Ok(Some(StoredToken {
            refresh_token: SecretString::new(d.refresh_token),
            token_url: d.token_url,
        }))
    }

    /// Writes the token: 0600, atomically.
    pub fn save(&self, t: &StoredToken) -> Result<()> {
        crate::store::create_private_dir(&self.dir)?;
        let body = serde_json::to_vec_pretty(&OnDisk {
            refresh_token: t.refresh_token.expose().to_string(),
            token_url: t.token_url.clone(),
        })
        .context("cannot encode the token file")?;
        let tmp = self.dir.join(format!(
            ".{}.tmp{}",
            self.path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            std::process::id()
        ));
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(0o600);
        }
        let write = || -> std::io::Result<()> {
            let mut f = o.open(&tmp)?;
            #[cfg(unix)]
            {
                // An older temp file may have other permissions: make sure.
                use std::os::unix::fs::PermissionsExt;
                f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            }
            f.write_all(&body)?;
            f.write_all(b"\n")?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            anyhow::Error::from(e).context(format!(
                "cannot write the token file {}",
                self.path.display()
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_file_round_trips_private_and_never_prints_the_token() {
        let dir = std::env::temp_dir().join(format!("mt-tokfile-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let f = TokenFile::new(&dir.join("oauth"), "acct");
        assert!(f.load().expect("no file is fine").is_none());
        let t = StoredToken {
            refresh_token: SecretString::new("rt-very-secret".into()),
            token_url: "https://example.com/token".into(),
        };
        f.save(&t).expect("saved");
        let back = f.load().expect("readable").expect("present");
        assert_eq!(back.refresh_token.expose(), "rt-very-secret");
        assert!(!format!("{back:?}").contains("rt-very-secret"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
            assert_eq!(mode(f.path()), 0o600);
            assert_eq!(mode(&dir.join("oauth")), 0o700);
        }
        std::fs::write(f.path(), "{not json").expect("write");
        let err = format!("{:#}", f.load().expect_err("damaged"));
        assert!(err.contains("damaged"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
