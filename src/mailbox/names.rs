//! Folder names: turning a decision's folder levels (`["MANAGER", "Sinéad O'Brien"]`) into
//! a name the server accepts and every client shows the same way.
//!
//! Each level is *neutralised* first — the hierarchy delimiter, IMAP wildcards (`*`, `%`),
//! control characters, a leading `.` or `~` are replaced, so a member called "AC/DC" can
//! never create a sub-folder and no name can break the protocol — then encoded in modified
//! UTF-7 (RFC 3501 §5.1.3) unless the server accepts UTF-8, and joined with the delimiter.

use base64::alphabet::Alphabet;
use base64::engine::general_purpose::NO_PAD;
use base64::engine::GeneralPurpose;
use base64::Engine as _;

/// IMAP's modified base64: `,` instead of `/`, no padding.
fn mbase64() -> Option<GeneralPurpose> {
    let alphabet =
        Alphabet::new("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,").ok()?;
    Some(GeneralPurpose::new(&alphabet, NO_PAD))
}

/// Encodes a name in modified UTF-7.
pub fn encode_mutf7(s: &str) -> String {
    let Some(engine) = mbase64() else {
        return s.to_string();
    };
    let mut out = String::with_capacity(s.len());
    let mut pending: Vec<u16> = Vec::new();
    let flush = |pending: &mut Vec<u16>, out: &mut String| {
        if pending.is_empty() {
            return;
        }
        let bytes: Vec<u8> = pending.iter().flat_map(|u| u.to_be_bytes()).collect();
        out.push('&');
        out.push_str(&engine.encode(bytes));
        out.push('-');
        pending.clear();
    };
    for c in s.chars() {
        if ('\u{20}'..='\u{7e}').contains(&c) {
            flush(&mut pending, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut buf = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut pending, &mut out);
    out
}

/// Decodes a modified UTF-7 name; `None` when it is not valid modified UTF-7.
pub fn decode_mutf7(s: &str) -> Option<String> {
    let engine = mbase64()?;
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('&') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        let end = after.find('-')?;
        let encoded = &after[..end];
        if encoded.is_empty() {
            out.push('&');
        } else {
            let bytes = engine.decode(encoded).ok()?;
            if bytes.len() % 2 != 0 {
                return None;
            }
            let units: Vec<u16> = bytes
                .chunks_exact(2)
                .map(|b| u16::from_be_bytes([b[0], b[1]]))
                .collect();
            out.push_str(&String::from_utf16(&units).ok()?);
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// The characters that stand in for what a level may not contain, chosen so that none of
/// them is the delimiter itself: (for the delimiter, for wildcards, for blanks).
fn stand_ins(delimiter: Option<char>) -> (char, char, char) {
    let dash = if delimiter == Some('-') { '_' } else { '-' };
    let underscore = if delimiter == Some('_') { '-' } else { '_' };
    let space = if delimiter == Some(' ') { dash } else { ' ' };
    (dash, underscore, space)
}

/// Zero-width and bidirectional formatting characters: invisible in a folder list, they
/// would let two names that look the same differ, or make one read backwards.
fn invisible(c: char) -> bool {
    matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

/// Makes one folder level safe: no delimiter, wildcard, control character, line separator,
/// invisible formatting character, leading dot or tilde; with `no_dots`, dots become
/// spaces ("Dr. J. Smith" → "Dr J Smith"). What stands in for a character is never the
/// delimiter itself.
pub fn neutralize(level: &str, delimiter: Option<char>, no_dots: bool) -> String {
    let (dash, underscore, space) = stand_ins(delimiter);
    let mapped = level.chars().map(|c| match c {
        '.' if no_dots => space,
        c if Some(c) == delimiter => dash,
        '/' | '\\' if delimiter.is_none() => dash,
        '*' | '%' => underscore,
        c if c.is_control() || c.is_whitespace() => space,
        c => c,
    });
    // Collapse the spaces the replacements may have doubled.
    let mut s = String::with_capacity(level.len());
    for c in mapped.filter(|c| !invisible(*c)) {
        if !(c == ' ' && s.ends_with(' ')) {
            s.push(c);
        }
    }
    // Strip until stable: ". ~x" must not leave "~x" behind.
    let mut rest = s.as_str();
    loop {
        let next = rest.trim().trim_start_matches(['.', '~']);
        if next.len() == rest.len() {
            break;
        }
        rest = next;
    }
    if rest.is_empty() {
        underscore.to_string()
    } else {
        rest.to_string()
    }
}

/// One level as the server stores it: neutralised, then in modified UTF-7 unless the
/// server takes UTF-8. Modified UTF-7 writes `&`, `-` and base64 letters; on a server whose
/// delimiter is one of those (none of the common ones is), characters that would need them
/// are replaced instead, so the encoding can never introduce a delimiter.
fn server_level(level: &str, delimiter: Option<char>, utf8: bool, no_dots: bool) -> String {
    let safe = neutralize(level, delimiter, no_dots);
    if utf8 {
        return safe;
    }
    let encoded = encode_mutf7(&safe);
    match delimiter {
        Some(d) if encoded.contains(d) => {
            let (_, underscore, _) = stand_ins(delimiter);
            safe.chars()
                .map(|c| {
                    if c == '&' || !(' '..='~').contains(&c) {
                        underscore
                    } else {
                        c
                    }
                })
                .collect()
        }
        _ => encoded,
    }
}

/// The server-side name of a folder given as levels.
pub fn server_name(
    levels: &[String],
    delimiter: Option<char>,
    utf8: bool,
    no_dots: bool,
) -> String {
    let sep = delimiter.map(String::from).unwrap_or_default();
    levels
        .iter()
        .map(|l| server_level(l, delimiter, utf8, no_dots || delimiter == Some('.')))
        .collect::<Vec<_>>()
        .join(&sep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutf7_matches_known_encodings() {
        // (plain, encoded) — from RFC 3501 and the Dovecot test bed.
        let cases = [
            ("INBOX", "INBOX"),
            ("Sinéad O'Brien", "Sin&AOk-ad O'Brien"),
            ("Zoë Müller", "Zo&AOs- M&APw-ller"),
            ("Tom & Jerry", "Tom &- Jerry"),
            ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
            ("😀", "&2D3eAA-"),
        ];
        for (plain, enc) in cases {
            assert_eq!(encode_mutf7(plain), enc, "{plain}");
            assert_eq!(decode_mutf7(enc).as_deref(), Some(plain), "{enc}");
        }
        assert_eq!(decode_mutf7("bad&AOk"), None);
    }

    #[test]
    fn names_cannot_break_hierarchy_or_protocol() {
        let cases: &[(&str, Option<char>, bool, &str)] = &[
            ("AC/DC Repairs", Some('/'), false, "AC-DC Repairs"),
            ("Dr. J. Smith", Some('/'), true, "Dr J Smith"),
            ("Dr. J. Smith", Some('/'), false, "Dr. J. Smith"),
            ("a*b%c", Some('/'), false, "a_b_c"),
            ("evil\r\nA1 LOGOUT", Some('/'), false, "evil A1 LOGOUT"),
            ("..", Some('/'), false, "_"),
            (".hidden", Some('/'), false, "hidden"),
            ("~root", Some('/'), false, "root"),
            ("x.y", Some('.'), false, "x-y"),
            ("", Some('/'), false, "_"),
        ];
        for (input, delim, no_dots, want) in cases {
            assert_eq!(neutralize(input, *delim, *no_dots), *want, "{input:?}");
        }
        let levels = vec!["MANAGER".to_string(), "Sinéad O'Brien".to_string()];
        assert_eq!(
            server_name(&levels, Some('/'), false, false),
            "MANAGER/Sin&AOk-ad O'Brien"
        );
        assert_eq!(
            server_name(
                &["MANAGER".into(), "Dr. J. Smith".into()],
                Some('.'),
                false,
                false
            ),
            "MANAGER.Dr J Smith"
        );
    }

    /// Regression: `*` and `%` became `_`, a blank `-`… even when that was the server's
    /// delimiter, so "Mark*" on a server delimited by `_` made the folder `Mark` + `_`.
    #[test]
    fn a_stand_in_was_the_delimiter_itself() {
        for (delim, input) in [
            ('_', "Mark*"),
            ('_', "50% Off"),
            ('-', "AC-DC"),
            (' ', "a\tb"),
        ] {
            let out = server_name(&[input.to_string()], Some(delim), false, false);
            assert!(
                !out.contains(delim),
                "{input:?} with {delim:?} gave {out:?}"
            );
        }
        assert_eq!(neutralize("AC-DC*", Some('-'), false), "AC_DC_");
        assert_eq!(neutralize("Mark*", Some('_'), false), "Mark-");
        // Found by the folder_names fuzz target: an empty level's placeholder `_`.
        assert_eq!(server_name(&["\n".into()], Some('_'), false, false), "-");
    }

    /// Regression: the leading `.`/`~` strip ran once, so ". ~root" (dot, space, tilde)
    /// came out as "~root".
    #[test]
    fn a_dot_before_a_tilde_left_a_leading_tilde() {
        for input in [". ~root", "~ .x", ". . ~ ~y", "\t~.\n~z"] {
            let out = neutralize(input, Some('/'), false);
            assert!(!out.starts_with(['.', '~', ' ']), "{input:?} gave {out:?}");
        }
        assert_eq!(neutralize(". ~root", Some('/'), false), "root");
        assert_eq!(neutralize(". ~", Some('/'), false), "_");
    }

    /// Regression: modified UTF-7 writes `&`, `-` and base64 letters, so on a server whose
    /// delimiter is one of them the encoding put the delimiter back into a level.
    #[test]
    fn modified_utf7_brought_the_delimiter_back() {
        for delim in ['&', '-', 'A', '+', ','] {
            for input in ["Sinéad", "Tom & Jerry", "台北", "Zoë-Müller"] {
                let out = server_name(&[input.to_string()], Some(delim), false, false);
                assert!(
                    !out.contains(delim),
                    "{input:?} with {delim:?} gave {out:?}"
                );
                assert!(out.is_ascii(), "{out:?}");
            }
        }
        // The delimiters servers really use keep the exact encoding.
        assert_eq!(
            server_name(&["Sinéad".into()], Some('/'), false, false),
            "Sin&AOk-ad"
        );
    }

    #[test]
    fn line_separators_and_invisible_characters_do_not_reach_the_server() {
        assert_eq!(
            neutralize("Mark\u{2028}Johnson", Some('/'), false),
            "Mark Johnson"
        );
        assert_eq!(
            neutralize("Mark\u{202e}nosnhoJ", Some('/'), false),
            "MarknosnhoJ"
        );
        assert_eq!(neutralize("\u{feff}\u{200b}", Some('/'), false), "_");
    }
}
