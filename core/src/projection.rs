//! The resident's view (R7, R4; I1): `view/<person>` is written by the server only, one way, from
//! `record`: the entries whose `subjects` include that person — facts and opinions marked as
//! such, work notes included — with that person's own eigen verklaringen, and nothing about other
//! household members. It is kept up to date incrementally: the operations of each accepted
//! batch name the entries they touched, and only those are projected again.

use std::collections::BTreeSet;

use automerge::transaction::Transactable;
use automerge::{Automerge, ObjType, ROOT, ReadDoc};
use serde::Serialize;

use crate::document::read::{items, list, strings, text};
use crate::id::PersonId;
use crate::path::Segment;

/// One entry as its subject sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ViewEntry {
    /// The record entry's id.
    pub id: String,
    /// `fact` or `opinion` (R14).
    pub kind: String,
    /// `analysis`, `conversation` or `work_note`.
    pub category: String,
    /// The text.
    pub text: String,
    /// When it was recorded.
    pub at: Option<String>,
    /// The person's own statements (eigen verklaringen) on this entry (R20).
    pub statements: Vec<String>,
}

/// The ids of the record entries whose subjects include `person`, in record order.
pub fn entries_concerning(record: &impl ReadDoc, person: &PersonId) -> Vec<String> {
    let Some(entries) = list(record, &ROOT, "entries") else {
        return Vec::new();
    };
    items(record, &entries)
        .iter()
        .filter(|e| {
            strings(record, e, "subjects")
                .iter()
                .any(|s| s == person.as_str())
        })
        .filter_map(|e| text(record, e, "id"))
        .collect()
}

/// Entry `id` as `person` sees it, or `None` when it does not concern them (or no longer exists).
pub fn view_entry(record: &impl ReadDoc, id: &str, person: &PersonId) -> Option<ViewEntry> {
    let entries = list(record, &ROOT, "entries")?;
    let entry = items(record, &entries)
        .into_iter()
        .find(|e| text(record, e, "id").as_deref() == Some(id))?;
    if !strings(record, &entry, "subjects")
        .iter()
        .any(|s| s == person.as_str())
    {
        return None;
    }
    let statements = list(record, &ROOT, "statements")
        .map(|l| {
            items(record, &l)
                .iter()
                // Only the person's own statements: another member's statement is their data.
                .filter(|s| {
                    text(record, s, "entry").as_deref() == Some(id)
                        && text(record, s, "person").as_deref() == Some(person.as_str())
                })
                .filter_map(|s| text(record, s, "text"))
                .collect()
        })
        .unwrap_or_default();
    Some(ViewEntry {
        id: id.to_owned(),
        kind: text(record, &entry, "kind")?,
        category: text(record, &entry, "category")?,
        text: text(record, &entry, "text").unwrap_or_default(),
        at: text(record, &entry, "at"),
        statements,
    })
}

/// The entries a batch touched (its `touched` paths, located in `record` with the batch merged):
/// entries written inside, and entries that a touched statement refers to.
pub fn touched_entries(record: &Automerge, touched: &crate::path::Touched) -> BTreeSet<String> {
    let mut entries = BTreeSet::new();
    for path in touched {
        let (Some(Segment::Key(top)), Some(Segment::Index(i))) = (path.0.first(), path.0.get(1))
        else {
            continue;
        };
        let Some(l) = list(record, &ROOT, top) else {
            continue;
        };
        let Some((_, item)) = record.get(&l, *i).ok().flatten() else {
            continue;
        };
        let id = match top.as_str() {
            "entries" => text(record, &item, "id"),
            "statements" => text(record, &item, "entry"),
            _ => None,
        };
        entries.extend(id);
    }
    entries
}

/// The subjects of each record entry a batch wrote inside (its `touched` paths under
/// `entries`, located in `record` with the batch merged), with the path that reached it. Ids
/// that do not parse are left out: the schema check refuses them.
pub fn touched_entry_subjects(
    record: &Automerge,
    touched: &crate::path::Touched,
) -> Vec<(crate::path::Path, Vec<PersonId>)> {
    let Some(l) = list(record, &ROOT, "entries") else {
        return Vec::new();
    };
    touched
        .iter()
        .filter_map(|path| {
            let (Some(Segment::Key(top)), Some(Segment::Index(i))) =
                (path.0.first(), path.0.get(1))
            else {
                return None;
            };
            if top != "entries" {
                return None;
            }
            let (_, item) = record.get(&l, *i).ok().flatten()?;
            let subjects = strings(record, &item, "subjects")
                .into_iter()
                .filter_map(|s| PersonId::new(s).ok())
                .collect();
            Some((path.clone(), subjects))
        })
        .collect()
}

/// Brings a view document in line with the record: removes entries not in `keep` (in record
/// order) and writes `changed` ones, touching only what differs.
pub fn apply_to_view<D: Transactable + ReadDoc>(
    view: &mut D,
    keep: &[String],
    changed: &[ViewEntry],
) -> Result<(), automerge::AutomergeError> {
    let entries = match list(view, &ROOT, "entries") {
        Some(l) => l,
        None => view.put_object(ROOT, "entries", ObjType::List)?,
    };
    // Remove what no longer concerns the person, from the back so indices stay valid.
    for i in (0..view.length(&entries)).rev() {
        let Some((_, item)) = view.get(&entries, i)? else {
            continue;
        };
        if !text(view, &item, "id").is_some_and(|id| keep.contains(&id)) {
            view.delete(&entries, i)?;
        }
    }
    for entry in changed {
        let existing = items(view, &entries)
            .into_iter()
            .find(|e| text(view, e, "id").as_deref() == Some(entry.id.as_str()));
        let obj = match existing {
            Some(obj) => obj,
            None => {
                let at = view.length(&entries);
                let obj = view.insert_object(&entries, at, ObjType::Map)?;
                view.put(&obj, "id", entry.id.as_str())?;
                obj
            }
        };
        for (key, value) in [("kind", &entry.kind), ("category", &entry.category)] {
            if text(view, &obj, key).as_deref() != Some(value.as_str()) {
                view.put(&obj, key, value.as_str())?;
            }
        }
        match text(view, &obj, "text") {
            Some(current) if current == entry.text => {}
            Some(_) => {
                let t = view.get(&obj, "text")?.expect("present").1;
                view.update_text(&t, &entry.text)?;
            }
            None => {
                let t = view.put_object(&obj, "text", ObjType::Text)?;
                view.splice_text(&t, 0, 0, &entry.text)?;
            }
        }
        if let Some(at) = &entry.at
            && text(view, &obj, "at").as_deref() != Some(at.as_str())
        {
            view.put(&obj, "at", at.as_str())?;
        }
        if strings(view, &obj, "statements") != entry.statements {
            let l = view.put_object(&obj, "statements", ObjType::List)?;
            for (i, s) in entry.statements.iter().enumerate() {
                view.insert(&l, i, s.as_str())?;
            }
        }
    }
    Ok(())
}

/// Whether bringing `view` in line would take anything away from it: an entry leaving the view,
/// characters removed from an entry's text, or statements dropped. An Automerge document keeps
/// what was deleted in its history, so such a view must be rebuilt from scratch and replaced,
/// or a device syncing it later would still receive what no longer concerns its resident (I1).
pub fn loses_content(view: &impl ReadDoc, keep: &[String], changed: &[ViewEntry]) -> bool {
    let Some(entries) = list(view, &ROOT, "entries") else {
        return false;
    };
    items(view, &entries).iter().any(|e| {
        let Some(id) = text(view, e, "id") else {
            return false;
        };
        if !keep.contains(&id) {
            return true;
        }
        changed.iter().find(|c| c.id == id).is_some_and(|c| {
            let old = text(view, e, "text").unwrap_or_default();
            let statements = strings(view, e, "statements");
            !is_subsequence(&old, &c.text) || !c.statements.starts_with(&statements)
        })
    })
}

/// Whether every character of `old` appears in `new` in order (`new` only inserted).
fn is_subsequence(old: &str, new: &str) -> bool {
    let mut rest = new.chars();
    old.chars().all(|c| rest.any(|n| n == c))
}

/// A fresh view, with no history, holding the person data of `view` and the entries of
/// `record` that concern `person` now.
pub fn rebuild(
    view: &impl ReadDoc,
    record: &Automerge,
    person: &PersonId,
) -> automerge::AutoCommit {
    let own = crate::document::PersonRecord {
        id: person.clone(),
        name: crate::document::read::map(view, &ROOT, "person")
            .and_then(|p| text(view, &p, "name"))
            .unwrap_or_default(),
        birth_date: crate::document::read::map(view, &ROOT, "person")
            .and_then(|p| text(view, &p, "birth_date")),
        gezag: Vec::new(),
    };
    let mut fresh = crate::document::new_view(&own);
    let (keep, changed) = view_update(record, person, None);
    // Writing into a fresh document cannot fail.
    let _ = apply_to_view(&mut fresh, &keep, &changed);
    fresh.commit();
    fresh
}

/// What a view needs after `changes` were merged into `record`: which entries to keep and the
/// touched ones, projected. `None` for `changes` projects every entry (a new view).
pub fn view_update(
    record: &Automerge,
    person: &PersonId,
    touched: Option<&BTreeSet<String>>,
) -> (Vec<String>, Vec<ViewEntry>) {
    let keep = entries_concerning(record, person);
    let ids: Vec<String> = match touched {
        Some(touched) => touched.iter().cloned().collect(),
        None => keep.clone(),
    };
    let changed = ids
        .iter()
        .filter_map(|id| view_entry(record, id, person))
        .collect();
    (keep, changed)
}

#[cfg(test)]
mod tests;
