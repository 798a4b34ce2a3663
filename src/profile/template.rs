//! Text templates with `{placeholder}`s (acknowledgements): parsed and checked once per
//! profile load, filled per message.
//!
//! The placeholders a template may use are a list of names given by the caller, so a
//! feature adds its own (booking added `{provider}`, `{service}` and `{booking_link}`) by
//! adding a name to [`ACK_PLACEHOLDERS`] and a value where the text is filled.
//!
//! A line holding a placeholder that has no value for this message (a booking link when
//! the provider has none, say) is left out whole, so "Book here: {booking_link}" never
//! reaches a customer half-filled.

use std::collections::BTreeMap;

/// Placeholders of acknowledgement templates.
pub const ACK_PLACEHOLDERS: &[&str] = &[
    "customer_name",
    "customer_email",
    "member",
    "business",
    "subject",
    "category",
    "provider",
    "service",
    "booking_link",
];

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Text(String),
    /// A placeholder by name (one of the allowed ones).
    Var(String),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub source: String,
    pub parts: Vec<Part>,
}

/// Why a template is invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateError {
    Unknown(String),
    Unclosed,
}

impl Template {
    /// Parses `source`; `{{` and `}}` stand for literal braces.
    pub fn parse(source: &str, allowed: &[&str]) -> Result<Template, Vec<TemplateError>> {
        let mut parts = Vec::new();
        let mut errors = Vec::new();
        let mut text = String::new();
        let mut chars = source.chars().peekable();
        while let Some(ch) = chars.next() {
            match ch {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    text.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    text.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    let mut closed = false;
                    for c in chars.by_ref() {
                        if c == '}' {
                            closed = true;
                            break;
                        }
                        name.push(c);
                    }
                    if !closed {
                        errors.push(TemplateError::Unclosed);
                        break;
                    }
                    let name = name.trim().to_string();
                    if !allowed.contains(&name.as_str()) {
                        errors.push(TemplateError::Unknown(name));
                        continue;
                    }
                    if !text.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut text)));
                    }
                    parts.push(Part::Var(name));
                }
                c => text.push(c),
            }
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        if errors.is_empty() {
            Ok(Template {
                source: source.to_string(),
                parts,
            })
        } else {
            Err(errors)
        }
    }

    /// Fills the template. A line with a placeholder that has no value (missing or empty)
    /// is left out, with its line break.
    pub fn render(&self, values: &BTreeMap<&str, String>) -> String {
        let mut out = String::new();
        let mut line = String::new();
        let mut line_ok = true;
        let value = |v: &str| values.get(v).map(String::as_str).filter(|x| !x.is_empty());
        for p in &self.parts {
            match p {
                Part::Var(v) => match value(v) {
                    Some(x) => line.push_str(x),
                    None => line_ok = false,
                },
                Part::Text(t) => {
                    let mut rest = t.as_str();
                    while let Some(i) = rest.find('\n') {
                        line.push_str(&rest[..=i]);
                        if line_ok {
                            out.push_str(&line);
                        }
                        line.clear();
                        line_ok = true;
                        rest = &rest[i + 1..];
                    }
                    line.push_str(rest);
                }
            }
        }
        if line_ok {
            out.push_str(&line);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_fill_known_placeholders_and_report_unknown_ones() {
        let t = Template::parse(
            "Hello {customer_name}, {member} of {business} will reply. {{literal}}",
            ACK_PLACEHOLDERS,
        )
        .expect("valid");
        let mut v = BTreeMap::new();
        v.insert("customer_name", "Pat".to_string());
        v.insert("member", "Mark Johnson".to_string());
        v.insert("business", "Hot Tub Man".to_string());
        assert_eq!(
            t.render(&v),
            "Hello Pat, Mark Johnson of Hot Tub Man will reply. {literal}"
        );
        assert_eq!(
            Template::parse("Hi {custmer_name} {x", ACK_PLACEHOLDERS),
            Err(vec![
                TemplateError::Unknown("custmer_name".into()),
                TemplateError::Unclosed
            ])
        );
        // A value is inserted as text, never parsed again.
        v.insert("customer_name", "{member}".to_string());
        assert!(t.render(&v).starts_with("Hello {member}, Mark"));
    }

    #[test]
    fn a_line_whose_placeholder_has_no_value_is_left_out() {
        let t = Template::parse(
            "Hello {customer_name},\n{provider} will get back to you.\nBook here: {booking_link}\nThanks",
            ACK_PLACEHOLDERS,
        )
        .expect("valid");
        let mut v = BTreeMap::new();
        v.insert("customer_name", "Pat".to_string());
        v.insert("provider", "Nancy Ortiz".to_string());
        assert_eq!(
            t.render(&v),
            "Hello Pat,\nNancy Ortiz will get back to you.\nThanks"
        );
        v.insert("booking_link", "https://cal.com/x".to_string());
        assert!(t
            .render(&v)
            .contains("Book here: https://cal.com/x\nThanks"));
        v.insert("booking_link", String::new());
        assert!(!t.render(&v).contains("Book here"));
    }
}
