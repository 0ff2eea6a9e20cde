//! The view follows the record one way: entries about the person appear with kind and category,
//! edits and subject changes propagate, other members' entries and statements never appear, and
//! a batch re-projects only the entries it touched.

use automerge::{AutoCommit, ObjId, ObjType, ROOT, ReadDoc, transaction::Transactable};

use super::*;
use crate::document::{PersonRecord, new_view, skeleton};
use crate::id::DocumentKind;

const SENTINEL: &str = "SENTINEL-about-daan-only";

fn person(id: &str) -> PersonId {
    PersonId::new(id).unwrap()
}

fn add_entry(
    record: &mut AutoCommit,
    id: &str,
    subjects: &[&str],
    kind: &str,
    body: &str,
) -> ObjId {
    let entries = record.get(ROOT, "entries").unwrap().unwrap().1;
    let at = record.length(&entries);
    let e = record.insert_object(&entries, at, ObjType::Map).unwrap();
    record.put(&e, "id", id).unwrap();
    record.put(&e, "kind", kind).unwrap();
    record.put(&e, "category", "work_note").unwrap();
    let s = record.put_object(&e, "subjects", ObjType::List).unwrap();
    for (i, p) in subjects.iter().enumerate() {
        record.insert(&s, i, *p).unwrap();
    }
    let t = record.put_object(&e, "text", ObjType::Text).unwrap();
    record.splice_text(&t, 0, 0, body).unwrap();
    e
}

/// Applies the record's changes since `base` to the view as the server would.
fn project(
    record: &mut AutoCommit,
    base: &[automerge::ChangeHash],
    view: &mut AutoCommit,
    who: &str,
) -> usize {
    let changes = record.get_changes(base);
    let doc = record.document();
    let touched = touched_entries(doc, &crate::validation::touched_paths(doc, &changes));
    let (keep, changed) = view_update(record.document(), &person(who), Some(&touched));
    let n = changed.len();
    apply_to_view(view, &keep, &changed).unwrap();
    view.commit();
    n
}

fn view_for(who: &str) -> AutoCommit {
    new_view(&PersonRecord {
        id: person(who),
        name: who.into(),
        birth_date: None,
        gezag: vec![],
    })
}

fn view_ids(view: &AutoCommit) -> Vec<String> {
    let entries = view.get(ROOT, "entries").unwrap().unwrap().1;
    items(view, &entries)
        .iter()
        .filter_map(|e| text(view, e, "id"))
        .collect()
}

/// Every string any change of the view ever carried, plus its current content.
fn everything_in(view: &mut AutoCommit) -> String {
    let mut all = format!("{:?}", view.document().hydrate(None));
    for c in view.get_changes(&[]) {
        for op in c.decode().operations {
            if let automerge::legacy::OpType::Put(automerge::ScalarValue::Str(s)) = &op.action {
                all.push_str(s);
            }
        }
    }
    all
}

#[test]
fn a_person_sees_entries_about_them_and_never_one_about_another_member() {
    let mut record = skeleton(DocumentKind::Record);
    let base = record.get_heads();
    add_entry(
        &mut record,
        "e1",
        &["p-sanne"],
        "fact",
        "Sanne heeft schulden",
    );
    add_entry(
        &mut record,
        "e2",
        &["p-daan"],
        "opinion",
        &format!("Daan lijkt somber {SENTINEL}"),
    );
    add_entry(
        &mut record,
        "e3",
        &["p-sanne", "p-daan"],
        "opinion",
        "Gezin heeft steun nodig",
    );
    record.commit();
    let mut view = view_for("p-sanne");
    project(&mut record, &base, &mut view, "p-sanne");
    assert_eq!(view_ids(&view), ["e1", "e3"]);
    assert_eq!(crate::document::validate(DocumentKind::View, &view), Ok(()));
    assert!(!everything_in(&mut view).contains(SENTINEL));
    let entries = view.get(ROOT, "entries").unwrap().unwrap().1;
    let first = view.get(&entries, 0).unwrap().unwrap().1;
    assert_eq!(text(&view, &first, "kind").as_deref(), Some("fact"));
    assert_eq!(
        text(&view, &first, "text").as_deref(),
        Some("Sanne heeft schulden")
    );
}

#[test]
fn edits_and_subject_changes_reach_the_view() {
    let mut record = skeleton(DocumentKind::Record);
    let mut base = record.get_heads();
    let e1 = add_entry(&mut record, "e1", &["p-sanne"], "opinion", "Eerste indruk");
    record.commit();
    let mut view = view_for("p-sanne");
    project(&mut record, &base, &mut view, "p-sanne");

    base = record.get_heads();
    let t = record.get(&e1, "text").unwrap().unwrap().1;
    record.update_text(&t, "Bijgestelde indruk").unwrap();
    record.commit();
    project(&mut record, &base, &mut view, "p-sanne");
    let entries = view.get(ROOT, "entries").unwrap().unwrap().1;
    let first = view.get(&entries, 0).unwrap().unwrap().1;
    assert_eq!(
        text(&view, &first, "text").as_deref(),
        Some("Bijgestelde indruk")
    );

    base = record.get_heads();
    let subjects = record.put_object(&e1, "subjects", ObjType::List).unwrap();
    record.insert(&subjects, 0, "p-daan").unwrap();
    record.commit();
    project(&mut record, &base, &mut view, "p-sanne");
    assert!(
        view_ids(&view).is_empty(),
        "no longer about Sanne: gone from her view"
    );
}

#[test]
fn only_the_persons_own_statements_appear() {
    let mut record = skeleton(DocumentKind::Record);
    let base = record.get_heads();
    add_entry(
        &mut record,
        "e1",
        &["p-sanne", "p-daan"],
        "opinion",
        "Spanningen thuis",
    );
    let statements = record.get(ROOT, "statements").unwrap().unwrap().1;
    for (i, (who, said)) in [("p-sanne", "Dat klopt niet"), ("p-daan", "Ik ben het eens")]
        .iter()
        .enumerate()
    {
        let s = record.insert_object(&statements, i, ObjType::Map).unwrap();
        record.put(&s, "id", format!("s{i}")).unwrap();
        record.put(&s, "entry", "e1").unwrap();
        record.put(&s, "person", *who).unwrap();
        record.put(&s, "text", *said).unwrap();
    }
    record.commit();
    let mut view = view_for("p-sanne");
    project(&mut record, &base, &mut view, "p-sanne");
    let entries = view.get(ROOT, "entries").unwrap().unwrap().1;
    let first = view.get(&entries, 0).unwrap().unwrap().1;
    assert_eq!(strings(&view, &first, "statements"), ["Dat klopt niet"]);
    assert!(!everything_in(&mut view).contains("Ik ben het eens"));
}

#[test]
fn a_batch_reprojects_only_the_entries_it_touched() {
    let mut record = skeleton(DocumentKind::Record);
    let mut base = record.get_heads();
    for i in 0..50 {
        add_entry(&mut record, &format!("e{i}"), &["p-sanne"], "fact", "tekst");
    }
    record.commit();
    let mut view = view_for("p-sanne");
    assert_eq!(project(&mut record, &base, &mut view, "p-sanne"), 50);
    base = record.get_heads();
    let entries = record.get(ROOT, "entries").unwrap().unwrap().1;
    let e7 = record.get(&entries, 7).unwrap().unwrap().1;
    record.put(&e7, "kind", "opinion").unwrap();
    record.commit();
    assert_eq!(project(&mut record, &base, &mut view, "p-sanne"), 1);
    assert_eq!(view_ids(&view).len(), 50);
}

#[test]
fn a_view_that_would_lose_an_entry_or_characters_is_rebuilt_without_that_history() {
    let person = PersonId::new("p-sanne").unwrap();
    let mut record = automerge::AutoCommit::new();
    let entries = record.put_object(ROOT, "entries", ObjType::List).unwrap();
    let e = record.insert_object(&entries, 0, ObjType::Map).unwrap();
    record.put(&e, "id", "e1").unwrap();
    record.put(&e, "kind", "fact").unwrap();
    record.put(&e, "category", "analysis").unwrap();
    let s = record.put_object(&e, "subjects", ObjType::List).unwrap();
    record.insert(&s, 0, "p-sanne").unwrap();
    record.put(&e, "text", "Sanne heeft schulden").unwrap();
    record.commit();
    let rec = record.document().clone();
    let mut view = crate::document::new_view(&crate::document::PersonRecord {
        id: person.clone(),
        name: "Sanne".into(),
        birth_date: None,
        gezag: Vec::new(),
    });
    let (keep, changed) = view_update(&rec, &person, None);
    assert!(
        !loses_content(&view, &keep, &changed),
        "adding loses nothing"
    );
    apply_to_view(&mut view, &keep, &changed).unwrap();
    view.commit();

    let mut longer = changed.clone();
    longer[0].text = "Sanne heeft hoge schulden".into();
    assert!(
        !loses_content(&view, &keep, &longer),
        "inserting loses nothing"
    );
    let mut shorter = changed.clone();
    shorter[0].text = "Sanne heeft".into();
    assert!(loses_content(&view, &keep, &shorter));
    assert!(loses_content(&view, &[], &[]), "the entry leaves the view");

    // The entry moves to Daan: the rebuilt view has no trace of it, in history either.
    record.put(&s, 0, "p-daan").unwrap();
    record.commit();
    let fresh = rebuild(&view, record.document(), &person);
    let all: Vec<u8> = fresh.clone().save_nocompress();
    assert!(!String::from_utf8_lossy(&all).contains("schulden"));
    assert_eq!(
        crate::document::read::text(
            &fresh,
            &crate::document::read::map(&fresh, &ROOT, "person").unwrap(),
            "name"
        )
        .as_deref(),
        Some("Sanne")
    );
}
