//! Schema validation: skeletons are valid, and each kind of violation is reported with its path.

use automerge::{AutoCommit, ObjType, ROOT, transaction::Transactable};

use super::*;

#[test]
fn every_skeleton_is_valid_for_its_kind() {
    for kind in DocumentKind::ALL {
        let doc = skeleton(kind);
        assert_eq!(validate(kind, &doc), Ok(()), "{kind:?}");
    }
}

fn plan_with_goal() -> (AutoCommit, automerge::ObjId) {
    let mut doc = skeleton(DocumentKind::Plan);
    let goals = doc.get(ROOT, "goals").unwrap().unwrap().1;
    let goal = doc.insert_object(&goals, 0, ObjType::Map).unwrap();
    doc.put(&goal, "id", "g1").unwrap();
    let title = doc.put_object(&goal, "title", ObjType::Text).unwrap();
    doc.splice_text(&title, 0, 0, "Weer naar school").unwrap();
    (doc, goal)
}

fn check(doc: &AutoCommit) -> Result<(), String> {
    validate(DocumentKind::Plan, doc).map_err(|e| e.to_string())
}

#[test]
fn a_goal_with_its_required_fields_is_valid_whether_strings_are_text_or_scalars() {
    let (mut doc, goal) = plan_with_goal();
    assert_eq!(check(&doc), Ok(()));
    doc.put(&goal, "title", "a scalar string").unwrap();
    assert_eq!(check(&doc), Ok(()));
}

#[test]
fn an_unknown_top_level_key_is_reported_with_its_path() {
    let mut doc = skeleton(DocumentKind::Plan);
    doc.put(ROOT, "diagnosis", "x").unwrap();
    assert_eq!(check(&doc), Err("diagnosis: unknown key".into()));
}

#[test]
fn a_nested_unknown_key_is_reported_with_its_full_path() {
    let (mut doc, goal) = plan_with_goal();
    doc.put(&goal, "secret", "x").unwrap();
    assert_eq!(check(&doc), Err("goals/0/secret: unknown key".into()));
}

#[test]
fn a_wrong_type_names_what_was_expected_and_found() {
    let (mut doc, goal) = plan_with_goal();
    doc.put(&goal, "title", 42).unwrap();
    assert_eq!(
        check(&doc),
        Err("goals/0/title: expected text, found integer".into())
    );
    let mut doc = skeleton(DocumentKind::Plan);
    doc.put(ROOT, "goals", "not a list").unwrap();
    assert_eq!(
        check(&doc),
        Err("goals: expected list, found string".into())
    );
}

#[test]
fn a_missing_required_field_is_reported() {
    let (mut doc, goal) = plan_with_goal();
    doc.delete(&goal, "id").unwrap();
    assert_eq!(
        check(&doc),
        Err("goals/0/id: required field is missing".into())
    );
    doc.delete(ROOT, "goals").unwrap();
    assert_eq!(check(&doc), Err("goals: required field is missing".into()));
}

#[test]
fn an_oversized_text_is_refused() {
    let mut doc = skeleton(DocumentKind::Plan);
    let hulpvraag = doc.get(ROOT, "hulpvraag").unwrap().unwrap().1;
    doc.splice_text(&hulpvraag, 0, 0, &"x".repeat(20_001))
        .unwrap();
    assert_eq!(
        check(&doc),
        Err("hulpvraag: text of 20001 characters exceeds the limit of 20000".into())
    );
}

#[test]
fn a_text_is_measured_in_characters_whatever_their_bytes() {
    let mut doc = skeleton(DocumentKind::Plan);
    let hulpvraag = doc.get(ROOT, "hulpvraag").unwrap().unwrap().1;
    // 20,000 characters of two to four bytes each (and two UTF-16 units for the emoji).
    let at_limit = "é€🙂".repeat(6_666) + "ë€";
    assert_eq!(at_limit.chars().count(), 20_000);
    doc.splice_text(&hulpvraag, 0, 0, &at_limit).unwrap();
    assert_eq!(check(&doc), Ok(()));
    doc.splice_text(&hulpvraag, 0, 0, "🙂").unwrap();
    assert_eq!(
        check(&doc),
        Err("hulpvraag: text of 20001 characters exceeds the limit of 20000".into())
    );
}

#[test]
fn enum_values_and_partner_owners_are_checked() {
    let (mut doc, goal) = plan_with_goal();
    doc.put(&goal, "owner", "partner:ggd").unwrap();
    assert_eq!(check(&doc), Ok(()));
    doc.put(&goal, "owner", "partner:").unwrap();
    assert!(
        check(&doc)
            .unwrap_err()
            .contains("goals/0/owner: value not allowed")
    );
    doc.put(&goal, "owner", "the neighbour").unwrap();
    assert!(check(&doc).is_err());
}

#[test]
fn dates_must_be_calendar_dates() {
    let mut doc = skeleton(DocumentKind::Plan);
    let evals = doc.get(ROOT, "evaluations").unwrap().unwrap().1;
    let e = doc.insert_object(&evals, 0, ObjType::Map).unwrap();
    doc.put(&e, "id", "e1").unwrap();
    doc.put(&e, "date", "2026-13-01").unwrap();
    assert_eq!(
        check(&doc),
        Err("evaluations/0/date: value not allowed here (expected a date YYYY-MM-DD)".into())
    );
    doc.put(&e, "date", "2026-12-01").unwrap();
    assert_eq!(check(&doc), Ok(()));
}

#[test]
fn a_new_meta_document_is_valid_and_its_persons_read_back() {
    use crate::id::{DistrictId, PersonId, TeamId, UserId};
    let persons = vec![
        PersonRecord {
            id: PersonId::new("p1").unwrap(),
            name: "Sanne".into(),
            birth_date: Some("1985-04-02".into()),
            gezag: vec![],
        },
        PersonRecord {
            id: PersonId::new("p2").unwrap(),
            name: "Daan".into(),
            birth_date: Some("2014-09-30".into()),
            gezag: vec![PersonId::new("p1").unwrap()],
        },
    ];
    let meta = new_meta(
        &DistrictId::new("noord").unwrap(),
        &TeamId::new("t1").unwrap(),
        &[UserId::new("w1").unwrap()],
        &persons,
    );
    assert_eq!(validate(DocumentKind::Meta, &meta), Ok(()));
    assert_eq!(super::persons(&meta), persons);
    let view = new_view(&persons[1]);
    assert_eq!(validate(DocumentKind::View, &view), Ok(()));
}
