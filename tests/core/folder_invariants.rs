//! What makes a server-side folder name safe, as one checker shared by the property tests
//! (`fuzz_props.rs`, `hostile_yaml.rs`) and the cargo-fuzz target `folder_names`, which
//! includes this file by path. It depends on nothing but the library.

use mailtriage::mailbox::names::{decode_mutf7, encode_mutf7, neutralize, server_name};

/// Characters no level of a folder name may contain, whatever the server.
pub const FORBIDDEN: [char; 5] = ['*', '%', '\r', '\n', '\0'];

/// Checks one neutralised level: non-empty, no wildcard, control character or delimiter,
/// no leading `.` or `~`, no dots when they are not allowed.
pub fn check_level(level: &str, delimiter: Option<char>, no_dots: bool) -> Result<(), String> {
    if level.is_empty() {
        return Err("empty level".into());
    }
    if let Some(c) = level
        .chars()
        .find(|c| FORBIDDEN.contains(c) || c.is_control())
    {
        return Err(format!("level {level:?} contains {c:?}"));
    }
    if let Some(d) = delimiter.filter(|d| level.contains(*d)) {
        return Err(format!("level {level:?} contains the delimiter {d:?}"));
    }
    if level.starts_with(['.', '~']) {
        return Err(format!("level {level:?} starts with `.` or `~`"));
    }
    if no_dots && level.contains('.') {
        return Err(format!("level {level:?} contains a dot"));
    }
    Ok(())
}

/// Checks `server_name(levels, delimiter, utf8, no_dots)` level by level: as many levels as
/// given, each safe, and (in modified UTF-7) each decoding back to its neutralised text.
pub fn check_server_name(
    levels: &[String],
    delimiter: Option<char>,
    utf8: bool,
    no_dots: bool,
) -> Result<(), String> {
    let name = server_name(levels, delimiter, utf8, no_dots);
    let no_dots = no_dots || delimiter == Some('.');
    // The delimiter is the server's own character (IMAP allows any 7-bit one but CR and
    // LF); everything between delimiters must be safe.
    let parts: Vec<&str> = match delimiter {
        _ if levels.is_empty() => Vec::new(),
        Some(d) => name.split(d).collect(),
        None => vec![name.as_str()],
    };
    for part in &parts {
        if let Some(c) = part
            .chars()
            .find(|c| FORBIDDEN.contains(c) || c.is_control())
        {
            return Err(format!("{name:?} contains {c:?}"));
        }
        if !utf8 && !part.chars().all(|c| (' '..='~').contains(&c)) {
            return Err(format!("{part:?} in {name:?} is not printable ASCII"));
        }
    }
    let Some(d) = delimiter else {
        return Ok(());
    };
    if parts.len() != levels.len() {
        return Err(format!(
            "{levels:?} became {} levels: {name:?} (delimiter {d:?})",
            parts.len()
        ));
    }
    for (level, part) in levels.iter().zip(parts) {
        let safe = neutralize(level, delimiter, no_dots);
        check_level(&safe, delimiter, no_dots)?;
        let plain = if utf8 {
            part.to_string()
        } else {
            decode_mutf7(part).ok_or_else(|| format!("{part:?} is not modified UTF-7"))?
        };
        check_level(&plain, delimiter, no_dots)?;
        // With the delimiters servers really use, nothing is lost on the way: the server
        // shows exactly the neutralised name.
        if matches!(d, '/' | '.' | '\\') && plain != safe {
            return Err(format!(
                "{level:?}: neutralised {safe:?} but the server shows {plain:?}"
            ));
        }
    }
    Ok(())
}

/// Modified UTF-7 round-trips every string.
pub fn check_mutf7(s: &str) -> Result<(), String> {
    let enc = encode_mutf7(s);
    if !enc.chars().all(|c| (' '..='~').contains(&c)) {
        return Err(format!("{s:?} encoded to non-ASCII {enc:?}"));
    }
    match decode_mutf7(&enc) {
        Some(back) if back == s => Ok(()),
        other => Err(format!("{s:?} → {enc:?} → {other:?}")),
    }
}
