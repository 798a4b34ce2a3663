//! The built-in rule packs (`rules/*.yaml`), compiled into the binary so mailtriage works
//! from any directory. Profiles extend or override them.

use std::collections::BTreeMap;

use super::raw::{RawCategory, RawCategoryPack, RawEscalation, RawRole};

/// rules/categories.yaml, verbatim.
pub const CATEGORIES_YAML: &str = include_str!("../../rules/categories.yaml");
/// rules/roles.yaml, verbatim.
pub const ROLES_YAML: &str = include_str!("../../rules/roles.yaml");
/// rules/escalation.yaml, verbatim.
pub const ESCALATION_YAML: &str = include_str!("../../rules/escalation.yaml");
/// rules/booking.yaml, verbatim.
pub const BOOKING_YAML: &str = include_str!("../../rules/booking.yaml");

/// The built-in packs, parsed.
#[derive(Debug, Clone)]
pub struct RulePacks {
    pub categories: RawCategoryPack,
    pub roles: BTreeMap<String, RawRole>,
    pub escalation: RawEscalation,
    pub booking: RawCategory,
}

fn parse<T: serde::de::DeserializeOwned>(name: &str, text: &str) -> Result<T, String> {
    serde_saphyr::from_str(text).map_err(|e| format!("built-in rules/{name} is invalid: {e}"))
}

impl RulePacks {
    /// Parses the embedded packs (a failure here is a bug in the release, reported as an error).
    pub fn builtin() -> Result<RulePacks, String> {
        Ok(RulePacks {
            categories: parse("categories.yaml", CATEGORIES_YAML)?,
            roles: parse("roles.yaml", ROLES_YAML)?,
            escalation: parse("escalation.yaml", ESCALATION_YAML)?,
            booking: parse("booking.yaml", BOOKING_YAML)?,
        })
    }

    /// A short hash of every pack, so a decision's profile version changes with the rules.
    pub fn fingerprint_input() -> [&'static str; 4] {
        [CATEGORIES_YAML, ROLES_YAML, ESCALATION_YAML, BOOKING_YAML]
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
    }
}
