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

/// Makes one folder level safe: no delimiter, wildcard, control character, leading dot or
/// tilde; with `no_dots`, dots become spaces ("Dr. J. Smith" → "Dr J Smith").
pub fn neutralize(level: &str, delimiter: Option<char>, no_dots: bool) -> String {
    let mut s: String = level
        .chars()
        .map(|c| match c {
            '.' if no_dots => ' ',
            c if Some(c) == delimiter => '-',
            '/' | '\\' if delimiter.is_none() => '-',
            '*' | '%' => '_',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect();
    // Collapse the spaces the replacements may have doubled.
    while s.contains("  ") {
        s = s.replace("  ", " ");
    }
    let trimmed = s.trim().trim_start_matches(['.', '~']).trim();
    if trimmed.is_empty() {
        "_".to_string()
    } else {
        trimmed.to_string()
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
        .map(|l| {
            let safe = neutralize(l, delimiter, no_dots || delimiter == Some('.'));
            if utf8 {
                safe
            } else {
                encode_mutf7(&safe)
            }
        })
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
}
