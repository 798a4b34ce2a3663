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

/// Makes one folder level safe: no delimiter, `/` or `\`, wildcard, control character,
/// line separator, invisible formatting character, leading dot or tilde; with `no_dots`, dots become
/// spaces ("Dr. J. Smith" → "Dr J Smith"). What stands in for a character is never the
/// delimiter itself.
pub fn neutralize(level: &str, delimiter: Option<char>, no_dots: bool) -> String {
    let (dash, underscore, space) = stand_ins(delimiter);
    let mapped = level.chars().map(|c| match c {
        '.' if no_dots => space,
        c if Some(c) == delimiter => dash,
        // Whatever the delimiter: `/` is a hierarchy or path character on most servers
        // (Cyrus refuses it inside a name when its separator is `.`; a Maildir++ server
        // stores it in a directory name).
        '/' | '\\' => dash,
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

/// How one server names a mailbox's own folders: the personal namespace's prefix (RFC
/// 2342: `""` on most servers, `"INBOX."` on Cyrus and many hosting panels), its hierarchy
/// delimiter, whether it takes UTF-8 names, and whether dots must go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Naming {
    /// The namespace prefix as the server writes it, ending with the delimiter (or empty).
    pub prefix: String,
    pub delimiter: Option<char>,
    /// UTF8=ACCEPT: names go as UTF-8, not modified UTF-7.
    pub utf8: bool,
    /// The server refused a `.` inside a name once: dots become spaces.
    pub no_dots: bool,
}

impl Naming {
    /// The prefix's own levels (`"INBOX."` → `["INBOX"]`), in plain text.
    fn prefix_levels(&self) -> Vec<String> {
        let trimmed = match self.delimiter {
            Some(d) => self.prefix.strip_suffix(d).unwrap_or(&self.prefix),
            None => self.prefix.as_str(),
        };
        if trimmed.is_empty() {
            return Vec::new();
        }
        let parts: Vec<&str> = match self.delimiter {
            Some(d) => trimmed.split(d).collect(),
            None => vec![trimmed],
        };
        parts.into_iter().map(|p| self.decode(p)).collect()
    }

    fn decode(&self, part: &str) -> String {
        if self.utf8 {
            part.to_string()
        } else {
            decode_mutf7(part).unwrap_or_else(|| part.to_string())
        }
    }

    /// The levels below the prefix: a destination that already starts with the prefix's
    /// levels (`INBOX/Support` with prefix `INBOX.`), or whose first level is written
    /// with the prefix (`INBOX.Support`), is not prefixed twice.
    fn below_prefix<'a>(&self, levels: &'a [String]) -> std::borrow::Cow<'a, [String]> {
        let own = self.prefix_levels();
        if own.is_empty() {
            return levels.into();
        }
        let same = |a: &str, b: &str| {
            if b.eq_ignore_ascii_case("INBOX") {
                a.eq_ignore_ascii_case(b)
            } else {
                a == b
            }
        };
        if levels.len() > own.len() && levels.iter().zip(&own).all(|(l, o)| same(l, o)) {
            return levels[own.len()..].to_vec().into();
        }
        // "INBOX.Support" as one level, on a server whose prefix is "INBOX.".
        if let (Some(first), Some(d)) = (levels.first(), self.delimiter) {
            let written = format!("{}{d}", own.join(&d.to_string()));
            if first.len() > written.len()
                && first.is_char_boundary(written.len())
                && same(&first[..written.len() - 1], &written[..written.len() - 1])
                && first[written.len() - 1..].starts_with(d)
            {
                let mut out: Vec<String> = first[written.len()..]
                    .split(d)
                    .map(str::to_string)
                    .collect();
                out.extend_from_slice(&levels[1..]);
                return out.into();
            }
        }
        levels.into()
    }

    /// The server-side name of a folder given as levels: inside the personal namespace,
    /// each level neutralised and encoded (see [`server_name`]).
    pub fn server_name(&self, levels: &[String]) -> String {
        let below = self.below_prefix(levels);
        let name = server_name(&below, self.delimiter, self.utf8, self.no_dots);
        if name.is_empty() {
            return name;
        }
        format!("{}{name}", self.prefix)
    }

    /// The levels a server-side name stands for (the inverse of [`Naming::server_name`]
    /// up to neutralisation): the prefix removed, split at the delimiter, decoded. `None`
    /// for a name outside the personal namespace.
    pub fn levels_of(&self, server: &str) -> Option<Vec<String>> {
        let rest = if self.prefix.is_empty() {
            server
        } else if server.len() >= self.prefix.len()
            && server.is_char_boundary(self.prefix.len())
            && server[..self.prefix.len()].eq_ignore_ascii_case(&self.prefix)
        {
            &server[self.prefix.len()..]
        } else {
            return None;
        };
        if rest.is_empty() {
            return None;
        }
        let parts: Vec<&str> = match self.delimiter {
            Some(d) => rest.split(d).collect(),
            None => vec![rest],
        };
        Some(parts.into_iter().map(|p| self.decode(p)).collect())
    }

    /// A server-side name as people read it (modified UTF-7 decoded), for logs.
    pub fn shown(&self, server: &str) -> String {
        self.decode(server)
    }

    /// Which of `candidates` (destinations as levels) a server-side folder is, by
    /// comparing server names: how a folder a person moved mail into is traced back to
    /// the member and category whose folder it is.
    pub fn find<'c>(&self, server: &str, candidates: &'c [Vec<String>]) -> Option<&'c [String]> {
        candidates
            .iter()
            .find(|c| self.server_name(c) == server)
            .map(Vec::as_slice)
    }
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

    fn levels(s: &[&str]) -> Vec<String> {
        s.iter().map(|l| l.to_string()).collect()
    }

    /// Issue 17: on a server whose personal namespace is `INBOX.` (Cyrus, shared
    /// hosting), every folder is created inside it; a template that already says INBOX is
    /// not prefixed twice; names map back to their levels.
    #[test]
    fn folders_go_inside_the_personal_namespace_once() {
        let cyrus = Naming {
            prefix: "INBOX.".into(),
            delimiter: Some('.'),
            ..Naming::default()
        };
        let cases: &[(&[&str], &str)] = &[
            (
                &["SUPPORT", "Sarah Williams"],
                "INBOX.SUPPORT.Sarah Williams",
            ),
            (&["INBOX", "SUPPORT", "Sarah"], "INBOX.SUPPORT.Sarah"),
            (&["inbox", "Newsletters"], "INBOX.Newsletters"),
            (&["INBOX.Newsletters"], "INBOX.Newsletters"),
            (&["INBOX.Clients", "Acme"], "INBOX.Clients.Acme"),
            (
                &["SUPPORT", "Night/Day Crew"],
                "INBOX.SUPPORT.Night-Day Crew",
            ),
            (
                &["MANAGER", "Sinéad O'Brien"],
                "INBOX.MANAGER.Sin&AOk-ad O'Brien",
            ),
            (&["Dr. J. Smith"], "INBOX.Dr J Smith"),
        ];
        for (input, want) in cases {
            assert_eq!(cyrus.server_name(&levels(input)), *want, "{input:?}");
        }
        assert_eq!(
            cyrus.levels_of("INBOX.MANAGER.Sin&AOk-ad O'Brien"),
            Some(levels(&["MANAGER", "Sinéad O'Brien"]))
        );
        assert_eq!(cyrus.levels_of("user.bob.Sent"), None);
        assert_eq!(cyrus.levels_of("INBOX"), None);
        assert_eq!(cyrus.shown("INBOX.Sin&AOk-ad"), "INBOX.Sinéad");
        // The default layout: no prefix, names as before.
        let dovecot = Naming {
            delimiter: Some('/'),
            ..Naming::default()
        };
        assert_eq!(
            dovecot.server_name(&levels(&["SUPPORT", "Night/Day Crew"])),
            "SUPPORT/Night-Day Crew"
        );
        assert_eq!(
            dovecot.server_name(&levels(&["INBOX", "Support"])),
            "INBOX/Support"
        );
        assert_eq!(
            dovecot.levels_of("SUPPORT/Night-Day Crew"),
            Some(levels(&["SUPPORT", "Night-Day Crew"]))
        );
    }

    /// Corrections (a person moving mail between member folders) need the member behind
    /// a folder: every destination maps back, neutralised names included.
    #[test]
    fn server_folders_map_back_to_their_destination() {
        let candidates = vec![
            levels(&["SUPPORT", "Night/Day Crew"]),
            levels(&["SALES", "Zoë Müller"]),
            levels(&["Newsletters"]),
        ];
        for naming in [
            Naming {
                prefix: "INBOX.".into(),
                delimiter: Some('.'),
                ..Naming::default()
            },
            Naming {
                delimiter: Some('/'),
                ..Naming::default()
            },
            Naming {
                delimiter: Some('/'),
                utf8: true,
                ..Naming::default()
            },
        ] {
            for c in &candidates {
                let server = naming.server_name(c);
                assert_eq!(
                    naming.find(&server, &candidates),
                    Some(c.as_slice()),
                    "{naming:?}"
                );
            }
            assert_eq!(naming.find("Archive", &candidates), None);
        }
    }
}
