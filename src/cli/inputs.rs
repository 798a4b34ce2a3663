//! Finding messages to triage offline: `.eml` files, directories of them, Maildirs
//! (`cur/` and `new/`) and mbox files, split into individual messages.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

/// One message read from disk, with a label saying where it came from.
pub struct Input {
    pub label: String,
    pub bytes: Vec<u8>,
}

/// Does this file look like an mbox (first line "From ")?
fn is_mbox(bytes: &[u8]) -> bool {
    bytes.starts_with(b"From ")
}

/// Splits an mbox into messages (mboxo/mboxrd: a "From " line after a blank line starts a
/// message; ">From " quoting is undone).
pub fn split_mbox(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut current: Option<Vec<u8>> = None;
    let mut prev_blank = true;
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        if prev_blank && line.starts_with(b"From ") {
            if let Some(mut m) = current.take() {
                // The blank line before "From " belongs to the mbox, not the message.
                if m.ends_with(b"\r\n\r\n") {
                    m.truncate(m.len() - 2);
                } else if m.ends_with(b"\n\n") {
                    m.truncate(m.len() - 1);
                }
                out.push(m);
            }
            current = Some(Vec::new());
            prev_blank = false;
            continue;
        }
        let content = line.strip_suffix(b"\n").unwrap_or(line);
        let content = content.strip_suffix(b"\r").unwrap_or(content);
        prev_blank = content.is_empty();
        let msg = current.get_or_insert_with(Vec::new);
        let unquoted = {
            let gt = line.iter().take_while(|&&b| b == b'>').count();
            if gt > 0 && line.get(gt..).is_some_and(|r| r.starts_with(b"From ")) {
                &line[1..]
            } else {
                line
            }
        };
        msg.extend_from_slice(unquoted);
    }
    if let Some(m) = current {
        out.push(m);
    }
    out
}

fn wanted(path: &Path) -> bool {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    if name.starts_with('.') {
        return false;
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default();
    if ext.eq_ignore_ascii_case("eml") || ext.eq_ignore_ascii_case("mbox") {
        return true;
    }
    // Maildir message files live in cur/ or new/, named freely.
    let parent = path
        .parent()
        .and_then(|p| p.file_name())
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    parent == "cur" || parent == "new"
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read directory {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        let meta = match std::fs::symlink_metadata(&p) {
            Ok(m) => m,
            Err(_) => continue,
        };
        if meta.is_dir() {
            walk(&p, out)?;
        } else if meta.is_file() && wanted(&p) {
            out.push(p);
        }
    }
    Ok(())
}

/// Reads every message under `paths`, in a stable order. Files given explicitly are always
/// read; directories contribute .eml, .mbox and Maildir files.
pub fn collect(paths: &[PathBuf]) -> Result<Vec<Input>> {
    let mut files = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).with_context(|| format!("cannot open {}", p.display()))?;
        if meta.is_dir() {
            walk(p, &mut files)?;
        } else {
            files.push(p.clone());
        }
    }
    let mut out = Vec::new();
    for f in files {
        let bytes = std::fs::read(&f).with_context(|| format!("cannot read {}", f.display()))?;
        let label = f.display().to_string();
        if is_mbox(&bytes) {
            for (i, m) in split_mbox(&bytes).into_iter().enumerate() {
                out.push(Input {
                    label: format!("{label}#{}", i + 1),
                    bytes: m,
                });
            }
        } else {
            out.push(Input { label, bytes });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mbox_splits_and_unquotes() {
        let mbox = b"From a@b Mon Jan  1 00:00:00 2026\nSubject: one\n\nhello\n>From the start\n\nFrom c@d Mon Jan  1 00:00:00 2026\nSubject: two\n\nbye\n";
        let msgs = split_mbox(mbox);
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0], b"Subject: one\n\nhello\nFrom the start\n".to_vec());
        assert_eq!(msgs[1], b"Subject: two\n\nbye\n".to_vec());
    }
}
