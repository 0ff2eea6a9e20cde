//! What a granted erasure (R21) or rectification (R20) changes in a document, and the copy of a
//! document's current state without its history. Automerge keeps every deleted or overwritten
//! value in its change history, so editing a document cannot take a person's data out of it:
//! the server makes these edits on a fork, copies the result into a fresh document with
//! [`without_history`] and replaces the old one under a new id (the old changes destroyed).
//! Which items are a person's: the record entries about them alone (an entry about others too
//! keeps its text for their sake — another person's interest, art. 17(3) — and only loses the
//! person as a subject), their eigen verklaringen, and the supporting facts a maatwerk request
//! copied from those entries. Consents, triage records and weighings stay: they are the
//! municipality's account of what it shared and why (art. 5(2)), ids without the erased text.

use std::collections::BTreeSet;

use automerge::transaction::Transactable;
use automerge::{AutoCommit, AutomergeError, ObjId, ObjType, ROOT, ReadDoc, Value};

use super::read::{items, list, map, strings, text};
use crate::id::{DocumentKind, PersonId};

/// A copy of the current state of `doc` in a new document with one change and no history: no
/// deleted or overwritten value of `doc` is in it.
pub fn without_history(doc: &impl ReadDoc) -> AutoCommit {
    let mut fresh = AutoCommit::new();
    // Copying values read from a valid document into a fresh one cannot fail.
    let _ = copy_map(doc, &ROOT, &mut fresh, &ROOT);
    fresh.commit();
    fresh
}

/// Where a copied value goes: a key of a map, or a position in a list.
enum Target<'a> {
    Key(&'a ObjId, &'a str),
    Index(&'a ObjId, usize),
}

fn copy_value(
    doc: &impl ReadDoc,
    value: Value<'_>,
    id: &ObjId,
    out: &mut AutoCommit,
    target: Target<'_>,
) -> Result<(), AutomergeError> {
    match value {
        Value::Scalar(s) => {
            let s = s.into_owned();
            match target {
                Target::Key(obj, key) => out.put(obj, key, s)?,
                Target::Index(obj, i) => out.insert(obj, i, s)?,
            }
        }
        Value::Object(kind) => {
            let obj = match target {
                Target::Key(parent, key) => out.put_object(parent, key, kind)?,
                Target::Index(parent, i) => out.insert_object(parent, i, kind)?,
            };
            match kind {
                ObjType::Map | ObjType::Table => copy_map(doc, id, out, &obj)?,
                ObjType::List => {
                    for i in 0..doc.length(id) {
                        if let Some((v, child)) = doc.get(id, i)? {
                            copy_value(doc, v, &child, out, Target::Index(&obj, i))?;
                        }
                    }
                }
                ObjType::Text => out.splice_text(&obj, 0, 0, &doc.text(id)?)?,
            }
        }
    }
    Ok(())
}

fn copy_map(
    doc: &impl ReadDoc,
    from: &ObjId,
    out: &mut AutoCommit,
    to: &ObjId,
) -> Result<(), AutomergeError> {
    for key in doc.keys(from).collect::<Vec<_>>() {
        if let Some((v, child)) = doc.get(from, key.as_str())? {
            copy_value(doc, v, &child, out, Target::Key(to, &key))?;
        }
    }
    Ok(())
}

/// The ids of the record entries whose only subject is `person`: what erasing the person's
/// items deletes whole.
pub fn entries_only_about(record: &impl ReadDoc, person: &PersonId) -> BTreeSet<String> {
    let Some(entries) = list(record, &ROOT, "entries") else {
        return BTreeSet::new();
    };
    items(record, &entries)
        .iter()
        .filter(|e| strings(record, e, "subjects") == [person.as_str()])
        .filter_map(|e| text(record, e, "id"))
        .collect()
}

/// Deletes `person`'s items from a document of `kind` (see the module's words): `erased` are
/// the record entries about them alone ([`entries_only_about`] before the edit). Returns how
/// many items went or changed; zero means the document holds nothing of them.
pub fn erase_person<D: Transactable + ReadDoc>(
    doc: &mut D,
    kind: DocumentKind,
    person: &PersonId,
    erased: &BTreeSet<String>,
) -> Result<usize, AutomergeError> {
    let mut changed = 0;
    match kind {
        DocumentKind::Record => {
            if let Some(entries) = list(doc, &ROOT, "entries") {
                for (i, e) in items(doc, &entries).into_iter().enumerate().rev() {
                    let subjects = strings(doc, &e, "subjects");
                    if text(doc, &e, "id").is_some_and(|id| erased.contains(&id)) {
                        doc.delete(&entries, i)?;
                        changed += 1;
                    } else if subjects.iter().any(|s| s == person.as_str()) {
                        let l = doc.put_object(&e, "subjects", ObjType::List)?;
                        for (j, s) in subjects
                            .iter()
                            .filter(|s| *s != person.as_str())
                            .enumerate()
                        {
                            doc.insert(&l, j, s.as_str())?;
                        }
                        changed += 1;
                    }
                }
            }
            if let Some(statements) = list(doc, &ROOT, "statements") {
                for (i, s) in items(doc, &statements).into_iter().enumerate().rev() {
                    let theirs = text(doc, &s, "person").as_deref() == Some(person.as_str());
                    let on_erased = text(doc, &s, "entry").is_some_and(|e| erased.contains(&e));
                    if theirs || on_erased {
                        doc.delete(&statements, i)?;
                        changed += 1;
                    }
                }
            }
        }
        DocumentKind::Maatwerk => {
            changed += edit_supporting_facts(doc, |entry| erased.contains(entry).then_some(None))?;
        }
        _ => {}
    }
    Ok(changed)
}

/// Replaces the text of each corrected fact (entry id, corrected text) in a document of
/// `kind`: the record entry itself, or the supporting fact a maatwerk request copied from it.
/// Returns how many texts changed.
pub fn rectify<D: Transactable + ReadDoc>(
    doc: &mut D,
    kind: DocumentKind,
    corrections: &[(String, String)],
) -> Result<usize, AutomergeError> {
    let corrected = |id: &str| {
        corrections
            .iter()
            .find(|(e, _)| e == id)
            .map(|(_, t)| t.clone())
    };
    match kind {
        DocumentKind::Record => {
            let Some(entries) = list(doc, &ROOT, "entries") else {
                return Ok(0);
            };
            let mut changed = 0;
            for e in items(doc, &entries) {
                let Some(new) = text(doc, &e, "id").and_then(|id| corrected(&id)) else {
                    continue;
                };
                if text(doc, &e, "text").as_deref() != Some(new.as_str()) {
                    let t = doc.put_object(&e, "text", ObjType::Text)?;
                    doc.splice_text(&t, 0, 0, &new)?;
                    changed += 1;
                }
            }
            Ok(changed)
        }
        DocumentKind::Maatwerk => edit_supporting_facts(doc, |entry| corrected(entry).map(Some)),
        _ => Ok(0),
    }
}

/// Walks `request.supporting_facts` of a maatwerk document: `what(entry)` answers `None` to
/// leave a fact, `Some(None)` to delete it, `Some(Some(text))` to give it this text.
fn edit_supporting_facts<D: Transactable + ReadDoc>(
    doc: &mut D,
    what: impl Fn(&str) -> Option<Option<String>>,
) -> Result<usize, AutomergeError> {
    let Some(facts) = map(doc, &ROOT, "request").and_then(|r| list(doc, &r, "supporting_facts"))
    else {
        return Ok(0);
    };
    let mut changed = 0;
    for (i, f) in items(doc, &facts).into_iter().enumerate().rev() {
        let Some(entry) = text(doc, &f, "entry") else {
            continue;
        };
        match what(&entry) {
            None => {}
            Some(None) => {
                doc.delete(&facts, i)?;
                changed += 1;
            }
            Some(Some(new)) if text(doc, &f, "text").as_deref() != Some(new.as_str()) => {
                let t = doc.put_object(&f, "text", ObjType::Text)?;
                doc.splice_text(&t, 0, 0, &new)?;
                changed += 1;
            }
            Some(Some(_)) => {}
        }
    }
    Ok(changed)
}

/// The kind (`fact` or `opinion`) of record entry `id`, if it exists (R14: only facts are
/// rectified; an opinion keeps the resident's eigen verklaring with it).
pub fn entry_kind(record: &impl ReadDoc, id: &str) -> Option<String> {
    let entries = list(record, &ROOT, "entries")?;
    items(record, &entries)
        .into_iter()
        .find(|e| text(record, e, "id").as_deref() == Some(id))
        .and_then(|e| text(record, &e, "kind"))
}

/// Whether record entry `id` has `person` among its subjects.
pub fn entry_concerns(record: &impl ReadDoc, id: &str, person: &PersonId) -> bool {
    list(record, &ROOT, "entries").is_some_and(|entries| {
        items(record, &entries).into_iter().any(|e| {
            text(record, &e, "id").as_deref() == Some(id)
                && strings(record, &e, "subjects")
                    .iter()
                    .any(|s| s == person.as_str())
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::skeleton;

    fn entry(doc: &mut AutoCommit, id: &str, subjects: &[&str], body: &str) {
        let entries = list(doc, &ROOT, "entries").unwrap();
        let at = doc.length(&entries);
        let e = doc.insert_object(&entries, at, ObjType::Map).unwrap();
        doc.put(&e, "id", id).unwrap();
        doc.put(&e, "kind", "fact").unwrap();
        doc.put(&e, "category", "analysis").unwrap();
        let s = doc.put_object(&e, "subjects", ObjType::List).unwrap();
        for (i, p) in subjects.iter().enumerate() {
            doc.insert(&s, i, *p).unwrap();
        }
        let t = doc.put_object(&e, "text", ObjType::Text).unwrap();
        doc.splice_text(&t, 0, 0, body).unwrap();
    }

    fn holds(doc: &mut AutoCommit, needle: &str) -> bool {
        String::from_utf8_lossy(&doc.save_nocompress()).contains(needle)
    }

    #[test]
    fn erasing_a_person_leaves_no_byte_of_their_entries_in_the_copy_and_keeps_the_others() {
        let mut record = skeleton(DocumentKind::Record);
        entry(&mut record, "e1", &["p-a"], "GEHEIM-A-alleen");
        entry(&mut record, "e2", &["p-a", "p-b"], "samen-met-B");
        entry(&mut record, "e3", &["p-b"], "alleen-B");
        let person = PersonId::new("p-a").unwrap();
        let erased = entries_only_about(&record, &person);
        assert_eq!(erased, BTreeSet::from(["e1".to_owned()]));
        let mut fork = record.fork();
        assert_eq!(
            erase_person(&mut fork, DocumentKind::Record, &person, &erased).unwrap(),
            2
        );
        assert!(
            holds(&mut fork, "GEHEIM-A-alleen"),
            "history keeps it: why a copy is needed"
        );
        let mut fresh = without_history(&fork);
        assert!(!holds(&mut fresh, "GEHEIM-A-alleen"));
        assert!(crate::document::validate(DocumentKind::Record, &fresh).is_ok());
        assert!(
            !entry_concerns(&fresh, "e2", &person),
            "nothing is about them any more"
        );
        assert!(holds(&mut fresh, "samen-met-B") && holds(&mut fresh, "alleen-B"));
    }

    #[test]
    fn a_rectified_fact_keeps_only_its_corrected_text_in_the_copy() {
        let mut record = skeleton(DocumentKind::Record);
        entry(&mut record, "e1", &["p-a"], "ONJUIST-oud");
        let mut fork = record.fork();
        let fixes = [("e1".to_owned(), "juist-nieuw".to_owned())];
        assert_eq!(rectify(&mut fork, DocumentKind::Record, &fixes).unwrap(), 1);
        let mut fresh = without_history(&fork);
        assert!(!holds(&mut fresh, "ONJUIST"));
        assert!(holds(&mut fresh, "juist-nieuw"));
        assert_eq!(entry_kind(&fresh, "e1").as_deref(), Some("fact"));
    }
}
