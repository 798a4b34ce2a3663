//! Rule-based sentiment scoring: a Rust implementation of VADER (Valence Aware
//! Dictionary and sEntiment Reasoner; Hutto & Gilbert, 2014, ICWSM-14), MIT-licensed,
//! with the lexicon of vaderSentiment 3.3.2 in `rules/vader_lexicon.txt`
//! (see `rules/LICENSE-vader.txt`).
//!
//! The text is split on whitespace and each token loses its surrounding ASCII
//! punctuation unless fewer than three characters would remain (so `:)` survives).
//! Every token found in the lexicon starts from its mean human-rated valence, which
//! is then adjusted by the words up to three places before it: boosters and
//! dampeners ("very", "kind of"), negations ("not", any "n't", "never" except in
//! "never so/this"), "no", "least" and a few idioms ("the shit", "yeah right").
//! Tokens in ALL CAPS are emphasised when the text mixes case. A contrastive "but"
//! halves what comes before it and multiplies by 1.5 what follows. The sum, pushed
//! away from zero by `!` (up to four) and `??`, is squashed to `compound = x/√(x²+15)`;
//! `pos`, `neg` and `neu` are the shares of positive, negative and neutral tokens.
//!
//! Scores match the reference `polarity_scores` of vaderSentiment 3.3.2 under Python
//! ≥ 3.12 (whose compensated `sum` makes cancelling valences exactly 0; under 3.11 a
//! rounding residue may get amplified by punctuation), quirks included: e.g. the "but"
//! rule rescales the *first* score equal to each value, as the reference's `list.index`
//! does. Emoji are not translated to their textual descriptions (the reference does
//! that with a second lexicon, not shipped here), so an emoji is a neutral token.

use std::cmp::{Ordering, Reverse};
use std::collections::hash_map::DefaultHasher;
use std::collections::{BinaryHeap, HashMap};
use std::hash::BuildHasherDefault;
use std::sync::OnceLock;

/// The shipped lexicon: token, mean valence, standard deviation, raw ratings.
const LEXICON_TEXT: &str = include_str!("../../rules/vader_lexicon.txt");

/// Intensity added by a booster word ("very").
const B_INCR: f64 = 0.293;
/// Intensity added by a dampener word ("slightly").
const B_DECR: f64 = -0.293;
/// Intensity added by writing a word in ALL CAPS in mixed-case text.
const C_INCR: f64 = 0.733;
/// Factor applied to a negated valence.
const N_SCALAR: f64 = -0.74;
/// Normalisation constant approximating the largest expected raw sum.
const NORM_ALPHA: f64 = 15.0;
/// Longest list of contributions reported.
const MAX_CONTRIBUTIONS: usize = 32;

/// Multi-word expressions whose valence replaces that of the lexicon word in them.
/// (The reference also lists the single word "badass", which its n-gram checks can
/// never match, so it is left out.)
const SPECIAL_CASES: &[(&[&str], f64)] = &[
    (&["the", "shit"], 3.0),
    (&["the", "bomb"], 3.0),
    (&["bad", "ass"], 1.5),
    (&["bus", "stop"], 0.0),
    (&["yeah", "right"], -2.0),
    (&["kiss", "of", "death"], -1.5),
    (&["to", "die", "for"], 3.0),
    (&["beating", "heart"], 3.5),
];

/// Two-word dampeners; only the idiom rule can see them, as tokens hold no spaces.
const BOOSTER_BIGRAMS: &[([&str; 2], f64)] = &[
    (["just", "enough"], B_DECR),
    (["kind", "of"], B_DECR),
    (["sort", "of"], B_DECR),
];

/// Hasher with fixed keys, so that scoring involves no randomness.
type FixedState = BuildHasherDefault<DefaultHasher>;

/// Valence of one lexicon word as it contributed to the score (after boosters, negation, caps, "but" weighting).
#[derive(Debug, Clone, PartialEq)]
pub struct Contribution {
    /// The token as written, after VADER's punctuation stripping.
    pub word: String,
    /// Its final valence (unrounded, on the lexicon's -4..4 scale plus adjustments).
    pub valence: f64,
}

/// VADER's scores for one text.
#[derive(Debug, Clone, PartialEq)]
pub struct SentimentScore {
    /// Normalised compound score in [-1, 1] (VADER's `compound`).
    pub compound: f64,
    /// Share of the text that is positive, in [0, 1].
    pub pos: f64,
    /// Share of the text that is negative, in [0, 1].
    pub neg: f64,
    /// Share of the text that is neutral, in [0, 1].
    pub neu: f64,
    /// Words that moved the score, in text order (for explaining decisions). Cap at 32 entries.
    pub contributions: Vec<Contribution>,
}

/// A VADER scorer over a parsed lexicon.
pub struct Analyzer {
    /// Lexicon token to mean valence (looked up with lowercased tokens, like the reference).
    lexicon: HashMap<&'static str, WordInfo, FastState>,
}

/// Everything the rules need to know about one word, found with a single lookup.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct WordInfo {
    /// Mean valence, for lexicon words.
    valence: Option<f64>,
    /// Booster (positive) or dampener (negative) intensity.
    boost: Option<f64>,
    /// Negates what follows.
    negates: bool,
}

/// A small multiplicative hasher for short words (the lexicon is fixed, not attacker-chosen
/// keys, so SipHash's flooding resistance buys nothing here).
#[derive(Default, Clone, Copy)]
struct FastHasher(u64);

impl std::hash::Hasher for FastHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word))
                .wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
}

type FastState = BuildHasherDefault<FastHasher>;

/// One whitespace-separated token with the properties the rules look at.
struct Token<'t> {
    /// The token with surrounding punctuation stripped (or not), as the reference does.
    raw: &'t str,
    /// `raw` lowercased (borrowed when it already is).
    lower: std::borrow::Cow<'t, str>,
    /// Lexicon valence of `lower`, if it is a lexicon word.
    valence: Option<f64>,
    /// Whether `raw` is ALL CAPS in Python's sense (`str.isupper`).
    upper: bool,
    /// Booster (positive) or dampener (negative) intensity of `lower`, looked up once.
    boost: Option<f64>,
    /// Whether `lower` negates what follows, looked up once.
    negates: bool,
}

impl Analyzer {
    /// The built-in analyzer over `rules/vader_lexicon.txt` (parsed once, shared).
    pub fn builtin() -> &'static Analyzer {
        static BUILTIN: OnceLock<Analyzer> = OnceLock::new();
        BUILTIN.get_or_init(|| Analyzer::from_lexicon(LEXICON_TEXT))
    }

    /// Parses lexicon lines `token<TAB>valence[<TAB>...]`; later duplicates win, bad lines are skipped.
    fn from_lexicon(text: &'static str) -> Analyzer {
        let mut lexicon: HashMap<&'static str, WordInfo, FastState> =
            HashMap::with_capacity_and_hasher(8192, FastState::default());
        for line in text.lines() {
            let mut fields = line.trim().split('\t');
            if let (Some(word), Some(measure)) = (fields.next(), fields.next()) {
                match measure.trim().parse::<f64>() {
                    Ok(valence) if !word.is_empty() && valence.is_finite() => {
                        lexicon.entry(word).or_default().valence = Some(valence);
                    }
                    _ => {}
                }
            }
        }
        for w in BOOSTERS {
            lexicon.entry(w).or_default().boost = Some(B_INCR);
        }
        for w in DAMPENERS {
            lexicon.entry(w).or_default().boost = Some(B_DECR);
        }
        for w in NEGATIONS {
            lexicon.entry(w).or_default().negates = true;
        }
        Analyzer { lexicon }
    }

    /// Scores a text exactly as VADER's `polarity_scores` would (same rounding conventions as the reference: compound rounded to 4 decimals, pos/neg/neu to 3).
    pub fn score(&self, text: &str) -> SentimentScore {
        self.score_with_neutral(text, &[])
    }

    /// Like [`Analyzer::score`], but the lexicon words in `neutral` (lowercase, sorted) carry
    /// no valence: a business can say that "error" or "leak" describe a fault, not a mood.
    pub fn score_with_neutral(&self, text: &str, neutral: &[String]) -> SentimentScore {
        self.score_with(text, neutral, &|_| false)
    }

    /// Like [`Analyzer::score_with_neutral`]; also weightless: a capitalised lexicon word
    /// for which `is_name` (given it lowercased) holds — "Olivia Grant" signs with a
    /// name, not a mood.
    pub fn score_with(
        &self,
        text: &str,
        neutral: &[String],
        is_name: &dyn Fn(&str) -> bool,
    ) -> SentimentScore {
        // About one token per six bytes of mail text: sized once instead of regrown.
        let mut tokens: Vec<Token<'_>> = Vec::with_capacity(text.len() / 6 + 1);
        tokens.extend(
            text.split(is_python_space)
                .filter(|t| !t.is_empty())
                .map(|t| {
                    let mut tok = self.token(t);
                    let neutral_word = || {
                        neutral
                            .binary_search_by(|w| w.as_str().cmp(&tok.lower))
                            .is_ok()
                    };
                    let a_name = || {
                        tok.raw.chars().next().is_some_and(char::is_uppercase)
                            && is_name(&tok.lower)
                    };
                    // Still a lexicon word (so "no problem" stays "no" + word), but weightless.
                    if tok.valence.is_some() && (neutral_word() || a_name()) {
                        tok.valence = Some(0.0);
                    }
                    tok
                }),
        );
        if tokens.is_empty() {
            return SentimentScore {
                compound: 0.0,
                pos: 0.0,
                neg: 0.0,
                neu: 0.0,
                contributions: Vec::new(),
            };
        }
        let upper_count = tokens.iter().filter(|t| t.upper).count();
        let cap_diff = upper_count > 0 && upper_count < tokens.len();

        let mut sentiments: Vec<f64> = (0..tokens.len())
            .map(|i| valence_at(&tokens, i, cap_diff))
            .collect();
        apply_but(&tokens, &mut sentiments);

        let punct = punctuation_emphasis(text);
        let sum = python_sum(&sentiments);
        let emphasised = if sum > 0.0 {
            sum + punct
        } else if sum < 0.0 {
            sum - punct
        } else {
            sum
        };
        let compound = normalize(emphasised);

        let (mut pos_sum, mut neg_sum, mut neu_count) = (0.0_f64, 0.0_f64, 0_usize);
        for &s in &sentiments {
            if s > 0.0 {
                pos_sum += s + 1.0;
            } else if s < 0.0 {
                neg_sum += s - 1.0;
            } else {
                neu_count += 1;
            }
        }
        if pos_sum > neg_sum.abs() {
            pos_sum += punct;
        } else if pos_sum < neg_sum.abs() {
            neg_sum -= punct;
        }
        // Every token adds at least 1 to `total`, so it is never zero here.
        let total = pos_sum + neg_sum.abs() + neu_count as f64;

        let contributions = tokens
            .iter()
            .zip(&sentiments)
            .filter(|(_, &v)| v != 0.0)
            .take(MAX_CONTRIBUTIONS)
            .map(|(t, &valence)| Contribution {
                word: t.raw.to_owned(),
                valence,
            })
            .collect();

        SentimentScore {
            compound: round_to(compound, 4),
            pos: round_to((pos_sum / total).abs(), 3),
            neg: round_to((neg_sum / total).abs(), 3),
            neu: round_to((neu_count as f64 / total).abs(), 3),
            contributions,
        }
    }

    /// Builds the token for one whitespace-separated piece of the text.
    fn token<'t>(&self, piece: &'t str) -> Token<'t> {
        let raw = strip_punctuation(piece);
        let lower: std::borrow::Cow<'t, str> = if raw.is_ascii() {
            crate::mail::ascii_lower(raw)
        } else {
            std::borrow::Cow::Owned(raw.to_lowercase())
        };
        let info = self.lexicon.get(&*lower).copied().unwrap_or_default();
        Token {
            raw,
            upper: is_upper(raw),
            boost: info.boost,
            negates: info.negates || has_nt(&lower),
            valence: info.valence,
            lower,
        }
    }
}

/// Whether a token contains "n't" (a byte scan: most tokens are a few bytes long, too
/// short for a substring searcher to pay for setting itself up).
fn has_nt(token: &str) -> bool {
    token.as_bytes().windows(3).any(|w| w == b"n't")
}

/// Whitespace as Python's `str.split()` sees it (Unicode `White_Space` plus U+001C..U+001F).
fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Strips leading/trailing ASCII punctuation unless two characters or fewer would remain.
fn strip_punctuation(piece: &str) -> &str {
    let stripped = piece.trim_matches(|c: char| c.is_ascii_punctuation());
    if stripped.chars().nth(2).is_none() {
        piece
    } else {
        stripped
    }
}

/// Python's `str.isupper`: some uppercase character and no lowercase or titlecase one.
fn is_upper(word: &str) -> bool {
    let mut cased = false;
    for c in word.chars() {
        if c.is_lowercase() || is_titlecase(c) {
            return false;
        }
        cased |= c.is_uppercase();
    }
    cased
}

/// Unicode general category Lt (titlecase letters such as `ǅ`).
fn is_titlecase(c: char) -> bool {
    matches!(
        c,
        '\u{1c5}'
            | '\u{1c8}'
            | '\u{1cb}'
            | '\u{1f2}'
            | '\u{1f88}'..='\u{1f8f}'
            | '\u{1f98}'..='\u{1f9f}'
            | '\u{1fa8}'..='\u{1faf}'
            | '\u{1fbc}'
            | '\u{1fcc}'
            | '\u{1ffc}'
    )
}

/// Single-word boosters, adding `B_INCR` to the intensity of the word they precede.
#[rustfmt::skip]
const BOOSTERS: &[&str] = &[
    "absolutely", "amazingly", "awfully", "completely", "considerable", "considerably",
    "decidedly", "deeply", "effing", "enormous", "enormously", "entirely", "especially",
    "exceptional", "exceptionally", "extreme", "extremely", "fabulously", "flipping", "flippin",
    "frackin", "fracking", "fricking", "frickin", "frigging", "friggin", "fully", "fuckin",
    "fucking", "fuggin", "fugging", "greatly", "hella", "highly", "hugely", "incredible",
    "incredibly", "intensely", "major", "majorly", "more", "most", "particularly", "purely",
    "quite", "really", "remarkably", "so", "substantially", "thoroughly", "total", "totally",
    "tremendous", "tremendously", "uber", "unbelievably", "unusually", "utter", "utterly", "very",
];

/// Single-word dampeners, adding `B_DECR` to the intensity of the word they precede.
#[rustfmt::skip]
const DAMPENERS: &[&str] = &[
    "almost", "barely", "hardly", "kinda", "kindof", "kind-of", "less", "little", "marginal",
    "marginally", "occasional", "occasionally", "partly", "scarce", "scarcely", "slight",
    "slightly", "somewhat", "sorta", "sortof", "sort-of",
];

/// Words that negate what follows (besides any word containing "n't").
#[rustfmt::skip]
const NEGATIONS: &[&str] = &[
    "aint", "arent", "cannot", "cant", "couldnt", "darent", "didnt", "doesnt", "ain't", "aren't",
    "can't", "couldn't", "daren't", "didn't", "doesn't", "dont", "hadnt", "hasnt", "havent",
    "isnt", "mightnt", "mustnt", "neither", "don't", "hadn't", "hasn't", "haven't", "isn't",
    "mightn't", "mustn't", "neednt", "needn't", "never", "none", "nope", "nor", "not", "nothing",
    "nowhere", "oughtnt", "shant", "shouldnt", "uhuh", "wasnt", "werent", "oughtn't", "shan't",
    "shouldn't", "uh-uh", "wasn't", "weren't", "without", "wont", "wouldnt", "won't", "wouldn't",
    "rarely", "seldom", "despite",
];

/// The token `k` places before position `i`, if there is one.
fn before<'a, 't>(tokens: &'a [Token<'t>], i: usize, k: usize) -> Option<&'a Token<'t>> {
    i.checked_sub(k).and_then(|j| tokens.get(j))
}

/// The lowercased token `k` places before `i`, or "" (which matches no rule word).
fn lower_before<'a>(tokens: &'a [Token<'_>], i: usize, k: usize) -> &'a str {
    before(tokens, i, k).map_or("", |t| &*t.lower)
}

/// The lowercased token `k` places after `i`, or "" (which matches no rule word).
fn lower_after<'a>(tokens: &'a [Token<'_>], i: usize, k: usize) -> &'a str {
    i.checked_add(k)
        .and_then(|j| tokens.get(j))
        .map_or("", |t| &*t.lower)
}

/// Valence of the token at `i` after every rule that looks at its neighbours.
fn valence_at(tokens: &[Token<'_>], i: usize, cap_diff: bool) -> f64 {
    let Some(token) = tokens.get(i) else {
        return 0.0;
    };
    if token.boost.is_some() || (token.lower == "kind" && lower_after(tokens, i, 1) == "of") {
        return 0.0;
    }
    let Some(base) = token.valence else {
        return 0.0;
    };
    let mut valence = base;
    // "no" right before a lexicon word only negates it, carrying no valence of its own.
    let next_is_lexical = i
        .checked_add(1)
        .and_then(|j| tokens.get(j))
        .is_some_and(|t| t.valence.is_some());
    if token.lower == "no" && next_is_lexical {
        valence = 0.0;
    }
    let prev = lower_before(tokens, i, 1);
    if prev == "no"
        || lower_before(tokens, i, 2) == "no"
        || (lower_before(tokens, i, 3) == "no" && matches!(prev, "or" | "nor"))
    {
        valence = base * N_SCALAR;
    }
    if cap_diff && token.upper {
        valence = if valence > 0.0 {
            valence + C_INCR
        } else {
            valence - C_INCR
        };
    }
    // Non-lexicon words up to three back may boost (fading with distance) or negate.
    for distance in 1..=3 {
        let Some(modifier) = before(tokens, i, distance) else {
            break;
        };
        if modifier.valence.is_some() {
            continue;
        }
        let mut scalar = booster_scalar(modifier, valence, cap_diff);
        if distance == 2 {
            scalar *= 0.95;
        } else if distance == 3 {
            scalar *= 0.9;
        }
        valence += scalar;
        valence = negation_rule(tokens, i, distance, valence);
        if distance == 3 {
            valence = idiom_rule(tokens, i, valence);
        }
    }
    least_rule(tokens, i, valence)
}

/// How much a booster/dampener `word` shifts `valence` (away from or towards zero).
fn booster_scalar(word: &Token<'_>, valence: f64, cap_diff: bool) -> f64 {
    let Some(mut scalar) = word.boost else {
        return 0.0;
    };
    if valence < 0.0 {
        scalar = -scalar;
    }
    if cap_diff && word.upper {
        if valence > 0.0 {
            scalar += C_INCR;
        } else {
            scalar -= C_INCR;
        }
    }
    scalar
}

/// Applies negation by the word `distance` places back, with the "never so/this"
/// (intensifies) and "without doubt" (no negation) exceptions.
fn negation_rule(tokens: &[Token<'_>], i: usize, distance: usize, valence: f64) -> f64 {
    let w = |k| lower_before(tokens, i, k);
    let so_or_this = |word: &str| word == "so" || word == "this";
    let (intensified, exempt) = match distance {
        1 => (false, false),
        2 => (
            w(2) == "never" && so_or_this(w(1)),
            w(2) == "without" && w(1) == "doubt",
        ),
        // As in the reference, "so"/"this" right before the word also intensifies here.
        _ => (
            (w(3) == "never" && so_or_this(w(2))) || so_or_this(w(1)),
            w(3) == "without" && (w(2) == "doubt" || w(1) == "doubt"),
        ),
    };
    if intensified {
        valence * 1.25
    } else if !exempt && before(tokens, i, distance).is_some_and(|t| t.negates) {
        valence * N_SCALAR
    } else {
        valence
    }
}

/// Valence of a special-case phrase (`words` lowercased), if it is one.
fn special_case(words: &[&str]) -> Option<f64> {
    SPECIAL_CASES
        .iter()
        .find(|(phrase, _)| *phrase == words)
        .map(|&(_, valence)| valence)
}

/// Intensity of a two-word dampener such as "kind of", if `pair` is one.
fn booster_bigram(pair: [&str; 2]) -> Option<f64> {
    BOOSTER_BIGRAMS
        .iter()
        .find(|(bigram, _)| *bigram == pair)
        .map(|&(_, valence)| valence)
}

/// Replaces the valence by that of a special-case phrase around the word, then adds
/// two-word dampeners found among the three preceding words.
fn idiom_rule(tokens: &[Token<'_>], i: usize, valence: f64) -> f64 {
    let (w3, w2, w1) = (
        lower_before(tokens, i, 3),
        lower_before(tokens, i, 2),
        lower_before(tokens, i, 1),
    );
    let w0 = lower_before(tokens, i, 0);
    let (a1, a2) = (lower_after(tokens, i, 1), lower_after(tokens, i, 2));
    let mut valence = valence;
    let preceding: [&[&str]; 5] = [
        &[w1, w0],
        &[w2, w1, w0],
        &[w2, w1],
        &[w3, w2, w1],
        &[w3, w2],
    ];
    if let Some(v) = preceding.iter().find_map(|phrase| special_case(phrase)) {
        valence = v;
    }
    if let Some(v) = special_case(&[w0, a1]) {
        valence = v;
    }
    if let Some(v) = special_case(&[w0, a1, a2]) {
        valence = v;
    }
    for pair in [[w3, w2], [w2, w1]] {
        if let Some(b) = booster_bigram(pair) {
            valence += b;
        }
    }
    valence
}

/// Negates a word right after "least", unless it reads "at least" or "very least".
fn least_rule(tokens: &[Token<'_>], i: usize, valence: f64) -> f64 {
    match before(tokens, i, 1) {
        Some(prev)
            if prev.valence.is_none()
                && prev.lower == "least"
                && !matches!(lower_before(tokens, i, 2), "at" | "very") =>
        {
            valence * N_SCALAR
        }
        _ => valence,
    }
}

/// The "but" rule: scores before the first "but" are halved, those after it scaled
/// by 1.5. Like the reference (which looks each value up with `list.index`), the
/// score rescaled at step k is the *first* one currently equal to the k-th score;
/// per-value min-heaps of positions reproduce that in O(n log n).
fn apply_but(tokens: &[Token<'_>], sentiments: &mut [f64]) {
    let Some(but) = tokens.iter().position(|t| t.lower == "but") else {
        return;
    };
    // Zeros stay zero whatever is rescaled, so only non-zero scores are tracked.
    let mut positions: HashMap<u64, BinaryHeap<Reverse<usize>>, FixedState> = HashMap::default();
    for (j, &v) in sentiments.iter().enumerate() {
        if v != 0.0 {
            positions.entry(v.to_bits()).or_default().push(Reverse(j));
        }
    }
    for k in 0..sentiments.len() {
        // Position k has not been rewritten yet: earlier steps only touch positions ≤ their own.
        let Some(&value) = sentiments.get(k) else {
            break;
        };
        if value == 0.0 {
            continue;
        }
        let Some(Reverse(first)) = positions
            .get_mut(&value.to_bits())
            .and_then(BinaryHeap::pop)
        else {
            continue;
        };
        let factor = match first.cmp(&but) {
            Ordering::Less => 0.5,
            Ordering::Greater => 1.5,
            Ordering::Equal => 1.0,
        };
        let scaled = value * factor;
        if let Some(slot) = sentiments.get_mut(first) {
            *slot = scaled;
        }
        if scaled != 0.0 {
            positions
                .entry(scaled.to_bits())
                .or_default()
                .push(Reverse(first));
        }
    }
}

/// Emphasis from exclamation marks (up to four) and question marks (two or more).
fn punctuation_emphasis(text: &str) -> f64 {
    let (mut exclamations, mut questions) = (0_usize, 0_usize);
    for b in text.bytes() {
        match b {
            b'!' => exclamations += 1,
            b'?' => questions += 1,
            _ => {}
        }
    }
    let ep = exclamations.min(4) as f64 * 0.292;
    let qm = match questions {
        0 | 1 => 0.0,
        2 | 3 => questions as f64 * 0.18,
        _ => 0.96,
    };
    ep + qm
}

/// Python's `sum` over floats (3.12+): Neumaier-compensated, zeros skipped.
fn python_sum(values: &[f64]) -> f64 {
    let (mut sum, mut compensation) = (0.0_f64, 0.0_f64);
    for &x in values.iter().filter(|&&x| x != 0.0) {
        let t = sum + x;
        compensation += if sum.abs() >= x.abs() {
            (sum - t) + x
        } else {
            (x - t) + sum
        };
        sum = t;
    }
    if compensation != 0.0 && compensation.is_finite() {
        sum + compensation
    } else {
        sum
    }
}

/// Maps a raw valence sum into [-1, 1].
fn normalize(score: f64) -> f64 {
    (score / (score * score + NORM_ALPHA).sqrt()).clamp(-1.0, 1.0)
}

/// Python's `round(x, digits)`: correctly rounded, ties to even on the exact binary value.
fn round_to(x: f64, digits: usize) -> f64 {
    format!("{x:.digits$}").parse().unwrap_or(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (sentence, compound, pos, neg, neu) from vaderSentiment 3.3.2's `polarity_scores`
    /// (identical under Python 3.11, 3.12 and 3.13 for these sentences).
    const REFERENCE: &[(&str, f64, f64, f64, f64)] = &[
        ("I'm very disappointed with the service I received. This is unacceptable.", -0.7501, 0.0, 0.415, 0.585),
        ("We're interested in discussing a potential franchise opportunity", 0.6705, 0.478, 0.0, 0.522),
        ("Hi Sarah, can you call me back about my invoice", 0.0, 0.0, 0.0, 1.0),
        ("This is the THIRD time your technician failed to show up. I want a refund or I'm calling my lawyer!!!", -0.5962, 0.055, 0.178, 0.767),
        ("Thanks so much, the new cover fits perfectly and looks great.", 0.9042, 0.583, 0.0, 0.417),
        ("The heater is not working and the water is cold.", 0.0, 0.0, 0.0, 1.0),
        ("The book was good.", 0.4404, 0.492, 0.0, 0.508),
        ("The book was bad.", -0.5423, 0.0, 0.538, 0.462),
        ("VADER is smart, handsome, and funny.", 0.8316, 0.746, 0.0, 0.254),
        ("VADER is smart, handsome, and funny!", 0.8439, 0.752, 0.0, 0.248),
        ("VADER is very smart, handsome, and funny.", 0.8545, 0.701, 0.0, 0.299),
        ("VADER is VERY SMART, handsome, and FUNNY.", 0.9227, 0.754, 0.0, 0.246),
        ("VADER is VERY SMART, handsome, and FUNNY!!!", 0.9342, 0.767, 0.0, 0.233),
        ("VADER is VERY SMART, uber handsome, and FRIGGIN FUNNY!!!", 0.9469, 0.706, 0.0, 0.294),
        ("VADER is not smart, handsome, nor funny.", -0.7424, 0.0, 0.646, 0.354),
        ("At least it isn't a horrible book.", 0.431, 0.322, 0.0, 0.678),
        ("The book was only kind of good.", 0.3832, 0.303, 0.0, 0.697),
        ("The plot was good, but the characters are uncompelling and the dialog is not great.", -0.7042, 0.094, 0.327, 0.579),
        ("Today SUX!", -0.5461, 0.0, 0.779, 0.221),
        ("Today only kinda sux! But I'll get by, lol", 0.5249, 0.317, 0.127, 0.556),
        ("Make sure you :) or :D today!", 0.8633, 0.706, 0.0, 0.294),
        ("Not bad at all", 0.431, 0.487, 0.0, 0.513),
        ("Sentiment analysis has never been good.", -0.3412, 0.0, 0.325, 0.675),
        ("Sentiment analysis has never been this good!", 0.5672, 0.379, 0.0, 0.621),
        ("Most automated sentiment analysis tools are shit.", -0.5574, 0.0, 0.375, 0.625),
        ("With VADER, sentiment analysis is the shit!", 0.6476, 0.417, 0.0, 0.583),
        ("Other sentiment analysis tools can be quite bad.", -0.5849, 0.0, 0.351, 0.649),
        ("On the other hand, VADER is quite bad ass", 0.802, 0.577, 0.0, 0.423),
        ("VADER is such a badass!", 0.4003, 0.402, 0.0, 0.598),
        ("Without a doubt, excellent idea.", 0.7013, 0.659, 0.0, 0.341),
        ("Roger Dodger is one of the most compelling variations on this theme.", 0.2944, 0.166, 0.0, 0.834),
        ("Roger Dodger is at least compelling as a variation on the theme.", 0.2263, 0.147, 0.0, 0.853),
        ("Roger Dodger is one of the least compelling variations on this theme.", -0.1695, 0.0, 0.132, 0.868),
        ("Not such a badass after all.", -0.2584, 0.0, 0.289, 0.711),
        ("It was one of the worst movies I've seen, despite good reviews.", -0.7584, 0.0, 0.394, 0.606),
        ("Unbelievably bad acting!!", -0.6572, 0.0, 0.686, 0.314),
        ("VERY BAD movie!", -0.7616, 0.0, 0.735, 0.265),
        ("Is this really the best you can do???", 0.72, 0.418, 0.0, 0.582),
        ("Why would anyone do that??", 0.0, 0.0, 0.0, 1.0),
        ("I love it :) but the delivery was late :(", -0.0644, 0.298, 0.249, 0.453),
        ("No problem at all, happy to help.", 0.8252, 0.684, 0.0, 0.316),
        ("There is no good reason and no help.", -0.5667, 0.0, 0.437, 0.563),
        ("I don't like it, it's not great, never was.", -0.6602, 0.0, 0.436, 0.564),
        ("It is so good, I can't believe it", 0.5777, 0.348, 0.0, 0.652),
        ("Nothing is wrong with the product.", 0.3724, 0.338, 0.0, 0.662),
        ("The food was kind of bland but the staff were extremely friendly.", 0.6946, 0.301, 0.0, 0.699),
        ("sort of ok i guess", 0.296, 0.355, 0.0, 0.645),
        ("the least helpful reply ever", -0.3252, 0.0, 0.368, 0.632),
        ("yeah right, that will work", 0.296, 0.355, 0.0, 0.645),
        ("It was the kiss of death for the project", -0.6124, 0.0, 0.417, 0.583),
        ("The design is clever but the price is alright", 0.3612, 0.333, 0.0, 0.667),
        ("The installer was slightly late but did a great job", 0.7684, 0.386, 0.0, 0.614),
        ("I am SO happy with the result", 0.7689, 0.485, 0.0, 0.515),
        ("great", 0.6249, 1.0, 0.0, 0.0),
        (":)", 0.4588, 1.0, 0.0, 0.0),
        ("!!!!!", 0.0, 0.0, 0.0, 1.0),
        ("", 0.0, 0.0, 0.0, 0.0),
    ];

    #[test]
    fn matches_reference_scores() {
        let analyzer = Analyzer::builtin();
        let mut failures = Vec::new();
        for &(text, compound, pos, neg, neu) in REFERENCE {
            let got = analyzer.score(text);
            let ok = (got.compound - compound).abs() < 1e-4
                && (got.pos - pos).abs() < 1e-3
                && (got.neg - neg).abs() < 1e-3
                && (got.neu - neu).abs() < 1e-3;
            if !ok {
                failures.push(format!(
                    "{text:?}: got ({}, {}, {}, {}), want ({compound}, {pos}, {neg}, {neu})",
                    got.compound, got.pos, got.neg, got.neu
                ));
            }
        }
        assert!(
            failures.is_empty(),
            "{} mismatches:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }

    /// (word, valence) pairs of a score's contributions, valences rounded to 4 places.
    fn contributions(text: &str) -> Vec<(String, f64)> {
        Analyzer::builtin()
            .score(text)
            .contributions
            .into_iter()
            .map(|c| (c.word, round_to(c.valence, 4)))
            .collect()
    }

    #[test]
    fn contributions_explain_the_score() {
        assert_eq!(
            contributions("The book was good."),
            [("good".to_owned(), 1.9)]
        );
        // ALL CAPS in mixed-case text: -2.5 - 0.733 - (0.293 + 0.733).
        assert_eq!(
            contributions("VERY BAD movie!"),
            [("BAD".to_owned(), -4.259)]
        );
        assert_eq!(contributions("not good"), [("good".to_owned(), -1.406)]);
        // The reference's "but" rule rescales the first equal value: clever 2 -> 1 -> 0.5.
        assert_eq!(
            contributions("clever but alright"),
            [("clever".to_owned(), 0.5), ("alright".to_owned(), 1.0)]
        );
        assert_eq!(contributions("Call me :) today"), [(":)".to_owned(), 2.0)]);
        assert!(contributions("Hi Sarah, can you call me back about my invoice").is_empty());
        assert_eq!(contributions(&"good ".repeat(100)).len(), MAX_CONTRIBUTIONS);
    }

    #[test]
    fn builtin_lexicon_is_parsed_once() {
        let a = Analyzer::builtin();
        assert!(std::ptr::eq(a, Analyzer::builtin()));
        // 7520 lines, 14 duplicated tokens (the later line wins, as in the reference).
        assert_eq!(
            a.lexicon.values().filter(|w| w.valence.is_some()).count(),
            7506
        );
        assert_eq!(a.lexicon.get("lol").and_then(|w| w.valence), Some(1.8));
    }

    #[test]
    fn rounding_matches_python() {
        assert_eq!(round_to(0.0625, 3), 0.062);
        assert_eq!(round_to(0.1875, 3), 0.188);
        assert_eq!(round_to(0.03125, 4), 0.0312);
        assert_eq!(round_to(2.675, 2), 2.67);
        assert_eq!(round_to(-0.12345, 4), -0.1235);
    }

    #[test]
    fn tokens_are_stripped_like_the_reference() {
        assert_eq!(strip_punctuation("\"great!\""), "great");
        assert_eq!(strip_punctuation(":)"), ":)");
        assert_eq!(strip_punctuation("no,"), "no,");
        assert_eq!(strip_punctuation("(:-D)"), "(:-D)");
        assert!(is_upper("SUX!") && !is_upper("!!!") && !is_upper("ǅEMAL"));
        assert!(is_python_space('\u{1f}') && is_python_space('\u{a0}'));
    }

    #[test]
    fn negating_contractions_are_found_by_their_bytes() {
        for (token, negates) in [
            ("don't", true),
            ("n't", true),
            ("isn't", true),
            ("nt", false),
            ("n'", false),
            ("'t", false),
            ("", false),
            ("won'tcha", true),
        ] {
            assert_eq!(has_nt(token), negates, "{token}");
            assert_eq!(has_nt(token), token.contains("n't"), "{token}");
        }
    }

    #[test]
    fn tokens_are_lowercased_as_python_lowercases_them() {
        let a = Analyzer::builtin();
        for raw in ["GREAT", "Great", "great", "ÉLODIE", "İstanbul", "ΣΟΦΙΑΣ"] {
            assert_eq!(a.token(raw).lower, raw.to_lowercase(), "{raw}");
        }
    }

    /// Asserts the invariants every score must satisfy.
    fn check_sane(text: &str) {
        let s = Analyzer::builtin().score(text);
        assert!((-1.0..=1.0).contains(&s.compound), "{text:?}: {s:?}");
        for share in [s.pos, s.neg, s.neu] {
            assert!((0.0..=1.0).contains(&share), "{text:?}: {s:?}");
        }
        assert!(s.contributions.len() <= MAX_CONTRIBUTIONS);
    }

    #[test]
    fn hostile_inputs_do_not_panic() {
        let long_word = "a".repeat(100_000);
        let inputs = [
            String::new(),
            " \t\n\r\u{a0}\u{1c}\u{3000} ".to_owned(),
            "\0".to_owned(),
            "good\0bad \0 \0\0".to_owned(),
            "!".repeat(10_000),
            "?".repeat(10_000),
            "GREAT ".repeat(5_000) + "terrible",
            "but ".repeat(1_000) + "good bad",
            "no no no no nor or least kind of".to_owned(),
            "é ß ǅ İ Σ ΣΑΣ 日本語 😀 \u{200b} \u{feff} \u{10ffff}".to_owned(),
            long_word,
        ];
        for text in &inputs {
            check_sane(text);
        }
        for c in (0_u8..=127).map(char::from).chain(['’', '…', '！', '？']) {
            check_sane(&c.to_string());
        }
    }

    #[test]
    fn pseudo_random_inputs_do_not_panic() {
        const POOL: &[&str] = &[
            "good", "BAD", "not", "no", "never", "so", "this", "but", "least", "at", "very",
            "kind", "of", "the", "shit", "yeah", "right", "without", "doubt", ":)", ":(", "!", "?",
            "'", ",", " ", "\t", "\n", "\0", "é", "Σ", "ǅ", "n't", "KINDA", "love",
        ];
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..2_000 {
            let mut text = String::new();
            for _ in 0..next() % 40 {
                let r = next();
                text.push_str(POOL[(r % POOL.len() as u64) as usize]);
                if r & 0x100 != 0 {
                    text.push(' ');
                }
            }
            check_sane(&text);
        }
    }

    #[test]
    fn one_megabyte_scores_in_linear_time() {
        let mut text = String::new();
        while text.len() < 1 << 20 {
            for &(sentence, ..) in REFERENCE {
                text.push_str(sentence);
                text.push(' ');
            }
        }
        let start = std::time::Instant::now();
        check_sane(&text);
        let elapsed = start.elapsed();
        // Generous so that unoptimised builds pass; a quadratic step would take minutes.
        assert!(elapsed.as_secs_f64() < 10.0, "1 MiB took {elapsed:?}");
    }
}
