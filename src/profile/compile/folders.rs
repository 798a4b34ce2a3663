//! Folder names and templates: parsed, checked, and compared as servers would store them.

use crate::profile::raw::RawNotRouted;
use crate::profile::{FolderTemplate, NotRouted, Piece};
use crate::yaml::checker::{Checker, DiagExt};
use crate::yaml::diag::did_you_mean;
use crate::yaml::Path;

/// The key two folder names collide on: the same after neutralisation on a server with
/// either common delimiter (`/`, or `.` where dots are not allowed — also Maildir++), in
/// any case.
pub(super) fn folder_keys(name: &str) -> [String; 2] {
    use crate::mailbox::names::neutralize;
    [
        neutralize(name, Some('/'), false).to_lowercase(),
        neutralize(name, Some('.'), true)
            .replace(['/', '\\'], "-")
            .to_lowercase(),
    ]
}

/// Whether a rendered folder is the inbox itself (IMAP's INBOX is case-insensitive).
pub(super) fn is_inbox(levels: &[String]) -> bool {
    match levels {
        [only] => {
            crate::mailbox::names::neutralize(only, None, false).eq_ignore_ascii_case("inbox")
        }
        _ => false,
    }
}

/// Parses a folder template and checks its placeholders.
pub(super) fn folder_template(
    c: &mut Checker<'_>,
    path: &Path,
    source: &str,
    allowed: &[&str],
) -> FolderTemplate {
    let mut components = Vec::new();
    for part in source.split('/') {
        let mut pieces = Vec::new();
        let mut rest = part;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 1..];
            match after.find('}') {
                Some(close) => {
                    let name = &after[..close];
                    match name {
                        "category" if allowed.contains(&name) => pieces.push(Piece::Category),
                        "member" if allowed.contains(&name) => pieces.push(Piece::Member),
                        "role" if allowed.contains(&name) => pieces.push(Piece::Role),
                        _ => {
                            c.at_value(path, format!("unknown placeholder `{{{name}}}` in folder template `{source}`"))
                                .expect_(format!(
                                    "placeholders among: {}",
                                    allowed.iter().map(|a| format!("{{{a}}}")).collect::<Vec<_>>().join(", ")
                                ))
                                .suggest_(did_you_mean(name, allowed.iter().copied()).map(|s| format!("{{{s}}}")));
                        }
                    }
                    rest = &after[close + 1..];
                }
                None => {
                    c.at_value(path, format!("unclosed `{{` in folder template `{source}`"))
                        .expect_("placeholders written like {member}");
                    rest = "";
                }
            }
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        if pieces.is_empty() {
            continue;
        }
        components.push(pieces);
    }
    if components.is_empty() {
        c.at_value(path, "the folder template is empty")
            .expect_("a template such as \"{category}/{member}\"");
    }
    FolderTemplate {
        source: source.to_string(),
        components,
    }
}

pub(super) fn plain_folder(c: &mut Checker<'_>, path: &Path, name: &str) -> Vec<String> {
    let parts: Vec<String> = name
        .split('/')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(String::from)
        .collect();
    if parts.is_empty() {
        c.at_value(path, "the folder name is empty")
            .expect_("a folder name such as Newsletters");
    }
    if parts.iter().any(|p| p.eq_ignore_ascii_case("inbox")) && parts.len() == 1 {
        c.at_value(
            path,
            "INBOX is where mail comes from; use `leave` to keep it there",
        )
        .expect_("`leave` or another folder name");
    }
    parts
}

pub(super) fn not_routed(c: &mut Checker<'_>, path: &Path, v: &Option<RawNotRouted>) -> NotRouted {
    match v {
        None | Some(RawNotRouted::Leave(_)) => NotRouted::Leave,
        Some(RawNotRouted::Folder(f)) => {
            NotRouted::Folder(plain_folder(c, &path.key("folder"), &f.folder))
        }
    }
}
