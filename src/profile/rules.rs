//! The built-in rules, compiled into the binary so mailtriage works from any directory, in
//! two layers (SPEC §15):
//!
//! - **base** (`rules/base/`): business-neutral words for the categories, the built-in
//!   roles and escalation — what any business's customers write;
//! - **industry packs** (`rules/industries/NAME.yaml`): a trade's own vocabulary, in the
//!   same shape as a profile's `categories:`/`roles:`/`escalation:` sections.
//!
//! A profile names its packs with `business.industry`; [`RulePacks::layered`] applies
//! base → industries (in the order named) and remembers where every word came from, so
//! `check` can say it. The profile itself comes last (see `compile`).

use std::collections::{BTreeMap, HashMap};

use super::raw::{
    KeywordLevel, KeywordWeights, RawCategory, RawCategoryPack, RawEscalation, RawIndustryPack,
    RawRole,
};

/// rules/base/categories.yaml, verbatim.
pub const CATEGORIES_YAML: &str = include_str!("../../rules/base/categories.yaml");
/// rules/base/roles.yaml, verbatim.
pub const ROLES_YAML: &str = include_str!("../../rules/base/roles.yaml");
/// rules/base/escalation.yaml, verbatim.
pub const ESCALATION_YAML: &str = include_str!("../../rules/base/escalation.yaml");
/// rules/base/booking.yaml, verbatim.
pub const BOOKING_YAML: &str = include_str!("../../rules/base/booking.yaml");

/// The industry packs: (name, rules/industries/NAME.yaml verbatim), by name.
pub const INDUSTRIES: [(&str, &str); 5] = [
    ("clinic", include_str!("../../rules/industries/clinic.yaml")),
    (
        "hot_tubs",
        include_str!("../../rules/industries/hot_tubs.yaml"),
    ),
    (
        "it_services",
        include_str!("../../rules/industries/it_services.yaml"),
    ),
    ("retail", include_str!("../../rules/industries/retail.yaml")),
    ("trades", include_str!("../../rules/industries/trades.yaml")),
];

/// The source of words from the base pack.
pub const BASE: &str = "base";
/// The source of words from the profile itself.
pub const PROFILE: &str = "profile";

/// The built-in packs, parsed.
#[derive(Debug, Clone)]
pub struct RulePacks {
    pub categories: RawCategoryPack,
    pub roles: BTreeMap<String, RawRole>,
    pub escalation: RawEscalation,
    pub booking: RawCategory,
    /// The industry packs, by name.
    pub industries: BTreeMap<&'static str, RawIndustryPack>,
}

/// Which keyword list a word is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListKind {
    Category,
    Role,
    Escalation,
}

/// Where each word of the layered rules came from: `base` or an industry's name.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    of: HashMap<(ListKind, String, String), &'static str>,
}

impl Sources {
    fn set(&mut self, kind: ListKind, list: &str, word: &str, source: &'static str) {
        self.of
            .insert((kind, list.to_string(), word.to_string()), source);
    }

    fn remove(&mut self, kind: ListKind, list: &str, word: &str) {
        self.of.remove(&(kind, list.to_string(), word.to_string()));
    }

    /// The pack a built-in word comes from (`base` when unknown).
    pub fn of(&self, kind: ListKind, list: &str, word: &str) -> &'static str {
        self.of
            .get(&(kind, list.to_string(), word.to_string()))
            .copied()
            .unwrap_or(BASE)
    }
}

/// The built-in rules with a profile's industry packs applied.
#[derive(Debug, Clone)]
pub struct Layered {
    pub categories: RawCategoryPack,
    pub roles: BTreeMap<String, RawRole>,
    pub escalation: RawEscalation,
    pub booking: RawCategory,
    pub sources: Sources,
    /// The packs in force, in order (`base` first).
    pub packs: Vec<&'static str>,
}

fn parse<T: serde::de::DeserializeOwned>(name: &str, text: &str) -> Result<T, String> {
    serde_saphyr::from_str(text).map_err(|e| format!("built-in rules/{name} is invalid: {e}"))
}

/// Merges an overlay's keywords into `out`, noting their source (weight 0 removes).
fn layer_keywords(
    out: &mut KeywordWeights,
    overlay: &KeywordWeights,
    sources: &mut Sources,
    kind: ListKind,
    list: &str,
    source: &'static str,
) {
    for (k, w) in overlay {
        if *w == 0.0 {
            out.remove(k);
            sources.remove(kind, list, k);
        } else {
            out.insert(k.clone(), *w);
            sources.set(kind, list, k, source);
        }
    }
}

impl RulePacks {
    /// Parses the embedded packs (a failure here is a bug in the release, reported as an error).
    pub fn builtin() -> Result<RulePacks, String> {
        let mut industries = BTreeMap::new();
        for (name, text) in INDUSTRIES {
            industries.insert(name, parse(&format!("industries/{name}.yaml"), text)?);
        }
        Ok(RulePacks {
            categories: parse("base/categories.yaml", CATEGORIES_YAML)?,
            roles: parse("base/roles.yaml", ROLES_YAML)?,
            escalation: parse("base/escalation.yaml", ESCALATION_YAML)?,
            booking: parse("base/booking.yaml", BOOKING_YAML)?,
            industries,
        })
    }

    /// Every pack's text, so a decision's profile version changes with the rules.
    pub fn fingerprint_input() -> Vec<&'static str> {
        let mut v = vec![CATEGORIES_YAML, ROLES_YAML, ESCALATION_YAML, BOOKING_YAML];
        v.extend(INDUSTRIES.iter().map(|(_, text)| *text));
        v
    }

    /// The names of the industry packs.
    pub fn industry_names(&self) -> Vec<&'static str> {
        self.industries.keys().copied().collect()
    }

    /// The base with `industries` applied in order (unknown names are skipped: the caller
    /// reports them).
    pub fn layered(&self, industries: &[String]) -> Layered {
        let mut sources = Sources::default();
        let mut categories = self.categories.clone();
        let mut roles = self.roles.clone();
        let mut escalation = self.escalation.clone();
        let mut booking = self.booking.clone();
        let mut packs = vec![BASE];
        for (name, pack) in industries
            .iter()
            .filter_map(|n| self.industries.get_key_value(n.as_str()))
        {
            if packs.contains(name) {
                continue;
            }
            packs.push(name);
            for (cat, overlay) in &pack.categories {
                if !categories.categories.contains_key(cat) {
                    categories.order.push(cat.clone());
                }
                let merged = categories.categories.entry(cat.clone()).or_default();
                layer_keywords(
                    &mut merged.keywords,
                    &overlay.keywords,
                    &mut sources,
                    ListKind::Category,
                    cat,
                    name,
                );
                layer_keywords(
                    &mut merged.patterns,
                    &overlay.patterns,
                    &mut sources,
                    ListKind::Category,
                    cat,
                    name,
                );
                if overlay.description.is_some() {
                    merged.description.clone_from(&overlay.description);
                }
            }
            for (id, overlay) in &pack.roles {
                let merged = roles.entry(id.clone()).or_default();
                layer_keywords(
                    &mut merged.keywords,
                    &overlay.keywords,
                    &mut sources,
                    ListKind::Role,
                    id,
                    name,
                );
                layer_keywords(
                    &mut merged.patterns,
                    &overlay.patterns,
                    &mut sources,
                    ListKind::Role,
                    id,
                    name,
                );
                for (field, value) in [
                    (&mut merged.label, &overlay.label),
                    (&mut merged.description, &overlay.description),
                ] {
                    if value.is_some() {
                        field.clone_from(value);
                    }
                }
                if overlay.categories.is_some() {
                    merged.categories.clone_from(&overlay.categories);
                }
                merged.weight = overlay.weight.or(merged.weight);
            }
            let e = &pack.escalation;
            for (k, level) in &e.keywords {
                match level {
                    KeywordLevel::None => {
                        escalation.keywords.remove(k);
                        sources.remove(ListKind::Escalation, "", k);
                    }
                    l => {
                        escalation.keywords.insert(k.clone(), *l);
                        sources.set(ListKind::Escalation, "", k, name);
                    }
                }
            }
            for (cat, level) in &e.categories {
                escalation.categories.insert(cat.clone(), *level);
            }
            escalation
                .sentiment_neutral
                .extend(e.sentiment_neutral.iter().cloned());
            escalation.names.extend(e.names.iter().cloned());
            escalation.mass_mail.extend(e.mass_mail.iter().cloned());
            if let Some(more) = &e.urgency {
                escalation
                    .urgency
                    .get_or_insert_with(Vec::new)
                    .extend(more.iter().cloned());
            }
            if let Some(b) = &pack.booking {
                layer_keywords(
                    &mut booking.keywords,
                    &b.keywords,
                    &mut sources,
                    ListKind::Category,
                    "BOOKING",
                    name,
                );
            }
        }
        Layered {
            categories,
            roles,
            escalation,
            booking,
            sources,
            packs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_packs_parse() {
        let packs = RulePacks::builtin().expect("built-in packs parse");
        assert_eq!(
            packs.categories.order,
            ["URGENT", "MANAGER", "SALES", "SUPPORT"]
        );
        for role in [
            "sales_manager",
            "operations_manager",
            "service_manager",
            "support_lead",
            "owner",
        ] {
            assert!(packs.roles.contains_key(role), "{role}");
        }
        assert_eq!(
            packs.industry_names(),
            ["clinic", "hot_tubs", "it_services", "retail", "trades"]
        );
        for (name, pack) in &packs.industries {
            assert!(!pack.description.trim().is_empty(), "{name}");
            for cat in pack.categories.keys() {
                assert!(
                    packs.categories.categories.contains_key(cat),
                    "{name}: unknown category {cat}"
                );
            }
            for role in pack.roles.keys() {
                assert!(
                    packs.roles.contains_key(role),
                    "{name}: unknown role {role}"
                );
            }
        }
    }

    /// The base carries no trade vocabulary: the words that made every business a hot
    /// tub shop now come from the hot_tubs pack only.
    #[test]
    fn trade_words_come_from_their_pack_only() {
        let packs = RulePacks::builtin().expect("built-in packs parse");
        let base = packs.layered(&[]);
        for word in ["swim spa", "jets", "cover", "chlorine", "new hot tub"] {
            for (cat, c) in &base.categories.categories {
                assert!(!c.keywords.contains_key(word), "base {cat} has {word}");
            }
        }
        let hot = packs.layered(&["hot_tubs".to_string()]);
        let support = &hot.categories.categories["SUPPORT"];
        assert!(support.keywords.contains_key("jets"));
        assert_eq!(
            hot.sources.of(ListKind::Category, "SUPPORT", "jets"),
            "hot_tubs"
        );
        assert_eq!(
            hot.sources.of(ListKind::Category, "SUPPORT", "repair"),
            "base"
        );
        assert_eq!(hot.packs, ["base", "hot_tubs"]);
        // Named twice: applied once.
        let twice = packs.layered(&["hot_tubs".to_string(), "hot_tubs".to_string()]);
        assert_eq!(twice.packs, ["base", "hot_tubs"]);
    }
}
