//! `Authentication-Results` (RFC 8601): what the receiving mail server found when it
//! checked a message's SPF, DKIM and DMARC.
//!
//! Anyone can write this header into a message, so it means something only when the
//! `authserv-id` (its first word) names a server the configuration trusts — the one that
//! received the mail for this mailbox, which removes or overwrites copies claiming its
//! name. Only what acknowledgements need is read: the DMARC result, and the SPF result
//! with the envelope domain it was for.

/// The results one header reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthResults {
    /// Lowercased; `None` for headers without one (Microsoft 365 writes `spf=…; …` only).
    pub authserv_id: Option<String>,
    /// `pass`, `fail`, `none`, … lowercased.
    pub dmarc: Option<String>,
    pub spf: Option<String>,
    /// The domain SPF checked (`smtp.mailfrom`, else `smtp.helo`), lowercased.
    pub spf_domain: Option<String>,
}

/// Removes RFC 5322 comments (`(…)`, nested), which may hold anything.
fn without_comments(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut depth = 0usize;
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            escaped = false;
            if depth == 0 {
                out.push(c);
            }
            continue;
        }
        match c {
            '\\' => escaped = true,
            '(' => depth += 1,
            ')' if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    out.push(' ');
                }
            }
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// Parses one header value; `None` when it is not shaped like one.
pub fn parse(value: &str) -> Option<AuthResults> {
    let text = without_comments(value).to_ascii_lowercase();
    let mut parts = text.split(';').map(str::trim);
    let head = parts.next()?;
    let mut r = AuthResults::default();
    let mut results: Vec<&str> = Vec::new();
    if head.contains('=') {
        // No authserv-id: the first part is already a result.
        results.push(head);
    } else {
        let id = head.split_whitespace().next()?;
        r.authserv_id = Some(id.trim_matches('"').to_string());
    }
    results.extend(parts);
    for res in results {
        let mut words = res.split_whitespace();
        let Some((method, result)) = words.next().and_then(|w| w.split_once('=')) else {
            continue;
        };
        let method = method.split('/').next().unwrap_or(method);
        match method {
            "dmarc" if r.dmarc.is_none() => r.dmarc = Some(result.to_string()),
            "spf" if r.spf.is_none() => {
                r.spf = Some(result.to_string());
                let mut helo = None;
                for prop in words {
                    if let Some(v) = prop.strip_prefix("smtp.mailfrom=") {
                        r.spf_domain = Some(domain_part(v));
                    } else if let Some(v) = prop.strip_prefix("smtp.helo=") {
                        helo = Some(domain_part(v));
                    }
                }
                if r.spf_domain.is_none() {
                    r.spf_domain = helo;
                }
            }
            _ => {}
        }
    }
    Some(r)
}

fn domain_part(v: &str) -> String {
    let v = v.trim_matches(|c| c == '"' || c == '<' || c == '>');
    v.rsplit_once('@').map_or(v, |(_, d)| d).to_string()
}

/// Are two domains aligned in DMARC's relaxed sense (one is the other or a subdomain of
/// it)? The public-suffix list is not consulted: `a.example.com` and `b.example.com` do
/// not align here, which errs towards not answering.
pub fn aligned(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim_end_matches('.'), b.trim_end_matches('.'));
    !a.is_empty()
        && !b.is_empty()
        && (a.eq_ignore_ascii_case(b)
            || a.to_ascii_lowercase()
                .ends_with(&format!(".{}", b.to_ascii_lowercase()))
            || b.to_ascii_lowercase()
                .ends_with(&format!(".{}", a.to_ascii_lowercase())))
}

/// What the trusted server said about the sender of a message from `from_domain`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// No header from a trusted server: nothing is known.
    Unknown,
    /// DMARC passed, or SPF passed for a domain aligned with the From: domain.
    Authenticated,
    /// A trusted server checked and neither passed.
    NotAuthenticated,
}

/// The verdict of the topmost header whose authserv-id is in `trusted` (lowercased).
pub fn verdict(headers: &[String], trusted: &[String], from_domain: &str) -> Verdict {
    let Some(r) = headers.iter().filter_map(|h| parse(h)).find(|r| {
        r.authserv_id
            .as_ref()
            .is_some_and(|id| trusted.iter().any(|t| t == id))
    }) else {
        return Verdict::Unknown;
    };
    let dmarc = r.dmarc.as_deref() == Some("pass");
    let spf = r.spf.as_deref() == Some("pass")
        && r.spf_domain
            .as_deref()
            .is_some_and(|d| aligned(d, from_domain));
    if dmarc || spf {
        Verdict::Authenticated
    } else {
        Verdict::NotAuthenticated
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_as_servers_write_them() {
        let gmail = "mx.google.com;\r\n       dkim=pass header.i=@example.com header.s=s1 header.b=abc;\r\n       spf=pass (google.com: domain of pat@example.com designates 1.2.3.4 as permitted sender) smtp.mailfrom=pat@example.com;\r\n       dmarc=pass (p=REJECT sp=REJECT dis=NONE) header.from=example.com";
        let r = parse(gmail).expect("parses");
        assert_eq!(r.authserv_id.as_deref(), Some("mx.google.com"));
        assert_eq!(r.dmarc.as_deref(), Some("pass"));
        assert_eq!(r.spf.as_deref(), Some("pass"));
        assert_eq!(r.spf_domain.as_deref(), Some("example.com"));

        let rspamd = "mx.hottubman.ca; dkim=none; dmarc=fail reason=\"SPF not aligned (relaxed), No valid DKIM\" header.from=bank.example (policy=reject); spf=pass (mx.hottubman.ca: domain of spam@spammer.example designates 5.6.7.8 as permitted sender) smtp.mailfrom=spam@spammer.example";
        let r = parse(rspamd).expect("parses");
        assert_eq!(r.dmarc.as_deref(), Some("fail"));
        assert_eq!(r.spf_domain.as_deref(), Some("spammer.example"));

        let microsoft = "spf=pass (sender IP is 1.2.3.4) smtp.mailfrom=example.com; dkim=pass (signature was verified) header.d=example.com;dmarc=pass action=none header.from=example.com;compauth=pass reason=100";
        let r = parse(microsoft).expect("parses");
        assert_eq!(r.authserv_id, None);
        assert_eq!(r.dmarc.as_deref(), Some("pass"));

        let versioned = "mx.example.net 1; spf=softfail smtp.helo=mail.example.org";
        let r = parse(versioned).expect("parses");
        assert_eq!(r.authserv_id.as_deref(), Some("mx.example.net"));
        assert_eq!(r.spf.as_deref(), Some("softfail"));
        assert_eq!(r.spf_domain.as_deref(), Some("mail.example.org"));
    }

    #[test]
    fn only_a_trusted_server_counts_and_spf_must_align() {
        let trusted = vec!["mx.hottubman.ca".to_string()];
        let h = |s: &str| vec![s.to_string()];
        let cases: &[(Vec<String>, &str, Verdict)] = &[
            (
                h("mx.hottubman.ca; dmarc=pass header.from=example.com"),
                "example.com",
                Verdict::Authenticated,
            ),
            (
                h("mx.hottubman.ca; spf=pass smtp.mailfrom=bounce@mail.example.com; dmarc=none"),
                "example.com",
                Verdict::Authenticated,
            ),
            (
                h("mx.hottubman.ca; spf=pass smtp.mailfrom=x@spammer.example; dmarc=none"),
                "victim.example",
                Verdict::NotAuthenticated,
            ),
            (
                h("mx.hottubman.ca; spf=fail smtp.mailfrom=x@victim.example; dmarc=fail"),
                "victim.example",
                Verdict::NotAuthenticated,
            ),
            (
                h("mx.hottubman.ca; dkim=pass header.d=spammer.example"),
                "victim.example",
                Verdict::NotAuthenticated,
            ),
            // A forged header naming another server means nothing.
            (
                h("mx.forged.example; dmarc=pass"),
                "victim.example",
                Verdict::Unknown,
            ),
            // Nor does a comment that looks like a result.
            (
                h("mx.hottubman.ca; spf=fail (dmarc=pass) smtp.mailfrom=x@victim.example"),
                "victim.example",
                Verdict::NotAuthenticated,
            ),
            (Vec::new(), "victim.example", Verdict::Unknown),
            // The topmost trusted header decides (ours is added on top).
            (
                vec![
                    "mx.hottubman.ca; dmarc=fail".to_string(),
                    "mx.hottubman.ca; dmarc=pass".to_string(),
                ],
                "victim.example",
                Verdict::NotAuthenticated,
            ),
        ];
        for (headers, from, want) in cases {
            assert_eq!(verdict(headers, &trusted, from), *want, "{headers:?}");
        }
    }

    #[test]
    fn alignment_is_relaxed_but_not_sideways() {
        assert!(aligned("example.com", "example.com"));
        assert!(aligned("mail.example.com", "example.com"));
        assert!(aligned("example.com", "mail.example.com"));
        assert!(!aligned("a.example.com", "b.example.com"));
        assert!(!aligned("badexample.com", "example.com"));
        assert!(!aligned("", "example.com"));
    }
}
