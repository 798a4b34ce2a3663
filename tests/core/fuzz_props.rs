//! The three fuzz properties (see `fuzz/README.md`) as proptest properties with structured
//! generators, so CI checks them on every run without cargo-fuzz:
//!
//! - mail-shaped input → `MessageView::parse` → `triage` (hottub profile): a decision with a
//!   category, a folder that is safe on the server, JSON that serialises, a receipt that
//!   renders;
//! - YAML-shaped input built from the profile's real keys (with hostile names, patterns
//!   and folder templates, and byte-level damage) → `Profile::from_bytes`: compiles, or
//!   fails with located, renderable errors; a compiled profile files a message addressed
//!   to each member into a safe folder;
//! - folder levels with hostile characters → `names::server_name`: the invariants of
//!   `folder_invariants.rs`, and modified UTF-7 round-trips.
//!
//! Bounded by default (the file runs in well under 30 s in a debug build); set
//! `PROPTEST_CASES=N` to run N cases of every property instead.

use std::sync::OnceLock;

use mailtriage::mail::{MessageView, DEFAULT_MAX_SCAN_BYTES};
use mailtriage::profile::Profile;
use mailtriage::triage::{explain, triage, Context};
use proptest::prelude::*;
use proptest::sample::select;

use super::folder_invariants::{check_mutf7, check_server_name};

/// `PROPTEST_CASES` when set, else this property's default.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn config(default: u32) -> ProptestConfig {
    ProptestConfig {
        cases: cases(default),
        // Failures are reported with their minimal input; no regression files are written
        // into the source tree (a found case becomes a named test instead).
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn hottub() -> &'static Profile {
    static P: OnceLock<Profile> = OnceLock::new();
    P.get_or_init(|| {
        Profile::load(&super::root().join("profiles/hottub.yaml")).expect("hottub compiles")
    })
}

/// Checks a decision's folder on servers with `/` and `.` delimiters, in UTF-7 and UTF-8.
pub fn assert_folder_safe(path: &[String]) {
    assert!(!path.is_empty(), "a destination has at least one level");
    for delimiter in ['/', '.'] {
        for utf8 in [false, true] {
            if let Err(e) = check_server_name(path, Some(delimiter), utf8, false) {
                panic!("unsafe folder for {path:?} (delimiter {delimiter:?}, utf8 {utf8}): {e}");
            }
        }
    }
}

// ───────────────────────────── mail-shaped input ─────────────────────────────

const WORDS: &[&str] = &[
    "quote",
    "price list",
    "swim spa",
    "leak",
    "leaking",
    "no heat",
    "sparking",
    "lawyer",
    "unacceptable",
    "refund",
    "bulk",
    "commercial",
    "partnership",
    "franchise",
    "repair",
    "parts",
    "supplier",
    "invoice",
    "owner",
    "boss",
    "sales rep",
    "Mark",
    "Sarah",
    "Mr. Johnson",
    "Sarah Williams",
    "mark",
    "hot tub",
    "ozonator",
    "terrible",
    "love",
    "thanks",
    "!!!",
    "😡",
    "Zoë",
    "台北",
    "\u{200b}",
    "\u{feff}",
    "\t",
    "  ",
    "é",
    "=?utf-8?q?caf=C3=A9?=",
    "&amp;",
    "<b>",
    "\u{2028}",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
];

const BODY_LINES: &[&str] = &[
    "Hi Mark,",
    "Dear Mr. Johnson,",
    "Hello Sarah",
    "Hi team,",
    "> quoted quote for a hot tub",
    "On Mon, Jan 1, 2024 at 10:00 AM Jane <jane@example.com> wrote:",
    "-----Original Message-----",
    "From: someone@example.com",
    "-- ",
    "Sent from my iPhone",
    "Thanks,",
    "Jane",
    "<p>Our heater is <b>leaking</b></p>",
    "<blockquote>old</blockquote>",
    "=E2=80=99",
    "--boundary",
    "",
    " ",
    ".",
    "Content-Type: text/plain",
];

const FROMS: &[&str] = &[
    "Jane Doe <jane@example.com>",
    "\"Doe, Jane\" <jane@example.com>",
    "jane@example.com",
    "=?utf-8?B?WsO2ZQ==?= <zoe@example.com>",
    "<>",
    "Mark Johnson <mark@hottubman.ca>",
    "info@hottubman.ca",
    "MAILER-DAEMON@example.com",
    "orders@spa-parts-wholesale.example.com",
    "undisclosed-recipients:;",
    "\"<script>\" <@@>",
    "",
];

const TOS: &[&str] = &[
    "info@hottubman.ca",
    "mark@hottubman.ca",
    "Sarah <sarah@hottubman.ca>",
    "mark@hottubman.ca, sarah@hottubman.ca",
    "nobody@example.com",
    "",
    "@",
    "a@b@c",
];

const CHARSETS: &[&str] = &[
    "utf-8",
    "iso-8859-1",
    "windows-1252",
    "utf-16",
    "iso-2022-jp",
    "koi8-r",
    "x-unknown",
    "",
];

const EXTRA_HEADERS: &[&str] = &[
    "List-Id: <news.example.org>",
    "List-Unsubscribe: <mailto:u@example.org>",
    "Precedence: bulk",
    "Precedence: list",
    "Auto-Submitted: auto-replied",
    "Auto-Submitted: no",
    "X-Autoreply: yes",
    "Return-Path: <>",
    "Message-ID: <a@b>",
    "Message-ID: <<<>>>",
    "Date: Mon, 1 Jan 2024 10:00:00 +0000",
    "Date: 99 Foo 99999 99:99:99 +9999",
    "MIME-Version: 1.0",
    "Cc: sarah@hottubman.ca",
    "Reply-To: =?utf-8?q?=FF?= <x@y>",
    "In-Reply-To: <x@y>",
    "X-Folded: a\r\n b\r\n\tc",
];

fn words() -> impl Strategy<Value = String> {
    prop::collection::vec(select(WORDS), 0..12).prop_map(|w| w.join(" "))
}

fn body() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            3 => select(BODY_LINES).prop_map(String::from),
            3 => words(),
            1 => "\\PC{0,80}",
        ],
        0..24,
    )
    .prop_map(|lines| lines.join("\n"))
}

/// One message: headers from real names and hostile values, a body of greetings,
/// keywords, quotes and signatures, as text, HTML, base64, or multipart.
fn message() -> impl Strategy<Value = Vec<u8>> {
    (
        select(FROMS),
        select(TOS),
        words(),
        prop::collection::vec(select(EXTRA_HEADERS), 0..4),
        select(CHARSETS),
        0..5u8,
        body(),
        any::<bool>(),
        prop::option::of((any::<prop::sample::Index>(), any::<u8>())),
    )
        .prop_map(
            |(from, to, subject, extra, charset, shape, body, crlf, damage)| {
                let nl = if crlf { "\r\n" } else { "\n" };
                let mut m = format!("From: {from}{nl}To: {to}{nl}Subject: {subject}{nl}");
                for h in extra {
                    m.push_str(h);
                    m.push_str(nl);
                }
                let body = body.replace('\n', nl);
                match shape {
                    0 => m.push_str(&format!(
                        "Content-Type: text/plain; charset={charset}{nl}{nl}{body}"
                    )),
                    1 => m.push_str(&format!(
                        "Content-Type: text/html; charset=\"{charset}\"{nl}{nl}<html><body>{body}</body></html>"
                    )),
                    2 => {
                        use base64::Engine as _;
                        let b64 = base64::engine::general_purpose::STANDARD.encode(&body);
                        m.push_str(&format!(
                            "Content-Type: text/plain; charset={charset}{nl}Content-Transfer-Encoding: base64{nl}{nl}{b64}"
                        ));
                    }
                    3 => m.push_str(&format!(
                        "Content-Type: multipart/alternative; boundary=\"b1\"{nl}{nl}preamble{nl}--b1{nl}Content-Type: text/plain{nl}{nl}{body}{nl}--b1{nl}Content-Type: text/html{nl}{nl}<p>{body}</p>{nl}--b1--{nl}"
                    )),
                    _ => m.push_str(&format!("{nl}{body}")),
                }
                let mut raw = m.into_bytes();
                if let Some((at, byte)) = damage {
                    if !raw.is_empty() {
                        let i = at.index(raw.len());
                        raw[i] = byte;
                    }
                }
                raw
            },
        )
}

fn triage_checked(raw: &[u8], profile: &Profile, ctx: &Context) -> mailtriage::triage::Decision {
    let msg = MessageView::parse(raw, DEFAULT_MAX_SCAN_BYTES);
    let d = triage(&msg, profile, ctx);
    assert!(!d.category.is_empty(), "a decision always has a category");
    if let Some(path) = &d.folder_path {
        assert_folder_safe(path);
    }
    serde_json::to_string(&d).expect("a decision serialises");
    let _ = explain::render(&msg, &d);
    d
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn mail_shaped_input_gets_a_safe_decision(raw in message()) {
        let ctx = Context {
            account_addresses: vec!["info@hottubman.ca".to_string()],
            ..Context::default()
        };
        triage_checked(&raw, hottub(), &ctx);
    }
}

// ───────────────────────────── YAML-shaped input ─────────────────────────────

/// Member names: ordinary, and every character class that could break a folder or a
/// protocol (wildcards, delimiters, quotes, control characters, dots, tildes, long ones).
pub fn hostile_name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => select(&[
            "Mark Johnson", "Sarah Williams", "Sinéad O'Brien", "Dr. J. Smith", "AC/DC Repairs",
            "Zoë Müller", "台北 Wang", "Tom & Jerry", "Mark*", "50% Off", "\"Quoted\" Name",
            "..", ".", "~root", "./../etc", "a\\b", "INBOX", "inbox", "Inbox/Sub", "-", "_",
            "&-", "&AOk-", "   ", "", "Mark\u{2028}Johnson", "😀", "x\u{200b}",
        ][..]).prop_map(String::from),
        2 => "[A-Za-z ./\\\\*%~&\"'\\-_éü台😀\u{7f}\u{85}\u{a0}\u{2028}]{1,24}",
        1 => "[\\x00-\\x1f]{0,3}[A-Za-z]{1,8}[\\x00-\\x1f]{0,3}",
        1 => (1usize..300).prop_map(|n| "N".repeat(n)),
    ]
}

/// A YAML double-quoted scalar for any text (control characters escaped).
pub fn yq(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0' => out.push_str("\\0"),
            c if c.is_control() || c == '\u{feff}' => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

const GOOD_NAMES: &[&str] = &[
    "Mark Johnson",
    "Sarah Williams",
    "Sinéad O'Brien",
    "Dr. J. Smith",
    "Zoë Müller",
    "台北 Wang",
    "Nancy Reyes",
    "Tom & Jerry",
    "O'Neil-Smith",
];
const ROLES: &[&str] = &[
    "sales_manager",
    "operations_manager",
    "service_manager",
    "support_lead",
    "owner",
    "sales_manger",
    "janitor",
];
const CATEGORIES: &[&str] = &[
    "SALES", "SUPPORT", "URGENT", "MANAGER", "BILLING", "sales", "{x}",
];
const TEMPLATES: &[&str] = &[
    "{category}/{member}",
    "{member}",
    "{role}/{member}",
    "Team/{member}/{category}",
    "{categry}/{member}",
    "{member",
    "",
    "/",
    "{category}",
    "INBOX",
    "a//b",
    "{member}.{role}",
];
const NOT_ROUTED: &[&str] = &[
    "leave",
    "{folder: Newsletters}",
    "{folder: INBOX}",
    "{folder: ''}",
    "maybe",
    "{folder: \"a/*/%\"}",
    "{folder: ..}",
    "{folder: Lists, extra: 1}",
];
const PATTERNS: &[&str] = &[
    "\\bquote\\b",
    "(a+)+$",
    "(a|aa)+$",
    "(.*a){20}",
    "[",
    "(?<=x)y",
    "\\p{Greek}+",
    "a{1000}{1000}",
    "(?i)refund",
];
const SCALARS: &[&str] = &[
    "1.0", "0.5", "2.5", "0", "-1", ".nan", ".inf", "-.inf", "yes", "true", "null", "~", "[]",
    "{}", "\"1\"", "1e999",
];
const TOP_NOISE: &[&str] = &[
    "",
    "teams: []\n",
    "business2: {}\n",
    "routing: []\n",
    "escalation: {mode: loud}\n",
    "booking: {}\n",
    "senders: [{from: acme.com}]\n",
    "senders: [{from: '@@', member: Nobody}]\n",
    "escalation: {sentiment_threshold: 5, sentiment_levels: {URGENT: 0.9, HIGH: -0.9}}\n",
    "escalation: {actions: {URGENT: {notify: [Nobody], keywords: [\"bad kw\"], copy_to: INBOX}}}\n",
    "categories: {BOOKING: {}}\n",
];

/// Mostly a value a real profile would have, sometimes a hostile one.
fn mostly<T: Clone + std::fmt::Debug + 'static>(
    good: &'static [T],
    bad: &'static [T],
) -> impl Strategy<Value = T> {
    prop_oneof![12 => select(good), 1 => select(bad)]
}

/// Rarely: damage at some byte position.
fn rarely<S: Strategy + 'static>(s: S) -> impl Strategy<Value = Option<S::Value>>
where
    S::Value: Clone,
{
    prop_oneof![12 => Just(None), 1 => s.prop_map(Some)]
}

fn member_yaml() -> impl Strategy<Value = String> {
    (
        prop_oneof![4 => select(GOOD_NAMES).prop_map(String::from), 1 => hostile_name()],
        any::<bool>(),
        prop::collection::vec(mostly(&ROLES[..5], &ROLES[5..]), 1..3),
        prop::collection::vec(hostile_name(), 0..2),
        prop::bool::weighted(0.02),
    )
        .prop_map(|(name, quoted, mut roles, aliases, unknown)| {
            roles.dedup();
            let name = if quoted || name.trim() != name || name.is_empty() {
                yq(&name)
            } else {
                // Plain scalars when they happen to be valid YAML; the parser decides.
                name
            };
            let aliases: Vec<String> = aliases.iter().map(|a| yq(a)).collect();
            let mut m = format!(
                "  - name: {name}\n    roles: [{}]\n    aliases: [{}]\n",
                roles.join(", "),
                aliases.join(", ")
            );
            if unknown {
                m.push_str("    emial: x@example.com\n");
            }
            m
        })
}

/// A profile document from the real keys, with hostile values and byte-level damage.
fn profile_yaml() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec(member_yaml(), 0..4),
        mostly(&TEMPLATES[..4], &TEMPLATES[4..]),
        mostly(&NOT_ROUTED[..2], &NOT_ROUTED[2..]),
        prop::collection::vec(
            (
                mostly(&CATEGORIES[..5], &CATEGORIES[5..]),
                select(WORDS),
                mostly(&SCALARS[..4], &SCALARS[4..]),
            ),
            0..4,
        ),
        prop::collection::vec(
            (mostly(&CATEGORIES[..5], &CATEGORIES[5..]), select(PATTERNS)),
            0..2,
        ),
        mostly(&TOP_NOISE[..1], &TOP_NOISE[1..]),
        mostly(&SCALARS[..4], &SCALARS[4..]),
        rarely((any::<prop::sample::Index>(), any::<u8>())),
        rarely(any::<prop::sample::Index>()),
    )
        .prop_map(
            |(members, template, lists, keywords, patterns, noise, threshold, damage, cut)| {
                let mut y =
                    String::from("business:\n  name: Fuzz Spa\n  domains: [fuzz.example]\n");
                y.push_str("team:\n");
                if members.is_empty() {
                    y.push_str("  []\n");
                }
                for (i, m) in members.iter().enumerate() {
                    y.push_str(m);
                    y.push_str(&format!("    email: m{i}@fuzz.example\n"));
                }
                // One entry per category (duplicate keys are a syntax error of their own).
                let mut cats: std::collections::BTreeMap<&str, (Vec<String>, Vec<String>)> =
                    std::collections::BTreeMap::new();
                cats.entry("SALES").or_default();
                for (cat, word, weight) in &keywords {
                    let kw = format!("{}: {weight}", yq(word));
                    let entry = cats.entry(cat).or_default();
                    if !entry.0.iter().any(|k| k.starts_with(&yq(word))) {
                        entry.0.push(kw);
                    }
                }
                for (cat, pattern) in &patterns {
                    cats.entry(cat)
                        .or_default()
                        .1
                        .push(format!("{}: 1.0", yq(pattern)));
                }
                y.push_str("categories:\n");
                for (cat, (kws, pats)) in &cats {
                    y.push_str(&format!(
                        "  {cat}:\n    keywords: {{{}}}\n    patterns: {{{}}}\n",
                        kws.join(", "),
                        pats.join(", ")
                    ));
                    if *cat == "SALES" {
                        y.push_str(&format!("    threshold: {threshold}\n"));
                    }
                }
                y.push_str(&format!(
                    "routing:\n  folder: {}\n  lists: {lists}\n",
                    yq(template)
                ));
                y.push_str(noise);
                let mut raw = y.into_bytes();
                if let Some((at, byte)) = damage {
                    let i = at.index(raw.len());
                    raw[i] = byte;
                }
                if let Some(at) = cut {
                    raw.truncate(at.index(raw.len() + 1));
                }
                raw
            },
        )
}

/// Loads `bytes`; a compiled profile must file a message to each member's address into a
/// safe folder; a rejected one must say where and what, and render.
pub fn load_checked(bytes: &[u8]) -> Result<Profile, String> {
    match Profile::from_bytes("fuzz.yaml", bytes) {
        Ok(p) => {
            for (i, m) in p.members.iter().enumerate() {
                let Some(addr) = m.addresses.first() else {
                    continue;
                };
                let raw = format!(
                    "From: Customer <c@example.com>\r\nTo: {addr}\r\nSubject: hello\r\n\r\nA question about my order.\r\n"
                );
                let d = triage_checked(raw.as_bytes(), &p, &Context::default());
                if d.recipient.as_deref() != Some(m.name.as_str()) {
                    return Err(format!(
                        "member {i} ({:?}) addressed by To: but routed to {:?}",
                        m.name, d.recipient
                    ));
                }
            }
            Ok(p)
        }
        Err(e) => {
            if e.diagnostics.is_empty() {
                return Err("an error without a problem".into());
            }
            let text = e.to_string();
            if !text.contains("fuzz.yaml") {
                return Err(format!("the error does not name the file:\n{text}"));
            }
            Err(text)
        }
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn yaml_shaped_profiles_compile_or_fail_clearly(bytes in profile_yaml()) {
        match load_checked(&bytes) {
            Ok(_) => {}
            Err(text) => prop_assert!(
                text.starts_with("error: "),
                "not a rendered diagnostic:\n{text}"
            ),
        }
    }
}

// ───────────────────────────── folder names ─────────────────────────────

fn delimiter() -> impl Strategy<Value = Option<char>> {
    prop_oneof![
        4 => select(&[Some('/'), Some('.'), Some('\\'), None][..]),
        1 => any::<Option<char>>(),
        1 => select(&[Some('-'), Some('_'), Some('&'), Some(' '), Some('A'), Some(','), Some('+'), Some('*'), Some('~')][..]),
    ]
}

proptest! {
    #![proptest_config(config(4096))]

    #[test]
    fn folder_names_are_safe_on_the_server(
        levels in prop::collection::vec(hostile_name(), 0..4),
        delimiter in delimiter(),
        utf8 in any::<bool>(),
        no_dots in any::<bool>(),
    ) {
        for level in &levels {
            if let Err(e) = check_mutf7(level) {
                prop_assert!(false, "{e}");
            }
        }
        if let Err(e) = check_server_name(&levels, delimiter, utf8, no_dots) {
            prop_assert!(false, "{e}");
        }
    }

    #[test]
    fn modified_utf7_round_trips(s in "\\PC*|.*|[&\\-A-Za-z+,]*") {
        if let Err(e) = check_mutf7(&s) {
            prop_assert!(false, "{e}");
        }
    }
}
