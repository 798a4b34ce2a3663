//! HTML mail body → plain text, for keyword matching and for telling new text apart from
//! quoted replies and signatures.
//!
//! A single forward pass (tolerant byte tokenizer + explicit element stack: no recursion, linear
//! time, never panics). Block elements become line breaks, quoted material (`blockquote`, Gmail,
//! Thunderbird, Apple containers; everything after Outlook's reply markers) becomes `> `-prefixed
//! lines, and a recognised signature block is preceded by a `-- ` line. Attribution lines
//! ("On … wrote:", Outlook's From/Sent block) count as part of the quote they introduce, so they
//! carry its prefix too. Limits: the only CSS honoured is inline `display:none`; attribute values
//! are not entity-decoded; lists get no numbers or indentation; CDATA and comments are dropped;
//! zero-width padding characters are removed; quote prefixes are capped at 32 levels.

use super::ascii_lower;
use std::collections::HashMap;

/// Maximum number of `>` characters rendered in a quote prefix.
const MAX_QUOTE_DEPTH: usize = 32;

/// Converts an HTML mail body to plain text: block structure becomes line breaks, quoted
/// material (blockquote, Gmail/Outlook/Thunderbird/Apple quote containers) becomes "> "-prefixed
/// lines, and a recognised signature block is preceded by a "-- " line.
pub fn html_to_text(html: &str) -> String {
    html_to_text_capped(html, usize::MAX).0
}

/// [`html_to_text`] that stops converting once about `max_bytes` of text are out (the text
/// returned may end a line past it); the flag says whether HTML was left unconverted.
pub fn html_to_text_capped(html: &str, max_bytes: usize) -> (String, bool) {
    let b = html.as_bytes();
    let mut conv = Converter::default();
    let mut i = 0;
    while i < b.len() {
        if conv.out.buf.len() + conv.out.line.len() > max_bytes {
            return (conv.finish(), true);
        }
        if b[i] != b'<' {
            let j = find_byte(b, i, b'<').unwrap_or(b.len());
            conv.text(sub(html, i, j));
            i = j;
            continue;
        }
        i = match b.get(i + 1).copied() {
            Some(b'!') if b[i..].starts_with(b"<!--") => skip_comment(b, i + 4),
            Some(b'!') if starts_with_ci(b, i, b"<![cdata[") => {
                find_seq(b, i + 9, b"]]>").map_or(b.len(), |j| j + 3)
            }
            Some(b'!' | b'?') => find_byte(b, i, b'>').map_or(b.len(), |j| j + 1),
            Some(b'/') if b.get(i + 2).is_some_and(u8::is_ascii_alphabetic) => {
                let end = scan(b, i + 2, |c| {
                    c.is_ascii_whitespace() || c == b'/' || c == b'>'
                });
                conv.end(&ascii_lower(sub(html, i + 2, end)));
                find_byte(b, end, b'>').map_or(b.len(), |j| j + 1)
            }
            // "</ x>", "</>": bogus comment; a "</" at EOF falls through to literal text.
            Some(b'/') if i + 2 < b.len() => find_byte(b, i, b'>').map_or(b.len(), |j| j + 1),
            Some(c) if c.is_ascii_alphabetic() => start_tag(html, i, &mut conv),
            _ => {
                conv.text("<");
                i + 1
            }
        };
    }
    (conv.finish(), false)
}

/// Attributes the converter cares about (first occurrence wins, values are raw).
#[derive(Default)]
struct Attrs<'a> {
    class: &'a str,
    id: &'a str,
    style: &'a str,
    kind: &'a str,
    smartmail: &'a str,
    hidden: bool,
}

/// Parses a start tag at `i` (`b[i] == '<'`, followed by a letter) and returns the index after it.
fn start_tag(html: &str, i: usize, conv: &mut Converter) -> usize {
    let b = html.as_bytes();
    let is_ws = |c: u8| c.is_ascii_whitespace();
    let name_end = scan(b, i + 1, |c| is_ws(c) || c == b'/' || c == b'>');
    let name = ascii_lower(sub(html, i + 1, name_end));
    let mut a = Attrs::default();
    let mut self_closing = false;
    let mut j = name_end;
    loop {
        j = scan(b, j, |c| !is_ws(c));
        match b.get(j).copied() {
            None => return b.len(), // EOF inside a tag: drop it, like browsers do
            Some(b'>') => {
                j += 1;
                break;
            }
            Some(b'/') => {
                j += 1;
                if b.get(j) == Some(&b'>') {
                    self_closing = true;
                    j += 1;
                    break;
                }
                continue;
            }
            Some(_) => {}
        }
        let n0 = j;
        j = scan(b, j, |c| is_ws(c) || c == b'/' || c == b'>' || c == b'=');
        let attr = sub(html, n0, j);
        let mut value = "";
        let k = scan(b, j, |c| !is_ws(c));
        if b.get(k) == Some(&b'=') {
            j = scan(b, k + 1, |c| !is_ws(c));
            match b.get(j).copied() {
                Some(q @ (b'"' | b'\'')) => {
                    // Unterminated quote: let the value run to the next '>' instead of EOF.
                    let end = find_byte(b, j + 1, q)
                        .or_else(|| find_byte(b, j + 1, b'>'))
                        .unwrap_or(b.len());
                    value = sub(html, j + 1, end);
                    j = if b.get(end) == Some(&q) { end + 1 } else { end };
                }
                _ => {
                    let end = scan(b, j, |c| is_ws(c) || c == b'>');
                    value = sub(html, j, end);
                    j = end;
                }
            }
        }
        let slot = match &*ascii_lower(attr) {
            "class" => Some(&mut a.class),
            "id" => Some(&mut a.id),
            "style" => Some(&mut a.style),
            "type" => Some(&mut a.kind),
            "data-smartmail" => Some(&mut a.smartmail),
            "hidden" => {
                a.hidden = true;
                None
            }
            _ => None,
        };
        if let Some(field) = slot.filter(|f| f.is_empty()) {
            *field = value; // first occurrence wins
        }
    }
    if matches!(
        &*name,
        "script" | "style" | "title" | "template" | "iframe" | "noembed" | "noframes"
    ) && !self_closing
    {
        return skip_raw_text(b, j, &name);
    }
    conv.start(&name, &a, self_closing);
    j
}

/// Skips the content of a raw-text element up to and including `</name…>`.
fn skip_raw_text(b: &[u8], mut j: usize, name: &str) -> usize {
    while let Some(lt) = find_seq(b, j, b"</") {
        let after = lt + 2 + name.len();
        let ends_name = matches!(
            b.get(after),
            None | Some(b'>' | b'/' | b' ' | b'\t' | b'\n' | b'\r' | b'\x0c')
        );
        if starts_with_ci(b, lt + 2, name.as_bytes()) && ends_name {
            return find_byte(b, after, b'>').map_or(b.len(), |k| k + 1);
        }
        j = lt + 2;
    }
    b.len()
}

/// Skips a comment whose body starts at `j`; an unterminated comment runs to EOF.
fn skip_comment(b: &[u8], j: usize) -> usize {
    if b.get(j) == Some(&b'>') {
        return j + 1; // "<!-->"
    }
    if b[j.min(b.len())..].starts_with(b"->") {
        return j + 2; // "<!--->"
    }
    find_seq(b, j, b"-->").map_or(b.len(), |k| k + 3)
}

/// Returns `s[a..b]`, or "" if the range is not on char boundaries (never happens by design).
fn sub(s: &str, a: usize, b: usize) -> &str {
    s.get(a..b).unwrap_or("")
}

/// Index of the first byte at or after `from` for which `stop` holds, or `b.len()`.
fn scan(b: &[u8], from: usize, stop: impl Fn(u8) -> bool) -> usize {
    let from = from.min(b.len());
    b[from..]
        .iter()
        .position(|&c| stop(c))
        .map_or(b.len(), |p| from + p)
}

/// Index of the first `needle` byte at or after `from`.
fn find_byte(b: &[u8], from: usize, needle: u8) -> Option<usize> {
    let p = scan(b, from, |c| c == needle);
    (p < b.len()).then_some(p)
}

/// Index of the first occurrence of `needle` at or after `from`.
fn find_seq(b: &[u8], mut from: usize, needle: &[u8]) -> Option<usize> {
    let first = *needle.first()?;
    while let Some(p) = find_byte(b, from, first) {
        if b[p..].starts_with(needle) {
            return Some(p);
        }
        from = p + 1;
    }
    None
}

/// Whether `b[at..]` starts with the lowercase ASCII `needle`, ignoring ASCII case.
fn starts_with_ci(b: &[u8], at: usize, needle: &[u8]) -> bool {
    b.get(at..at + needle.len())
        .is_some_and(|s| s.eq_ignore_ascii_case(needle))
}

/// Whether the whitespace-separated class list contains `name` (ASCII case-insensitive).
fn has_class(class: &str, name: &str) -> bool {
    class
        .split_ascii_whitespace()
        .any(|c| c.eq_ignore_ascii_case(name))
}

/// Whether an inline style hides the element: `display:none`, ignoring whitespace and
/// ASCII case.
fn style_hidden(style: &str) -> bool {
    const WANT: &[u8] = b"display:none";
    let mut matched = 0;
    for c in style.chars().filter(|c| !c.is_whitespace()) {
        let c = c.to_ascii_lowercase();
        // 'd' occurs once in WANT, so after a mismatch only a 'd' can start a new match.
        matched = if c == char::from(WANT[matched]) {
            matched + 1
        } else {
            usize::from(c == 'd')
        };
        if matched == WANT.len() {
            return true;
        }
    }
    false
}

/// How a quote-contributing element affects the depth.
#[derive(Clone, Copy, PartialEq)]
enum Quote {
    /// Ordinary quote level (blockquote, moz-cite-prefix).
    Plain,
    /// `div.gmail_quote`: one level that its inner `blockquote.gmail_quote` shares.
    Gmail,
    /// `blockquote.gmail_quote` directly inside a Gmail container: adds no level.
    Merged,
}

/// Elements that never have content or an end tag.
const VOID: [&str; 14] = [
    "br", "hr", "img", "meta", "link", "input", "area", "base", "col", "embed", "param", "source",
    "track", "wbr",
];

/// An open element and the effects to undo when it closes.
#[derive(Default)]
struct Open {
    name: String,
    block: u8,
    quote: Option<Quote>,
    pre: bool,
    hidden: bool,
}

/// Rendering state: element stack plus the output line builder.
#[derive(Default)]
struct Converter {
    stack: Vec<Open>,
    open_count: HashMap<String, usize>,
    quotes: Vec<Quote>,
    quote_depth: usize,
    tail_quote: bool,
    hidden: usize,
    pre: usize,
    skip_lf: bool,
    out: Out,
}

impl Converter {
    /// Current quote depth, capped for rendering.
    fn depth(&self) -> usize {
        (self.quote_depth + usize::from(self.tail_quote)).min(MAX_QUOTE_DEPTH)
    }

    fn start(&mut self, name: &str, a: &Attrs, self_closing: bool) {
        let head_content = matches!(name, "head" | "meta" | "link" | "base" | "noscript");
        if name == "body" || (self.in_head() && !head_content) {
            self.end("head"); // anything but head content implicitly ends an unclosed <head>
        }
        let void = VOID.contains(&name);
        let mut e = Open {
            name: name.to_string(),
            ..Open::default()
        };
        if self.hidden > 0 || name == "head" || a.hidden || style_hidden(a.style) {
            if !void {
                e.hidden = true;
                self.hidden += 1;
                self.push(e, self_closing);
            }
            return;
        }
        if a.id.eq_ignore_ascii_case("divRplyFwdMsg") || a.id.eq_ignore_ascii_case("appendonsend") {
            self.out.brk(1);
            self.tail_quote = true;
        }
        e.block = block_kind(name);
        self.out.brk(e.block);
        if has_class(a.class, "gmail_signature")
            || has_class(a.class, "moz-signature")
            || a.id.eq_ignore_ascii_case("signature")
            || a.smartmail.eq_ignore_ascii_case("gmail_signature")
        {
            self.out.signature(self.depth());
        }
        match name {
            "br" => self.out.hard_break(),
            "hr" => {
                self.out.brk(1);
                "---".chars().for_each(|c| self.out.put(c, self.depth()));
                self.out.brk(1);
            }
            "li" => {
                self.out.put('-', self.depth());
                self.out.space = true;
            }
            "td" | "th" => self.out.space = true,
            "pre" => {
                self.pre += 1;
                self.skip_lf = true;
                e.pre = true;
            }
            _ => {}
        }
        e.quote = if name == "blockquote" {
            let merge =
                self.quotes.last() == Some(&Quote::Gmail) && has_class(a.class, "gmail_quote");
            Some(if merge { Quote::Merged } else { Quote::Plain })
        } else if has_class(a.class, "gmail_quote") {
            Some(Quote::Gmail)
        } else if has_class(a.class, "moz-cite-prefix") {
            Some(Quote::Plain)
        } else {
            None
        };
        if let Some(q) = e.quote {
            self.out.brk(1);
            e.block = e.block.max(1);
            self.quotes.push(q);
            self.quote_depth += usize::from(q != Quote::Merged);
        }
        if !void {
            self.push(e, self_closing);
        }
    }

    /// Pushes an open element; a self-closed (`<x/>`) one is closed again at once.
    fn push(&mut self, e: Open, self_closing: bool) {
        let name = e.name.clone();
        *self.open_count.entry(e.name.clone()).or_insert(0) += 1;
        self.stack.push(e);
        if self_closing {
            self.end(&name);
        }
    }

    /// Closes the innermost open `name` and everything opened after it; stray end tags are ignored.
    fn end(&mut self, name: &str) {
        if name == "br" && self.hidden == 0 {
            self.out.hard_break();
        }
        if self.open_count.get(name).copied().unwrap_or(0) == 0 {
            return;
        }
        while let Some(e) = self.stack.pop() {
            if let Some(n) = self.open_count.get_mut(&e.name) {
                *n = n.saturating_sub(1);
            }
            self.hidden = self.hidden.saturating_sub(usize::from(e.hidden));
            self.pre = self.pre.saturating_sub(usize::from(e.pre));
            if let Some(q) = e.quote {
                self.quotes.pop();
                let levels = usize::from(q != Quote::Merged);
                self.quote_depth = self.quote_depth.saturating_sub(levels);
            }
            if e.block > 0 && self.hidden == 0 {
                self.out.brk(e.block);
            }
            if e.name == name {
                break;
            }
        }
    }

    fn in_head(&self) -> bool {
        self.open_count.get("head").is_some_and(|&n| n > 0)
    }

    fn text(&mut self, raw: &str) {
        if self.in_head() && !raw.trim().is_empty() {
            self.end("head");
        }
        if self.hidden == 0 {
            decode_entities(raw, |c| self.char(c));
        }
    }

    fn char(&mut self, c: char) {
        let d = self.depth();
        let skip_lf = std::mem::take(&mut self.skip_lf);
        if matches!(
            c,
            '\u{200b}'..='\u{200d}' | '\u{2060}' | '\u{feff}' | '\u{34f}' | '\u{ad}'
        ) {
            return; // invisible padding, common in preheaders
        }
        if self.pre > 0 {
            match c {
                '\n' if skip_lf => {}
                '\n' => self.out.hard_break(),
                '\t' => self.out.put('\t', d),
                '\u{a0}' => self.out.put(' ', d),
                c if c.is_control() => {}
                c => self.out.put(c, d),
            }
            return;
        }
        match c {
            ' ' | '\t' | '\n' | '\r' | '\x0c' => self.out.space = true,
            '\u{a0}' => {
                self.out.space = true;
                self.out.touched = true;
            }
            c if c.is_control() => {}
            c => self.out.put(c, d),
        }
    }

    fn finish(mut self) -> String {
        self.out.end_line();
        while self.out.buf.ends_with('\n') {
            self.out.buf.pop();
        }
        self.out.buf
    }
}

/// Line-break weight of an element: 0 inline, 1 line break, 2 blank line.
fn block_kind(name: &str) -> u8 {
    match name {
        "p" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "pre" => 2,
        "div" | "li" | "tr" | "table" | "ul" | "ol" | "dl" | "dd" | "dt" | "blockquote"
        | "section" | "article" | "header" | "footer" | "address" | "nav" | "aside" | "main"
        | "figure" | "figcaption" | "form" | "fieldset" | "center" | "details" | "summary"
        | "caption" | "body" | "html" => 1,
        _ => 0,
    }
}

/// Output builder: lines are finished lazily so breaks collapse and trailing blanks vanish.
#[derive(Default)]
struct Out {
    buf: String,
    line: String,
    line_depth: usize,
    /// The current line received content or a `&nbsp;` (an nbsp-only line is a blank line).
    touched: bool,
    /// Collapsed whitespace is pending before the next character.
    space: bool,
    /// A blank line is pending before the next content line.
    blank: bool,
    last_depth: usize,
    /// The last finished line was a `-- ` signature delimiter.
    last_sig: bool,
}

impl Out {
    fn put(&mut self, c: char, depth: usize) {
        if !self.line.is_empty() && depth != self.line_depth {
            self.end_line();
        }
        if self.line.is_empty() {
            if self.blank && !self.buf.is_empty() && !self.last_sig {
                let prefix = quote_prefix(self.last_depth.min(depth));
                self.buf.push_str(prefix.trim_end());
                self.buf.push('\n');
            }
            self.blank = false;
            self.line_depth = depth;
        } else if self.space {
            self.line.push(' ');
        }
        self.space = false;
        self.touched = true;
        self.line.push(c);
    }

    fn end_line(&mut self) {
        let t = self.line.trim_end();
        if t.is_empty() {
            self.blank |= self.touched;
        } else if !(t == "--" && self.last_sig) {
            self.last_sig = t == "--";
            self.buf.push_str(&quote_prefix(self.line_depth));
            self.buf.push_str(if self.last_sig { "-- " } else { t });
            self.buf.push('\n');
            self.last_depth = self.line_depth;
        }
        self.line.clear();
        self.touched = false;
        self.space = false;
    }

    /// Block boundary: ends the current line; weight 2 also asks for a blank line.
    fn brk(&mut self, weight: u8) {
        if weight > 0 && (!self.line.is_empty() || self.touched) {
            self.end_line();
        }
        self.blank |= weight == 2;
    }

    /// `<br>`: ends the current line, or produces an empty line if there is none.
    fn hard_break(&mut self) {
        if self.line.is_empty() && !self.touched {
            self.blank = true;
        } else {
            self.end_line();
        }
    }

    /// Emits a `-- ` delimiter unless the text already has one right before.
    fn signature(&mut self, depth: usize) {
        self.brk(1);
        if !self.last_sig {
            self.put('-', depth);
            self.put('-', depth);
            self.end_line();
        }
    }
}

/// `"> "` repeated `depth` times (capped).
fn quote_prefix(depth: usize) -> String {
    "> ".repeat(depth.min(MAX_QUOTE_DEPTH))
}

/// Named entities that matter in mail: markup, punctuation, symbols and Latin-1 letters.
#[rustfmt::skip]
const ENTITIES: &[(&str, char)] = &[
    ("nbsp", '\u{a0}'), ("amp", '&'), ("lt", '<'), ("gt", '>'), ("quot", '"'), ("apos", '\''),
    ("rsquo", '’'), ("lsquo", '‘'), ("ldquo", '“'), ("rdquo", '”'), ("sbquo", '‚'),
    ("bdquo", '„'), ("ndash", '–'), ("mdash", '—'), ("hellip", '…'), ("bull", '•'),
    ("middot", '·'), ("copy", '©'), ("reg", '®'), ("trade", '™'), ("euro", '€'), ("pound", '£'),
    ("yen", '¥'), ("cent", '¢'), ("curren", '¤'), ("sect", '§'), ("para", '¶'), ("deg", '°'),
    ("plusmn", '±'), ("times", '×'), ("divide", '÷'), ("frac12", '½'), ("frac14", '¼'),
    ("frac34", '¾'), ("sup1", '¹'), ("sup2", '²'), ("sup3", '³'), ("laquo", '«'), ("raquo", '»'),
    ("lsaquo", '‹'), ("rsaquo", '›'), ("iexcl", '¡'), ("iquest", '¿'), ("shy", '\u{ad}'),
    ("zwnj", '\u{200c}'), ("zwj", '\u{200d}'), ("thinsp", '\u{2009}'), ("ensp", '\u{2002}'),
    ("emsp", '\u{2003}'), ("dagger", '†'), ("Dagger", '‡'), ("permil", '‰'), ("prime", '′'),
    ("Prime", '″'), ("larr", '←'), ("rarr", '→'), ("uarr", '↑'), ("darr", '↓'), ("harr", '↔'),
    ("hearts", '♥'), ("check", '✓'), ("brvbar", '¦'), ("not", '¬'), ("micro", 'µ'),
    ("macr", '¯'), ("acute", '´'), ("cedil", '¸'), ("uml", '¨'), ("ordf", 'ª'), ("ordm", 'º'),
    ("circ", 'ˆ'), ("tilde", '˜'), ("fnof", 'ƒ'), ("szlig", 'ß'), ("Agrave", 'À'),
    ("Aacute", 'Á'), ("Acirc", 'Â'), ("Atilde", 'Ã'), ("Auml", 'Ä'), ("Aring", 'Å'),
    ("AElig", 'Æ'), ("Ccedil", 'Ç'), ("Egrave", 'È'), ("Eacute", 'É'), ("Ecirc", 'Ê'),
    ("Euml", 'Ë'), ("Igrave", 'Ì'), ("Iacute", 'Í'), ("Icirc", 'Î'), ("Iuml", 'Ï'), ("ETH", 'Ð'),
    ("Ntilde", 'Ñ'), ("Ograve", 'Ò'), ("Oacute", 'Ó'), ("Ocirc", 'Ô'), ("Otilde", 'Õ'),
    ("Ouml", 'Ö'), ("Oslash", 'Ø'), ("Ugrave", 'Ù'), ("Uacute", 'Ú'), ("Ucirc", 'Û'),
    ("Uuml", 'Ü'), ("Yacute", 'Ý'), ("THORN", 'Þ'), ("agrave", 'à'), ("aacute", 'á'),
    ("acirc", 'â'), ("atilde", 'ã'), ("auml", 'ä'), ("aring", 'å'), ("aelig", 'æ'),
    ("ccedil", 'ç'), ("egrave", 'è'), ("eacute", 'é'), ("ecirc", 'ê'), ("euml", 'ë'),
    ("igrave", 'ì'), ("iacute", 'í'), ("icirc", 'î'), ("iuml", 'ï'), ("eth", 'ð'), ("ntilde", 'ñ'),
    ("ograve", 'ò'), ("oacute", 'ó'), ("ocirc", 'ô'), ("otilde", 'õ'), ("ouml", 'ö'),
    ("oslash", 'ø'), ("ugrave", 'ù'), ("uacute", 'ú'), ("ucirc", 'û'), ("uuml", 'ü'),
    ("yacute", 'ý'), ("thorn", 'þ'), ("yuml", 'ÿ'), ("Yuml", 'Ÿ'), ("OElig", 'Œ'), ("oelig", 'œ'),
    ("Scaron", 'Š'), ("scaron", 'š'),
];

/// Windows-1252 meanings of `&#128;`–`&#159;`, as browsers decode them.
#[rustfmt::skip]
const CP1252: [char; 32] = [
    '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8d}', 'Ž', '\u{8f}',
    '\u{90}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9d}', 'ž', 'Ÿ',
];

/// Feeds `s` to `emit` with character references decoded; unknown ones stay literal.
fn decode_entities(s: &str, mut emit: impl FnMut(char)) {
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        rest[..amp].chars().for_each(&mut emit);
        let after = &rest[amp + 1..];
        let (c, used) = decode_one(after).unwrap_or(('&', 0));
        emit(c);
        rest = after.get(used..).unwrap_or("");
    }
    rest.chars().for_each(emit);
}

/// Decodes the reference following a `&`, returning the char and the bytes consumed.
fn decode_one(s: &str) -> Option<(char, usize)> {
    let b = s.as_bytes();
    if b.first() == Some(&b'#') {
        let hex = matches!(b.get(1), Some(b'x' | b'X'));
        let start = if hex { 2 } else { 1 };
        let radix = if hex { 16 } else { 10 };
        let end = scan(b, start, |c| !(c as char).is_digit(radix));
        if end == start {
            return None;
        }
        let mut v: u32 = 0;
        for &c in &b[start..end] {
            let digit = (c as char).to_digit(radix).unwrap_or(0);
            v = v.saturating_mul(radix).saturating_add(digit).min(0x11_0000);
        }
        let c = match v {
            0 => '\u{fffd}',
            0x80..=0x9f => CP1252[(v - 0x80) as usize],
            _ => char::from_u32(v).unwrap_or('\u{fffd}'),
        };
        return Some((c, end + usize::from(b.get(end) == Some(&b';'))));
    }
    let end = scan(b, 0, |c| !c.is_ascii_alphanumeric()).min(32);
    let name = s.get(..end)?;
    let c = ENTITIES.iter().find(|(n, _)| *n == name).map(|&(_, c)| c)?;
    if b.get(end) == Some(&b';') {
        Some((c, end + 1))
    } else if matches!(name, "amp" | "lt" | "gt" | "quot" | "nbsp") {
        Some((c, end)) // legacy forms browsers accept without ';'
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::{html_to_text, html_to_text_capped, style_hidden};
    use crate::mail::ascii_lower;

    #[test]
    fn inline_styles_that_hide() {
        for (style, hidden) in [
            ("display:none", true),
            ("font-size:1px; DISPLAY : None !important", true),
            ("ddisplay:none", true),
            ("display:\u{a0}none", true),
            ("display:block", false),
            ("displaynone", false),
            ("display:non", false),
            ("", false),
        ] {
            assert_eq!(style_hidden(style), hidden, "{style:?}");
        }
    }

    #[test]
    fn names_are_lowercased_and_copied_only_when_needed() {
        assert!(matches!(
            ascii_lower("div"),
            std::borrow::Cow::Borrowed("div")
        ));
        assert_eq!(ascii_lower("BlockQuote"), "blockquote");
    }

    /// (name, input HTML, expected text)
    #[rustfmt::skip]
    const CASES: &[(&str, &str, &str)] = &[
        ("plain text", "Hello   world", "Hello world"),
        ("paragraphs", "<p>One</p><p>Two\n  lines</p>", "One\n\nTwo lines"),
        ("divs", "<div>a</div><div>b</div>", "a\nb"),
        ("br", "a<br>b<br/><br>c", "a\nb\n\nc"),
        ("gmail blank div", "<div>Hi</div><div><br></div><div>Bye</div>", "Hi\n\nBye"),
        ("nbsp blank div", "<div>Hi</div><div>&nbsp;</div><div>Bye</div>", "Hi\n\nBye"),
        ("list", "<p>Items:</p><ul><li>one</li><li> two <li>three</ul>after",
            "Items:\n\n- one\n- two\n- three\nafter"),
        ("table", "<table><tr><td>Name</td><td>Qty</td></tr><tr><td>Apple</td><td>3</td></tr></table>",
            "Name Qty\nApple 3"),
        ("headings and hr", "<h1>Title</h1>text<hr>more", "Title\n\ntext\n---\nmore"),
        ("named entities", "Tom&nbsp;&amp;&nbsp;Jerry &lt;3 &ldquo;hi&rdquo; &mdash; caf&eacute; &euro;5&hellip;",
            "Tom & Jerry <3 “hi” — café €5…"),
        ("numeric entities", "it&#8217;s &#x2019;&#X41; &#39;q&#39; &#150;", "it’s ’A 'q' –"),
        ("invalid numeric", "a&#0;b&#xD800;c&#99999999999;d&#;e&#xg;", "a\u{fffd}b\u{fffd}c\u{fffd}d&#;e&#xg;"),
        ("unknown entities", "&bogus; &amp &copy fish&chips", "&bogus; & &copy fish&chips"),
        ("script style head", "<html><head><title>T</title><style>p{x:1}</style></head><body><script>if(a<b){x()}</script>Hi<style>.a>b{}</style></body>",
            "Hi"),
        ("template dropped", "a<template><p>x</p></template>b", "ab"),
        ("comments", "a<!-- hidden <b>x</b> -->b<!---->c<!-->d", "abcd"),
        ("conditional comments", "<!--[if mso]><table><tr><td>MSO<![endif]--><![if !mso]>All<![endif]>", "All"),
        ("doctype cdata pi", "<!DOCTYPE html><?xml version=\"1.0\"?>x<![CDATA[ <b>y</b> ]]>z", "xz"),
        ("uppercase tags", "<DIV>A</DIV><P>B<BR>C</P><BLOCKQUOTE>D</BLOCKQUOTE>", "A\n\nB\nC\n\n> D"),
        ("attr with >", "<a href=\"x>y\" title='1>0'>link</a> <img alt=\"a > b\" src=x>ok", "link ok"),
        ("unquoted attrs", "<div class=gmail_quote id=x>q</div>new", "> q\nnew"),
        ("malformed tags", "a < b and c<d e<3 </ x> </>f</p>g", "a < b and c fg"),
        ("self closing", "a<span/>b<div/>c", "ab\nc"),
        ("links no url", "See <a href=\"https://x.example/\">the docs</a>.", "See the docs."),
        ("pre", "<p>Code:</p><pre>\n  fn main() {\n      x();\n  }</pre><p>end</p>",
            "Code:\n\n  fn main() {\n      x();\n  }\n\nend"),
        ("blockquote", "Yes.<blockquote>Can you?<br>Please</blockquote>Thanks", "Yes.\n> Can you?\n> Please\nThanks"),
        ("nested quotes", "a<blockquote>b<blockquote>c<p>d</p></blockquote>e</blockquote>",
            "a\n> b\n> > c\n> >\n> > d\n>\n> e"),
        ("unclosed blockquote", "new<blockquote>old<div>older", "new\n> old\n> older"),
        ("hidden preheader", "<span style=\"display: none !important; max-height:0\">Preview&#847;&zwnj;&nbsp;</span><div hidden>x</div><p>Big sale</p>",
            "Big sale"),
        ("signature div", "Thanks<div class=\"moz-signature\">-- <br>Bob</div>", "Thanks\n-- \nBob"),
        ("outlook signature", "<div>Hi</div><div id=\"Signature\"><p>Carol | ACME</p></div>", "Hi\n-- \nCarol | ACME"),
        ("gmail reply",
            concat!("<div dir=\"ltr\">Sounds good, see you then!<br clear=\"all\"><div><br></div>-- <br>",
                "<div dir=\"ltr\" class=\"gmail_signature\" data-smartmail=\"gmail_signature\"><div dir=\"ltr\">",
                "Alice Smith<div>Engineer</div></div></div></div><br><div class=\"gmail_quote\">",
                "<div dir=\"ltr\" class=\"gmail_attr\">On Mon, Jan 1, 2024 at 10:00 AM Bob &lt;<a href=\"mailto:bob@x.org\">",
                "bob@x.org</a>&gt; wrote:<br></div><blockquote class=\"gmail_quote\" style=\"margin:0px 0px 0px 0.8ex\">",
                "<div dir=\"ltr\">Lunch on Friday?<div class=\"gmail_quote\"><div class=\"gmail_attr\">On Sun, Carol wrote:</div>",
                "<blockquote class=\"gmail_quote\">Who is in?</blockquote></div></div></blockquote></div>"),
            "Sounds good, see you then!\n\n-- \nAlice Smith\nEngineer\n\n> On Mon, Jan 1, 2024 at 10:00 AM Bob <bob@x.org> wrote:\n> Lunch on Friday?\n> > On Sun, Carol wrote:\n> > Who is in?"),
        ("outlook reply",
            concat!("<html><head><meta charset=\"utf-8\"><style>p{margin:0}</style></head><body><div>Approved.</div>",
                "<div id=\"appendonsend\"></div><hr style=\"display:inline-block;width:98%\" tabindex=\"-1\">",
                "<div id=\"divRplyFwdMsg\" dir=\"ltr\"><font face=\"Calibri\"><b>From:</b> Bob &lt;bob@x.org&gt;<br>",
                "<b>Sent:</b> Monday, January 1, 2024 10:00 AM<br><b>Subject:</b> Budget</font><div>&nbsp;</div></div>",
                "<div>Please approve the budget.</div></body></html>"),
            "Approved.\n> ---\n> From: Bob <bob@x.org>\n> Sent: Monday, January 1, 2024 10:00 AM\n> Subject: Budget\n>\n> Please approve the budget."),
        ("apple mail reply",
            concat!("<html><body dir=\"auto\">Will do.<br><br><div dir=\"ltr\">Sent from my iPhone</div><div dir=\"ltr\"><br>",
                "<blockquote type=\"cite\">On Jan 1, 2024, at 10:00, Bob &lt;bob@x.org&gt; wrote:<br><br></blockquote></div>",
                "<blockquote type=\"cite\"><div dir=\"ltr\">Can you send the report?</div></blockquote></body></html>"),
            "Will do.\n\nSent from my iPhone\n\n> On Jan 1, 2024, at 10:00, Bob <bob@x.org> wrote:\n>\n> Can you send the report?"),
        ("thunderbird reply",
            "<p>Fine.</p><div class=\"moz-cite-prefix\">On 1/1/24 Bob wrote:<br></div><blockquote type=\"cite\"><p>Ok?</p></blockquote>",
            "Fine.\n\n> On 1/1/24 Bob wrote:\n>\n> Ok?"),
        ("marketing", concat!("<!DOCTYPE html><html><head><title>Sale</title></head><body>",
            "<div style=\"display:none;font-size:1px\">Don&rsquo;t miss out &zwnj;&nbsp;&zwnj;</div>",
            "<table width=\"100%\"><tr><td align=\"center\"><h2>SPRING SALE</h2><p>50&#37; off &ndash; today only</p>",
            "<a href=\"https://x.example/?a=1&amp;b=2\">Shop now &rarr;</a></td></tr></table>",
            "<p style=\"font-size:10px\">&copy; 2024 ACME&reg; &middot; <a href=\"u\">Unsubscribe</a></p></body></html>"),
            "SPRING SALE\n\n50% off – today only\n\nShop now →\n\n© 2024 ACME® · Unsubscribe"),
        ("lone lt", "<", "<"),
        ("trailing lt slash", "a</", "a</"),
        ("unterminated comment", "visible<!-- never closed <p>gone", "visible"),
        ("unterminated attr quote", "<a href=\"oops>text</a> more", "text more"),
        ("unterminated tag", "text<div class=\"x\"", "text"),
        ("empty", "", ""),
        ("blank runs collapse", "a<br><br><br><br>b<p></p><p></p><div><br></div><br><br>", "a\n\nb"),
        ("whitespace trimmed", "  <div>  a  </div>\n\n  <div>\tb\t</div>  ", "a\nb"),
        ("unclosed head", "<html><head><title>T</title><meta charset=utf-8>Hello <b>there</b>", "Hello there"),
        ("delimiter dedup", "<div>Bye</div><div>--</div><div class=\"gmail_signature\"><br><div id=\"signature\">Ann</div></div>",
            "Bye\n-- \nAnn"),
        ("quoted signature", "<blockquote>Hi<div class=\"moz-signature\">Bob</div></blockquote>", "> Hi\n> -- \n> Bob"),
    ];

    #[test]
    fn table_cases() {
        let mut failures = Vec::new();
        for (name, input, expected) in CASES {
            let got = html_to_text(input);
            if got != *expected {
                failures.push(format!(
                    "{name}:\n  expected {expected:?}\n  got      {got:?}"
                ));
            }
        }
        assert!(
            failures.is_empty(),
            "{} failing case(s):\n{}",
            failures.len(),
            failures.join("\n")
        );
    }

    #[test]
    fn deep_nesting_is_linear_and_stack_safe() {
        let n = 100_000;
        let divs = format!("{}x{}", "<div>".repeat(n), "</div>".repeat(n));
        let start = std::time::Instant::now();
        assert_eq!(html_to_text(&divs), "x");
        let quotes = format!(
            "{}deep{}after",
            "<blockquote>".repeat(n),
            "</blockquote>".repeat(n)
        );
        let want = format!("{}deep\nafter", "> ".repeat(32));
        assert_eq!(html_to_text(&quotes), want);
        let unclosed = format!("{}x{}", "<blockquote><div>".repeat(n), "</span>".repeat(n));
        assert!(html_to_text(&unclosed).ends_with("> x"));
        assert!(start.elapsed().as_secs() < 5, "took {:?}", start.elapsed());
    }

    #[test]
    fn random_bytes_do_not_panic() {
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        for round in 0..200 {
            let bytes: Vec<u8> = (0..2000)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    // Bias towards markup characters so the tokenizer paths get exercised.
                    let pool = b"<>/!-=\"'&#;x abpdivquote\n\xc3\xa9\xff";
                    if round % 2 == 0 {
                        pool[(seed % pool.len() as u64) as usize]
                    } else {
                        seed as u8
                    }
                })
                .collect();
            let _ = html_to_text(&String::from_utf8_lossy(&bytes));
        }
        // Every truncation of every table case (cuts tags, entities and comments mid-way).
        for (_, input, _) in CASES {
            for (i, _) in input.char_indices() {
                let _ = html_to_text(&input[..i]);
            }
        }
    }

    #[test]
    fn one_megabyte_is_fast() {
        let chunk = concat!("<div class=\"x\"><p>Hello &amp; welcome, caf&eacute; &#8217;s <a href=\"u?a=1&b>2\">link</a></p>",
            "<table><tr><td>a</td><td>b</td></tr></table><blockquote>q<br>r</blockquote><!-- c --></div>\n");
        let html = chunk.repeat(1_000_000 / chunk.len() + 1);
        let start = std::time::Instant::now();
        let text = html_to_text(&html);
        let took = start.elapsed();
        println!("{} bytes in {took:?}", html.len());
        assert!(text.contains("> q\n> r"));
        assert!(took.as_secs() < 5);
    }

    #[test]
    fn conversion_stops_at_the_cap() {
        // 100,000 nested blockquotes expand every character into a 66-byte quoted line.
        let html = format!("<p>first</p>{}", "<blockquote>x".repeat(100_000));
        let (text, cut) = html_to_text_capped(&html, 10_000);
        assert!(cut);
        assert!(text.starts_with("first"));
        assert!(text.len() < 10_000 + 200, "{}", text.len());
        let (text, cut) = html_to_text_capped("<p>short</p>", 10_000);
        assert_eq!((text.as_str(), cut), ("short", false));
    }
}
