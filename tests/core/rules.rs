//! Table-driven tests of the pure core's rules: every escalation mode and level,
//! classification (URGENT wins, ties by order, default category), sender rules,
//! header signals, and recipient tie-breaks by 7-day load.

use mailtriage::mail::MessageView;
use mailtriage::profile::Profile;
use mailtriage::triage::{triage, Context, Decision, History, Level, Reason};

const TEAM: &str = "
business: {name: Hot Tub Man, domains: [hottubman.ca], industry: hot_tubs}
team:
  - name: Mark Johnson
    email: mark@hottubman.ca
    roles: [sales_manager, operations_manager]
  - name: Sarah Williams
    email: sarah@hottubman.ca
    roles: [service_manager, support_lead, owner]
";

fn profile(extra: &str) -> Profile {
    let yaml = format!("{TEAM}{extra}");
    match Profile::from_bytes("rules-test.yaml", yaml.as_bytes()) {
        Ok(p) => p,
        Err(e) => panic!("profile must compile:\n{e}"),
    }
}

fn message(headers: &str, subject: &str, body: &str) -> MessageView {
    let raw = format!(
        "From: Pat Customer <pat@example.com>\r\nTo: info@hottubman.ca\r\n{headers}Subject: {subject}\r\n\r\n{body}\r\n"
    );
    MessageView::parse(raw.as_bytes(), 1 << 18)
}

fn decide(p: &Profile, subject: &str, body: &str) -> Decision {
    triage(&message("", subject, body), p, &Context::default())
}

const ANGRY_NO_KEYWORD: &str = "This is horrible. The worst, most miserable experience. I am livid and I regret ever calling you.";
const CALM_WITH_LAWYER: &str =
    "My lawyer asked me to get a copy of the invoice for our records. Thanks so much, great work!";
const ANGRY_WITH_LAWYER: &str =
    "This is horrible and I am livid. My lawyer will be in touch about this miserable job.";
const NEUTRAL: &str = "Could you send me the manual for the control panel?";

#[test]
fn escalation_modes() {
    // (mode, text, expected level, expected `by`)
    let cases: &[(&str, &str, Option<Level>, &str)] = &[
        ("keyword_only", ANGRY_NO_KEYWORD, None, ""),
        (
            "keyword_only",
            CALM_WITH_LAWYER,
            Some(Level::URGENT),
            "keyword",
        ),
        ("keyword_only", NEUTRAL, None, ""),
        (
            "sentiment_only",
            ANGRY_NO_KEYWORD,
            Some(Level::URGENT),
            "sentiment",
        ),
        ("sentiment_only", CALM_WITH_LAWYER, None, ""),
        ("sentiment_only", NEUTRAL, None, ""),
        ("sentiment_and_keyword", ANGRY_NO_KEYWORD, None, ""),
        ("sentiment_and_keyword", CALM_WITH_LAWYER, None, ""),
        (
            "sentiment_and_keyword",
            ANGRY_WITH_LAWYER,
            Some(Level::URGENT),
            "sentiment+keyword",
        ),
        (
            "sentiment_then_keyword",
            ANGRY_NO_KEYWORD,
            Some(Level::URGENT),
            "sentiment",
        ),
        (
            "sentiment_then_keyword",
            CALM_WITH_LAWYER,
            Some(Level::URGENT),
            "keyword",
        ),
        (
            "sentiment_then_keyword",
            ANGRY_WITH_LAWYER,
            Some(Level::URGENT),
            "sentiment+keyword",
        ),
        ("sentiment_then_keyword", NEUTRAL, None, ""),
        ("manual_only", ANGRY_WITH_LAWYER, None, ""),
        ("manual_only", CALM_WITH_LAWYER, None, ""),
    ];
    for (mode, text, level, by) in cases {
        let p = profile(&format!("escalation: {{mode: {mode}}}\n"));
        let d = decide(&p, "About my service", text);
        let got = d.escalation.as_ref().map(|e| (e.level, e.by.as_str()));
        let want = level.map(|l| (l, *by));
        assert_eq!(got, want, "mode {mode}, text {text:?}");
    }
}

#[test]
fn sentiment_strength_sets_the_level() {
    let p = profile("escalation: {mode: sentiment_only, sentiment_threshold: -0.3, sentiment_levels: {URGENT: -0.8, HIGH: -0.6}}\n");
    let cases: &[(&str, Option<Level>)] = &[
        ("I'm a bit unhappy with the timing.", Some(Level::MEDIUM)),
        ("I'm unhappy with the delay.", Some(Level::HIGH)),
        (ANGRY_NO_KEYWORD, Some(Level::URGENT)),
        ("Thanks, all good now!", None),
    ];
    for (text, want) in cases {
        let d = decide(&p, "Visit", text);
        let s = d.sentiment.as_ref().map(|s| s.compound);
        assert_eq!(
            d.escalation.as_ref().map(|e| e.level),
            *want,
            "{text:?} (sentiment {s:?})"
        );
    }
}

#[test]
fn keyword_levels_and_the_highest_wins() {
    let p = profile("escalation: {mode: keyword_only, keywords: {refund: MEDIUM, unacceptable: HIGH, lawyer: URGENT, third time: none}}\n");
    let cases: &[(&str, Option<Level>)] = &[
        ("I would like a refund.", Some(Level::MEDIUM)),
        ("This is unacceptable, I want a refund.", Some(Level::HIGH)),
        (
            "Unacceptable. Refund me or my lawyer calls.",
            Some(Level::URGENT),
        ),
        ("This is the third time I write.", None),
    ];
    for (text, want) in cases {
        let d = decide(&p, "x", text);
        assert_eq!(d.escalation.as_ref().map(|e| e.level), *want, "{text:?}");
    }
}

#[test]
fn escalation_actions_resolve_recipient_and_fallback() {
    let p = profile(
        "escalation:\n  mode: keyword_only\n  actions:\n    URGENT: {flag: true, notify: [recipient, fallback, Mark Johnson], copy_to: ESCALATED/Legal}\n",
    );
    let d = decide(
        &p,
        "Quote",
        "I want a quote for a new hot tub or my lawyer calls.",
    );
    assert_eq!(d.recipient.as_deref(), Some("Mark Johnson"));
    let e = d.escalation.expect("escalates");
    assert_eq!(e.level, Level::URGENT);
    assert!(e.actions.flag);
    assert_eq!(e.actions.notify, vec!["Mark Johnson", "Sarah Williams"]);
    assert_eq!(e.actions.copy_to.as_deref(), Some("ESCALATED/Legal"));
    assert_eq!(e.actions.keywords, vec!["$Escalated", "$Priority_URGENT"]);
}

#[test]
fn fault_words_carry_no_sentiment() {
    let p = profile("escalation: {mode: sentiment_only}\n");
    let d = decide(
        &p,
        "FLO error",
        "The tub shows an error, but the jets cut out and the pump has a leak.",
    );
    assert!(
        d.escalation.is_none(),
        "a fault report is not anger: {:?}",
        d.sentiment
    );
    // "no problem" stays friendly: a neutral word still absorbs the "no" before it.
    let d = decide(&p, "x", "No problem at all, see you Tuesday.");
    assert!(d.sentiment.map(|s| s.compound).unwrap_or(-1.0) >= 0.0);
    let p = profile("escalation: {mode: sentiment_only, sentiment_neutral: [awful]}\n");
    let d = decide(&p, "x", "The awful weather delayed you, thanks for coming!");
    assert!(d.sentiment.map(|s| s.compound).unwrap_or(-1.0) >= 0.0);
}

#[test]
fn peoples_names_carry_no_sentiment() {
    let p = profile("escalation: {mode: sentiment_only}\n");
    let sentiment = |from: &str, body: &str| {
        let raw = format!("From: {from}\r\nTo: info@hottubman.ca\r\nSubject: Hi\r\n\r\n{body}\r\n");
        let d = triage(
            &MessageView::parse(raw.as_bytes(), 1 << 18),
            &p,
            &Context::default(),
        );
        d.sentiment
            .map(|s| s.words.iter().map(|w| w.word.clone()).collect::<Vec<_>>())
    };
    // The sender's own name ("Grant", "Joy") is not a mood; the same words in the text are.
    let words = sentiment(
        "Olivia Grant <o@example.net>",
        "See you Thursday.\n\nOlivia Grant",
    )
    .unwrap_or_default();
    assert!(!words.iter().any(|w| w == "Grant"), "{words:?}");
    let words = sentiment(
        "Joy Park <j@example.net>",
        "Please grant my request, it would bring me joy.\nJoy",
    )
    .unwrap_or_default();
    assert!(
        words.iter().any(|w| w == "grant")
            && words.iter().any(|w| w == "joy")
            && !words.iter().any(|w| w == "Joy"),
        "{words:?}"
    );
}

#[test]
fn classification_rules() {
    let p = profile("categories:\n  BILLING: {keywords: {invoice: 1.0, receipt: 1.0}}\n  SALES: {keywords: {invoice: 0}}\n");
    // (subject, body, category, rule)
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "Hello",
            "Water everywhere and the tub is flooding the basement",
            "URGENT",
            "urgent_threshold",
        ),
        // URGENT wins even when another category scores higher.
        (
            "Quote",
            "emergency: flooding! also a quote for a new hot tub, pricing, financing, price list",
            "URGENT",
            "urgent_threshold",
        ),
        (
            "Quote",
            "A quote for a new hot tub please",
            "SALES",
            "highest_score",
        ),
        // BILLING (profile category, declared after SUPPORT) ties SUPPORT? No: SUPPORT has
        // receipt 0.5 + invoice 0.5 = 1.0; BILLING 2.0 wins outright.
        (
            "Invoice",
            "Please resend the receipt",
            "BILLING",
            "highest_score",
        ),
        (
            "Hi",
            "What are your opening hours?",
            "SUPPORT",
            "default_category",
        ),
        // A tie between SALES (quote 1.0) and SUPPORT (repair 1.0): SALES is earlier in the order.
        ("x", "quote for a repair", "SALES", "tie_break"),
    ];
    for (subject, body, category, rule) in cases {
        let d = decide(&p, subject, body);
        assert_eq!(
            (d.category.as_str(), d.classification.rule.as_str()),
            (*category, *rule),
            "{body:?}: {:?}",
            d.category_scores
        );
    }
}

#[test]
fn subject_boost_multiplies_subject_hits() {
    let p = profile("routing: {subject_boost: 2.0}\n");
    let d = decide(&p, "quote", "hello");
    assert_eq!(d.category_scores.get("SALES"), Some(&2.0));
    let hit = &d
        .classification
        .details
        .iter()
        .find(|c| c.category == "SALES")
        .expect("SALES")
        .hits[0];
    assert_eq!((hit.points, hit.found_in.as_str()), (2.0, "subject"));
}

#[test]
fn sender_rules_force_category_and_member() {
    let p = profile("senders:\n  - {from: acme-supplies.example.com, category: MANAGER, member: Sarah Williams}\n  - {from: pat@example.com, category: SALES}\n");
    let d = decide(&p, "Order", "Please confirm the shipment.");
    assert_eq!(
        d.category, "SALES",
        "the exact address beats nothing else here"
    );
    let raw = "From: orders@eu.acme-supplies.example.com\r\nSubject: Order\r\n\r\nPlease confirm the shipment of filters.\r\n";
    let d = triage(
        &MessageView::parse(raw.as_bytes(), 1 << 18),
        &p,
        &Context::default(),
    );
    assert_eq!(d.category, "MANAGER");
    assert_eq!(d.classification.rule, "sender_rule");
    assert_eq!(d.recipient.as_deref(), Some("Sarah Williams"));
    assert_eq!(d.reason, Reason::SenderRule);
}

#[test]
fn header_signals_keep_mail_from_people() {
    let p =
        profile("routing: {lists: {folder: Lists}, bulk: leave, auto_replies: {folder: Auto}}\n");
    let ctx = Context {
        account_addresses: vec!["info@hottubman.ca".into()],
        ..Context::default()
    };
    // (extra headers, reason, folder)
    let cases: &[(&str, Reason, Option<&str>)] = &[
        (
            "List-Id: <spa.example.com>\r\n",
            Reason::NotRoutedList,
            Some("Lists"),
        ),
        (
            "List-Unsubscribe: <mailto:u@example.com>\r\n",
            Reason::NotRoutedList,
            Some("Lists"),
        ),
        ("Precedence: bulk\r\n", Reason::NotRoutedBulk, None),
        (
            "Auto-Submitted: auto-replied\r\n",
            Reason::NotRoutedAutoReply,
            Some("Auto"),
        ),
        (
            "Auto-Submitted: no\r\n",
            Reason::CategoryRole,
            Some("SALES/Mark Johnson"),
        ),
    ];
    for (headers, reason, folder) in cases {
        let d = triage(
            &message(headers, "Quote", "Hi Sarah, a quote please"),
            &p,
            &ctx,
        );
        let expect_folder = if *reason == Reason::CategoryRole {
            Some("SALES/Sarah Williams")
        } else {
            *folder
        };
        let want_reason = if *reason == Reason::CategoryRole {
            Reason::NameMention
        } else {
            *reason
        };
        assert_eq!(
            (d.reason, d.folder.as_deref()),
            (want_reason, expect_folder),
            "{headers:?}"
        );
        if *reason != Reason::CategoryRole {
            assert!(d.escalation.is_none() && d.recipient.is_none());
        }
    }
    let own = "From: info@hottubman.ca\r\nSubject: quote\r\n\r\nA quote.\r\n";
    let d = triage(&MessageView::parse(own.as_bytes(), 1 << 18), &p, &ctx);
    assert_eq!(d.reason, Reason::NotRoutedOwnMail);
    assert_eq!(d.folder, None, "own mail is left in place by default");
}

#[test]
fn ties_between_role_holders_go_to_the_least_loaded_then_profile_order() {
    let yaml = "
business: {name: Two Reps}
team:
  - {name: Ann Lee, roles: [sales_manager]}
  - {name: Bob Cruz, roles: [sales_manager]}
  - {name: Cy Owner, roles: [owner]}
";
    let p = Profile::from_bytes("two.yaml", yaml.as_bytes()).expect("compiles");
    let view = message("", "Quote", "A quote please");
    let d = triage(&view, &p, &Context::default());
    assert_eq!(
        d.recipient.as_deref(),
        Some("Ann Lee"),
        "equal load: profile order"
    );
    assert!(d
        .tie_break
        .as_deref()
        .is_some_and(|t| t.contains("comes first in the profile")));
    let mut history = History::default();
    history.load_7d.insert("Ann Lee".into(), 5);
    history.load_7d.insert("Bob Cruz".into(), 2);
    let ctx = Context {
        history,
        ..Context::default()
    };
    let d = triage(&view, &p, &ctx);
    assert_eq!(d.recipient.as_deref(), Some("Bob Cruz"));
    assert!(d
        .tie_break
        .as_deref()
        .is_some_and(|t| t.contains("fewer assignments")));
    // A category nobody handles goes to the fallback role's holder.
    let d = triage(
        &message("", "Hi", "The heater is broken, please repair it"),
        &p,
        &Context::default(),
    );
    assert_eq!(
        (d.category.as_str(), d.recipient.as_deref(), d.reason),
        ("SUPPORT", Some("Cy Owner"), Reason::Fallback)
    );
}

#[test]
fn name_mention_precedence() {
    let p = profile("");
    // (to, subject, body, recipient, how)
    let cases: &[(&str, &str, &str, &str, &str)] = &[
        (
            "mark@hottubman.ca",
            "x",
            "Hi Sarah, about the heater",
            "Mark Johnson",
            "address",
        ),
        (
            "info@hottubman.ca",
            "For Mark",
            "Hi Sarah, about the heater",
            "Sarah Williams",
            "greeting",
        ),
        (
            "info@hottubman.ca",
            "For Mark",
            "About the heater, Sarah said to write",
            "Mark Johnson",
            "subject",
        ),
        (
            "info@hottubman.ca",
            "x",
            "The heater. Sarah said so, then Mark too.",
            "Sarah Williams",
            "body",
        ),
        (
            "info@hottubman.ca",
            "x",
            "Dear Mr. Johnson,\nthe heater is broken",
            "Mark Johnson",
            "greeting",
        ),
        (
            "info@hottubman.ca",
            "x",
            "Sarah,\n\nthe heater is broken",
            "Sarah Williams",
            "greeting",
        ),
    ];
    for (to, subject, body, who, how) in cases {
        let raw =
            format!("From: pat@example.com\r\nTo: {to}\r\nSubject: {subject}\r\n\r\n{body}\r\n");
        let d = triage(
            &MessageView::parse(raw.as_bytes(), 1 << 18),
            &p,
            &Context::default(),
        );
        let got = d
            .name_mention
            .as_ref()
            .map(|n| (n.member.as_str(), n.how.as_str()));
        assert_eq!(got, Some((*who, *how)), "{body:?}");
        assert_eq!(d.reason, Reason::NameMention);
    }
}

#[test]
fn unmatched_mail_can_be_left_in_place_or_filed() {
    let cases: &[(&str, Reason, Option<&str>)] = &[
        ("", Reason::CategoryRole, Some("SUPPORT/Sarah Williams")),
        (
            "routing: {unmatched: route}\n",
            Reason::CategoryRole,
            Some("SUPPORT/Sarah Williams"),
        ),
        (
            "routing: {unmatched: leave}\n",
            Reason::NotRoutedUnmatched,
            None,
        ),
        (
            "routing: {unmatched: {folder: Later}}\n",
            Reason::NotRoutedUnmatched,
            Some("Later"),
        ),
    ];
    for (extra, reason, folder) in cases {
        let p = profile(extra);
        let d = decide(&p, "Hello", "What are your opening hours?");
        assert_eq!(
            (d.reason, d.folder.as_deref()),
            (*reason, *folder),
            "{extra:?}"
        );
        // Mail that does match a category is routed as usual.
        let d = decide(&p, "Quote", "A quote for a new hot tub please");
        assert_eq!(d.folder.as_deref(), Some("SALES/Mark Johnson"), "{extra:?}");
    }
}

#[test]
fn upstream_spam_verdicts_keep_spam_from_people() {
    let body = "Hi Sarah, I will call my lawyer unless you buy our new hot tub covers today";
    // (extra headers, marked as spam?)
    let cases: &[(&str, bool)] = &[
        ("X-Spam-Flag: YES\r\n", true),
        ("X-Spam-Flag: yes\r\n", true),
        ("X-Spam-Flag: NO\r\n", false),
        (
            "X-Spam-Status: Yes, score=9.1 required=5.0 tests=BAYES_99,URIBL_BLACK\r\n",
            true,
        ),
        (
            "X-Spam-Status: Yes, score=7.3 required=5.0\r\n\ttests=HTML_MESSAGE,RDNS_NONE\r\n",
            true,
        ),
        (
            "X-Spam-Status: No, score=-0.1 required=5.0 tests=DKIM_SIGNED\r\n",
            false,
        ),
        ("X-Spam: Yes\r\n", true),
        ("X-Spam: no\r\n", false),
        ("X-Spam-Action: reject\r\n", true),
        ("X-Spam-Action: add header\r\n", true),
        ("X-Spam-Action: rewrite subject\r\n", true),
        ("X-Spam-Action: no action\r\n", false),
        ("X-Spam-Action: greylist\r\n", false),
        ("X-MS-Exchange-Organization-SCL: 5\r\n", true),
        ("X-MS-Exchange-Organization-SCL: 9\r\n", true),
        ("X-MS-Exchange-Organization-SCL: 1\r\n", false),
        ("X-MS-Exchange-Organization-SCL: -1\r\n", false),
        ("", false),
    ];
    for extra in ["", "routing: {spam: {folder: Junk/Upstream}}\n"] {
        let p = profile(extra);
        for (headers, spam) in cases {
            let d = triage(&message(headers, "Covers", body), &p, &Context::default());
            assert_eq!(d.signals.spam, *spam, "{headers:?}");
            if *spam {
                let folder = (!extra.is_empty()).then_some("Junk/Upstream");
                assert_eq!(
                    (d.reason, d.folder.as_deref(), d.recipient.as_deref()),
                    (Reason::NotRoutedSpam, folder, None),
                    "{headers:?} {extra:?}"
                );
                assert!(d.escalation.is_none(), "spam never escalates: {headers:?}");
                let why = d.signals.evidence.join("; ");
                let name = headers.split(':').next().unwrap_or_default();
                assert!(why.contains(name), "evidence {why:?} names {name}");
            } else {
                assert_eq!(
                    d.recipient.as_deref(),
                    Some("Sarah Williams"),
                    "{headers:?}"
                );
                assert!(d.escalation.is_some(), "{headers:?}");
            }
        }
    }
}

#[test]
fn urgent_mail_escalates_by_default_in_every_mode_but_manual_only() {
    // Classified URGENT on the category's own words; no escalation keyword, calm wording.
    let subject = "Water everywhere";
    let body = "The spa is flooding the deck, water everywhere.";
    let cases: &[(&str, Option<Level>)] = &[
        ("escalation: {mode: keyword_only}\n", Some(Level::URGENT)),
        ("escalation: {mode: sentiment_only}\n", Some(Level::URGENT)),
        (
            "escalation: {mode: sentiment_and_keyword}\n",
            Some(Level::URGENT),
        ),
        (
            "escalation: {mode: sentiment_then_keyword}\n",
            Some(Level::URGENT),
        ),
        ("escalation: {mode: manual_only}\n", None),
        (
            "escalation: {mode: keyword_only, categories: {URGENT: none}}\n",
            None,
        ),
        (
            "escalation: {mode: keyword_only, categories: {URGENT: HIGH}}\n",
            Some(Level::HIGH),
        ),
    ];
    for (extra, want) in cases {
        let p = profile(extra);
        let d = decide(&p, subject, body);
        assert_eq!(d.category, "URGENT", "{extra}");
        let got = d.escalation.as_ref().map(|e| e.level);
        assert_eq!(got, *want, "{extra}");
        if let Some(e) = &d.escalation {
            assert_eq!(e.category.as_deref(), Some("URGENT"), "{extra}");
            assert!(e.by.contains("category"), "{extra}: by {}", e.by);
            assert!(e.actions.flag, "{extra}: URGENT's actions apply");
            let text = mailtriage::triage::explain::render(&message("", subject, body), &d);
            assert!(
                text.contains("category URGENT → escalated at"),
                "explain says why:\n{text}"
            );
        }
    }
    // Another category can be made to escalate on its own.
    let p = profile("escalation: {mode: keyword_only, categories: {MANAGER: MEDIUM}}\n");
    let d = decide(
        &p,
        "Partnership",
        "We would like to discuss a commercial partnership and bulk pricing.",
    );
    assert_eq!(d.category, "MANAGER");
    assert_eq!(d.escalation.map(|e| e.level), Some(Level::MEDIUM));
}

#[test]
fn mass_mail_is_routed_but_never_escalated() {
    let p = profile("escalation: {mode: keyword_only}\n");
    let threat =
        "Our lawyer will be in touch: last chance to claim your discount on hot tub covers.";
    let d = decide(&p, "Covers", threat);
    assert!(d.escalation.is_some(), "the wording alone escalates");
    let newsletter = format!(
        "{threat}\n\nYou are receiving this email because you signed up. To unsubscribe, click here."
    );
    let d = decide(&p, "Covers", &newsletter);
    assert!(d.signals.mass_mail, "{:?}", d.signals);
    assert!(d.escalation.is_none(), "{:?}", d.escalation);
    assert!(d.recipient.is_some(), "mass mail is still routed");
    // An owner's own mass-mail wording counts too.
    let p = profile("escalation: {mode: keyword_only, mass_mail: [sent to our valued partners]}\n");
    let d = decide(
        &p,
        "Covers",
        &format!("{threat}\nThis message was sent to our valued partners."),
    );
    assert!(d.signals.mass_mail && d.escalation.is_none());
}

#[test]
fn the_categorys_own_words_choose_between_members_first() {
    // A job application for a technician post is MANAGER mail about hiring: the member
    // whose role handles hiring gets it, not the one whose trade words it repeats.
    let p = match Profile::from_bytes(
        "hiring.yaml",
        b"
business: {name: Pipes Ltd, domains: [pipes.example], industry: trades}
team:
  - name: Tom Baker
    roles: [service_manager]
  - name: Olga Novak
    roles: [operations_manager]
",
    ) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    };
    let d = decide(
        &p,
        "Job application: service technician",
        "Hello, I am applying for the service technician position. I have five years of \
         repair and maintenance work as a technician, boiler service and installs. My \
         resume is attached.",
    );
    assert_eq!(d.category, "MANAGER", "{d:#?}");
    assert_eq!(d.recipient.as_deref(), Some("Olga Novak"), "{d:#?}");
    let tom = d
        .candidates
        .iter()
        .find(|c| c.member == "Tom Baker")
        .map(|c| (c.score, c.category_words));
    let olga = d
        .candidates
        .iter()
        .find(|c| c.member == "Olga Novak")
        .map(|c| (c.score, c.category_words));
    let (Some(tom), Some(olga)) = (tom, olga) else {
        panic!("both scored: {:?}", d.candidates)
    };
    assert!(
        tom.0 > olga.0,
        "Tom has more words in all: {tom:?} vs {olga:?}"
    );
    assert!(
        olga.1 > tom.1,
        "Olga has more hiring words: {tom:?} vs {olga:?}"
    );
    let text = mailtriage::triage::explain::render(&message("", "x", "y"), &d);
    assert!(text.contains("on the category's own words"), "{text}");
}
