//! The server's compositions keep each document's schema and add only what is new.

use automerge::{AutoCommit, ROOT, ReadDoc};
use time::macros::date;

use super::*;
use crate::document::{regimes, skeleton, validate};
use crate::id::DocumentKind;
use crate::retention::Regime;

#[test]
fn a_partner_assignment_gets_the_contact_and_each_action_once() {
    let mut doc = skeleton(DocumentKind::Partner);
    let action = PartnerAction {
        id: "a1".into(),
        description: "huisbezoek jeugdverpleegkundige".into(),
        agreed_on: Some("2026-11-20".into()),
    };
    let contact = Contact {
        name: Some("Anna (wijkteam Noord)".into()),
        phone: Some("020-1234567".into()),
        email: None,
    };
    write_assignment(&mut doc, Some(&contact), std::slice::from_ref(&action)).unwrap();
    write_assignment(&mut doc, None, &[action]).unwrap();
    validate(DocumentKind::Partner, &doc).unwrap();
    let assignment = doc.get(ROOT, "assignment").unwrap().unwrap().1;
    let actions = doc.get(&assignment, "actions").unwrap().unwrap().1;
    assert_eq!(doc.length(&actions), 1);
    let c = doc.get(&assignment, "contact").unwrap().unwrap().1;
    assert!(doc.get(&c, "email").unwrap().is_none());
}

#[test]
fn a_maatwerk_request_keeps_the_schema() {
    let mut doc = skeleton(DocumentKind::Maatwerk);
    write_request(
        &mut doc,
        &MaatwerkRequest {
            requested: "hulp bij het huishouden".into(),
            assessed_need: "twee uur per week".into(),
            proposed_voorziening: "huishoudelijke ondersteuning".into(),
            supporting_facts: vec![("e1".into(), "rugklachten sinds 2024".into())],
            triage: "t-backoffice".into(),
            submitted_on: "2026-11-22".into(),
        },
    )
    .unwrap();
    validate(DocumentKind::Maatwerk, &doc).unwrap();
}

#[test]
fn closing_writes_status_regimes_and_the_destroy_by_date() {
    let mut doc: AutoCommit = skeleton(DocumentKind::Meta);
    let parts = [
        DossierPart {
            regime: Regime::Wmo2015,
            trigger_on: Some(date!(2026 - 11 - 22)),
        },
        DossierPart {
            regime: Regime::RefusedOrNotAdopted,
            trigger_on: Some(date!(2026 - 11 - 22)),
        },
    ];
    write_closed(&mut doc, &parts, Some(date!(2041 - 11 - 22))).unwrap();
    validate(DocumentKind::Meta, &doc).unwrap();
    assert_eq!(regimes(&doc), parts);
    assert_eq!(
        crate::document::read::text(&doc, &ROOT, "destroy_by").as_deref(),
        Some("2041-11-22")
    );
    write_closed(&mut doc, &parts[..1], None).unwrap();
    assert!(doc.get(ROOT, "destroy_by").unwrap().is_none());
}
