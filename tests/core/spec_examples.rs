//! SPEC §5 worked examples: each row must hold with the default rule packs and the team of
//! the SPEC (Mark = sales + operations; Sarah = service + support + owner).

use mailtriage::mail::MessageView;
use mailtriage::profile::Profile;
use mailtriage::triage::{triage, Context, Decision, Reason};

/// The SPEC's team and nothing else: default rule packs only.
const TEAM: &str = "
business: {name: Hot Tub Man, domains: [hottubman.ca]}
team:
  - name: Mark Johnson
    email: mark@hottubman.ca
    roles: [sales_manager, operations_manager]
  - name: Sarah Williams
    email: sarah@hottubman.ca
    roles: [service_manager, support_lead, owner]
";

fn decide(subject: &str, body: &str) -> Decision {
    let profile = Profile::from_bytes("spec-team.yaml", TEAM.as_bytes()).expect("profile compiles");
    let raw = format!(
        "From: Pat Customer <pat@example.com>\r\nTo: info@hottubman.ca\r\nSubject: {subject}\r\nMessage-ID: <x@example.com>\r\n\r\n{body}\r\n"
    );
    let view = MessageView::parse(raw.as_bytes(), 256 * 1024);
    triage(&view, &profile, &Context::default())
}

fn roles(d: &Decision) -> Vec<(String, f64)> {
    d.matched_roles
        .iter()
        .map(|r| (r.role.clone(), r.score))
        .collect()
}

#[test]
fn row1_supplier_goes_to_mark_by_operations() {
    let d = decide(
        "Vendor inquiry",
        "We're a hot tub parts supplier. Interested in becoming a vendor for your business.",
    );
    assert_eq!(d.category, "MANAGER");
    assert_eq!(d.recipient.as_deref(), Some("Mark Johnson"));
    assert_eq!(d.reason, Reason::ManagerRoleContentMatch);
    assert_eq!(roles(&d), vec![("operations_manager".into(), 2.0)]);
    assert_eq!(d.folder.as_deref(), Some("MANAGER/Mark Johnson"));
}

#[test]
fn row2_complaint_goes_to_sarah_by_service_and_escalates() {
    let d = decide(
        "My visit",
        "I'm very disappointed with the service I received. This is unacceptable.",
    );
    assert_eq!(d.category, "MANAGER");
    assert_eq!(d.recipient.as_deref(), Some("Sarah Williams"));
    assert_eq!(d.reason, Reason::ManagerRoleContentMatch);
    assert_eq!(d.matched_roles.len(), 1);
    assert_eq!(d.matched_roles[0].role, "service_manager");
    assert!(d.escalation.is_some(), "the complaint must escalate");
}

#[test]
fn row3_franchise_goes_to_sarah_as_owner() {
    let d = decide(
        "Opportunity",
        "We're interested in discussing a potential franchise opportunity",
    );
    assert_eq!(d.category, "MANAGER");
    assert_eq!(d.recipient.as_deref(), Some("Sarah Williams"));
    assert_eq!(d.reason, Reason::ManagerRoleContentMatch);
    assert_eq!(roles(&d), vec![("owner".into(), 0.9)]);
}

#[test]
fn row4_commercial_bulk_supplier_goes_to_mark_by_two_roles() {
    let d = decide(
        "Inquiry",
        "We're a commercial business looking for bulk hot tub service contracts and also interested in becoming a parts supplier",
    );
    assert_eq!(d.category, "MANAGER");
    assert_eq!(d.recipient.as_deref(), Some("Mark Johnson"));
    assert_eq!(d.reason, Reason::ManagerMultipleRolesMatched);
    assert_eq!(d.total_score, 3.0);
    assert_eq!(
        roles(&d),
        vec![
            ("sales_manager".into(), 2.0),
            ("operations_manager".into(), 1.0)
        ]
    );
    let sales = d
        .matched_roles
        .iter()
        .find(|r| r.role == "sales_manager")
        .expect("sales");
    assert_eq!(sales.keywords, vec!["bulk", "commercial"]);
    let ops = d
        .matched_roles
        .iter()
        .find(|r| r.role == "operations_manager")
        .expect("ops");
    assert_eq!(ops.keywords, vec!["supplier"]);
}

#[test]
fn row5_partnership_mark_3_0_beats_sarah_2_1() {
    let d = decide(
        "Partnership",
        "We're interested in a commercial partnership for bulk service contracts",
    );
    assert_eq!(d.category, "MANAGER");
    assert_eq!(d.recipient.as_deref(), Some("Mark Johnson"));
    assert_eq!(d.reason, Reason::ManagerMultipleRolesMatched);
    let scores: Vec<(String, f64)> = d
        .candidates
        .iter()
        .map(|c| (c.member.clone(), c.score))
        .collect();
    assert_eq!(
        scores,
        vec![("Mark Johnson".into(), 3.0), ("Sarah Williams".into(), 2.1)]
    );
    assert_eq!(d.runner_up.as_deref(), Some("Sarah Williams"));
    assert_eq!(d.margin, Some(0.9));
}

#[test]
fn row6_quote_for_new_hot_tub_goes_to_mark_by_category_role() {
    let d = decide(
        "Quote request",
        "Could you send me a quote on a new hot tub? We'd like something for six people.",
    );
    assert_eq!(d.category, "SALES");
    assert_eq!(d.recipient.as_deref(), Some("Mark Johnson"));
    assert_eq!(d.reason, Reason::CategoryRole);
    assert_eq!(d.role.as_deref(), Some("sales_manager"));
}

#[test]
fn row7_hi_sarah_goes_to_sarah_by_name() {
    let d = decide(
        "Call back",
        "Hi Sarah, can you call me back about my invoice",
    );
    assert_eq!(d.recipient.as_deref(), Some("Sarah Williams"));
    assert_eq!(d.reason, Reason::NameMention);
    let how = d.name_mention.as_ref().map(|n| n.how.as_str());
    assert_eq!(how, Some("greeting"));
}

#[test]
fn solo_owner_holding_every_role_receives_everything() {
    let solo = "
business: {name: Solo}
team:
  - name: Dana Whitfield
    roles: [owner, sales_manager, operations_manager, service_manager, support_lead]
";
    let profile = Profile::from_bytes("solo.yaml", solo.as_bytes()).expect("compiles");
    for body in [
        "We're a hot tub parts supplier.",
        "I'd like a quote for a new hot tub",
        "The heater is broken and needs a repair",
        "EMERGENCY: water everywhere, the tub is flooding the deck",
        "Something vague with no keywords at all",
        "We're interested in a franchise",
    ] {
        let raw = format!("From: a@example.com\r\nSubject: x\r\n\r\n{body}\r\n");
        let d = triage(
            &MessageView::parse(raw.as_bytes(), 1 << 18),
            &profile,
            &Context::default(),
        );
        assert_eq!(d.recipient.as_deref(), Some("Dana Whitfield"), "{body}");
    }
}

#[test]
fn empty_team_leaves_everything_unassigned() {
    let profile =
        Profile::from_bytes("empty.yaml", b"business: {name: Nobody Inc}\n").expect("compiles");
    let raw =
        b"From: a@example.com\r\nSubject: quote please\r\n\r\nHow much for a new hot tub?\r\n";
    let d = triage(
        &MessageView::parse(raw, 1 << 18),
        &profile,
        &Context::default(),
    );
    assert_eq!(d.reason, Reason::Unassigned);
    assert_eq!(d.recipient, None);
    assert_eq!(d.folder.as_deref(), Some("Unassigned"));
}
