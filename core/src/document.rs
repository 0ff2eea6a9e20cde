//! The dossier documents of SPEC §2 as Automerge documents: the schema of each kind, the
//! skeleton the server creates them with, and [`validate`], which the server runs on a fork
//! after applying incoming changes and before merging them (I2). Strings may arrive as scalar
//! strings or as Automerge `Text` objects (automerge-js 3 writes `Text` by default); both are
//! accepted wherever the schema says "text".

pub mod compose;
pub(crate) mod read;
pub mod rewrite;
mod schema;

use automerge::{
    AutoCommit, ObjType, ROOT, ReadDoc, ScalarValue, Value, transaction::Transactable,
};
use serde::Serialize;

use crate::id::DocumentKind;
use crate::path::{Path, Segment};
use read::text_of;
pub use schema::{Field, Shape};

/// Why a document does not match its kind's schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct SchemaError {
    /// Where.
    #[serde(serialize_with = "serialize_display")]
    pub path: Path,
    /// What is wrong.
    pub problem: Problem,
}

fn serialize_display<S: serde::Serializer>(p: &Path, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(p)
}

/// The kind of schema violation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(rename_all = "snake_case", tag = "problem")]
pub enum Problem {
    /// A map key the schema does not know.
    #[error("unknown key")]
    UnknownKey,
    /// A required field is absent.
    #[error("required field is missing")]
    Missing,
    /// The value has another type than the schema says.
    #[error("expected {expected}, found {found}")]
    WrongType {
        /// What the schema wants.
        expected: &'static str,
        /// What the document holds.
        found: &'static str,
    },
    /// A text is longer than allowed.
    #[error("text of {len} characters exceeds the limit of {max}")]
    TooLong {
        /// The limit.
        max: usize,
        /// The actual length.
        len: usize,
    },
    /// A list holds more items than allowed.
    #[error("list of {len} items exceeds the limit of {max}")]
    TooMany {
        /// The limit.
        max: usize,
        /// The actual length.
        len: usize,
    },
    /// A value outside its allowed set or format.
    #[error("value not allowed here (expected {expected})")]
    NotAllowed {
        /// A description of what is allowed.
        expected: &'static str,
    },
}

/// The schema of a document kind.
pub fn schema(kind: DocumentKind) -> &'static [Field] {
    match kind {
        DocumentKind::Plan => schema::PLAN,
        DocumentKind::Record => schema::RECORD,
        DocumentKind::View => schema::VIEW,
        DocumentKind::Maatwerk => schema::MAATWERK,
        DocumentKind::Partner => schema::PARTNER,
        DocumentKind::Meta => schema::META,
    }
}

/// A new document of `kind` holding every required root field, empty. The server creates each
/// document this way so that clients never race to create the same root object.
pub fn skeleton(kind: DocumentKind) -> AutoCommit {
    let mut doc = AutoCommit::new();
    for field in schema(kind).iter().filter(|f| f.required) {
        // Writing the empty value of a fresh document cannot fail.
        let _ = match field.shape {
            Shape::Map(_) => doc.put_object(ROOT, field.name, ObjType::Map).map(drop),
            Shape::List(..) => doc.put_object(ROOT, field.name, ObjType::List).map(drop),
            Shape::Text { .. } => doc.put_object(ROOT, field.name, ObjType::Text).map(drop),
            Shape::Bool => doc.put(ROOT, field.name, false),
            Shape::Int => doc.put(ROOT, field.name, 0),
            Shape::Enum(values) => doc.put(ROOT, field.name, values[0]),
            Shape::Date | Shape::Timestamp => doc.put(ROOT, field.name, ""),
        };
    }
    doc.commit();
    doc
}

/// Checks the whole current state of `doc` against the schema of `kind`.
pub fn validate(kind: DocumentKind, doc: &impl ReadDoc) -> Result<(), SchemaError> {
    check_map(doc, &ROOT, schema(kind), &Path::root())
}

/// Checks what a batch touched, given that the document was valid before it: the root's keys
/// and required fields, the length of every list on the way to a touched path, the whole item
/// of a list the path goes into, and otherwise the whole value at the path. A path that ends at
/// a list (a scalar inserted into it, an element deleted) checks the whole list.
pub fn validate_paths<'a>(
    kind: DocumentKind,
    doc: &impl ReadDoc,
    touched: impl IntoIterator<Item = &'a Path>,
) -> Result<(), SchemaError> {
    let fields = schema(kind);
    let root = Path::root();
    let mut present = Vec::with_capacity(fields.len());
    for key in doc.keys(ROOT) {
        let Some(field) = fields.iter().find(|f| f.name == key) else {
            return Err(err(&root.child(Segment::Key(key)), Problem::UnknownKey));
        };
        present.push(field.name);
    }
    for field in fields.iter().filter(|f| f.required) {
        if !present.contains(&field.name) {
            return Err(err(
                &root.child(Segment::Key(field.name.into())),
                Problem::Missing,
            ));
        }
    }
    let shape = Shape::Map(fields);
    for path in touched {
        check_path(doc, &ROOT, &shape, &path.0, &root)?;
    }
    Ok(())
}

/// `obj`, at `here` and of `shape`, lies on the way to the rest of a touched path.
fn check_path(
    doc: &impl ReadDoc,
    obj: &automerge::ObjId,
    shape: &Shape,
    rest: &[Segment],
    here: &Path,
) -> Result<(), SchemaError> {
    let whole = || match doc.object_type(obj) {
        Ok(t) => check_value(doc, Value::Object(t), obj, shape, here),
        Err(_) => Ok(()),
    };
    let Some((seg, tail)) = rest.split_first() else {
        return whole();
    };
    let child = here.child(seg.clone());
    let (value, id, child_shape) = match (shape, seg) {
        (Shape::Map(fields), Segment::Key(k)) => {
            let Some(field) = fields.iter().find(|f| f.name == k.as_str()) else {
                return Err(err(&child, Problem::UnknownKey));
            };
            match doc.get(obj, k.as_str()) {
                Ok(Some((v, id))) => (v, id, &field.shape),
                _ if field.required => return Err(err(&child, Problem::Missing)),
                _ => return Ok(()),
            }
        }
        (Shape::List(item, max), Segment::Index(i)) => {
            let len = doc.length(obj);
            if len > *max {
                return Err(err(here, Problem::TooMany { max: *max, len }));
            }
            return match doc.get(obj, *i) {
                Ok(Some((v, id))) => check_value(doc, v, &id, item, &child),
                _ => Ok(()),
            };
        }
        _ => return whole(),
    };
    match (&value, child_shape, tail.is_empty()) {
        (Value::Object(ObjType::Map), Shape::Map(_), false)
        | (Value::Object(ObjType::List), Shape::List(..), false) => {
            check_path(doc, &id, child_shape, tail, &child)
        }
        _ => check_value(doc, value, &id, child_shape, &child),
    }
}

fn err(path: &Path, problem: Problem) -> SchemaError {
    SchemaError {
        path: path.clone(),
        problem,
    }
}

fn check_map(
    doc: &impl ReadDoc,
    obj: &automerge::ObjId,
    fields: &'static [Field],
    path: &Path,
) -> Result<(), SchemaError> {
    // One pass over the map's entries: in automerge 0.12 each `get` seeks the key again.
    let mut present = Vec::with_capacity(fields.len());
    for item in doc.map_range(obj, ..) {
        let here = path.child(Segment::Key(item.key.to_string()));
        let Some(field) = fields.iter().find(|f| f.name == item.key) else {
            return Err(err(&here, Problem::UnknownKey));
        };
        let id = item.id();
        check_value(doc, item.value.into_value(), &id, &field.shape, &here)?;
        present.push(field.name);
    }
    for field in fields.iter().filter(|f| f.required) {
        if !present.contains(&field.name) {
            return Err(err(
                &path.child(Segment::Key(field.name.into())),
                Problem::Missing,
            ));
        }
    }
    Ok(())
}

fn type_name(value: &Value<'_>) -> &'static str {
    match value {
        Value::Object(ObjType::Map | ObjType::Table) => "map",
        Value::Object(ObjType::List) => "list",
        Value::Object(ObjType::Text) => "text",
        Value::Scalar(s) => match s.as_ref() {
            ScalarValue::Str(_) => "string",
            ScalarValue::Boolean(_) => "boolean",
            ScalarValue::Int(_) | ScalarValue::Uint(_) => "integer",
            ScalarValue::F64(_) => "float",
            ScalarValue::Counter(_) => "counter",
            ScalarValue::Timestamp(_) => "timestamp",
            ScalarValue::Null => "null",
            ScalarValue::Bytes(_) => "bytes",
            _ => "unknown",
        },
    }
}

fn check_value(
    doc: &impl ReadDoc,
    value: Value<'_>,
    id: &automerge::ObjId,
    shape: &Shape,
    path: &Path,
) -> Result<(), SchemaError> {
    let wrong = |expected| {
        err(
            path,
            Problem::WrongType {
                expected,
                found: type_name(&value),
            },
        )
    };
    match shape {
        Shape::Map(fields) => match value {
            Value::Object(ObjType::Map) => check_map(doc, id, fields, path),
            _ => Err(wrong("map")),
        },
        Shape::List(item, max) => {
            if !matches!(value, Value::Object(ObjType::List)) {
                return Err(wrong("list"));
            }
            let len = doc.length(id);
            if len > *max {
                return Err(err(path, Problem::TooMany { max: *max, len }));
            }
            // One pass over the items, not a seek per index.
            for entry in doc.list_range(id, ..) {
                let here = path.child(Segment::Index(entry.index));
                let id = entry.id();
                check_value(doc, entry.value.into_value(), &id, item, &here)?;
            }
            Ok(())
        }
        Shape::Text { max } => {
            // A text object's length in the document's text units (code points, UTF-16 or UTF-8
            // units) is never below its count of characters: within the limit, it is settled
            // without reading the whole text out of the document.
            if matches!(value, Value::Object(ObjType::Text)) && doc.length(id) <= *max {
                return Ok(());
            }
            let text = text_of(doc, &value, id).ok_or_else(|| wrong("text"))?;
            let len = text.chars().count();
            if len > *max {
                return Err(err(path, Problem::TooLong { max: *max, len }));
            }
            Ok(())
        }
        Shape::Enum(allowed) => {
            let text = text_of(doc, &value, id).ok_or_else(|| wrong("text"))?;
            if allowed.iter().any(|a| *a == text && !a.ends_with(':'))
                || allowed_prefix(allowed, &text)
            {
                Ok(())
            } else {
                Err(err(
                    path,
                    Problem::NotAllowed {
                        expected: "one of the listed values",
                    },
                ))
            }
        }
        Shape::Date | Shape::Timestamp => {
            let text = text_of(doc, &value, id).ok_or_else(|| wrong("text"))?;
            let ok = text.is_empty()
                || match shape {
                    Shape::Date => time::Date::parse(&text, DATE).is_ok(),
                    _ => time::OffsetDateTime::parse(
                        &text,
                        &time::format_description::well_known::Rfc3339,
                    )
                    .is_ok(),
                };
            if ok {
                Ok(())
            } else if matches!(shape, Shape::Date) {
                Err(err(
                    path,
                    Problem::NotAllowed {
                        expected: "a date YYYY-MM-DD",
                    },
                ))
            } else {
                Err(err(
                    path,
                    Problem::NotAllowed {
                        expected: "an RFC 3339 timestamp",
                    },
                ))
            }
        }
        Shape::Bool => match &value {
            Value::Scalar(s) if matches!(s.as_ref(), ScalarValue::Boolean(_)) => Ok(()),
            _ => Err(wrong("boolean")),
        },
        Shape::Int => match &value {
            Value::Scalar(s)
                if matches!(s.as_ref(), ScalarValue::Int(_) | ScalarValue::Uint(_)) =>
            {
                Ok(())
            }
            _ => Err(wrong("integer")),
        },
    }
}

/// Enum values ending in `:` allow any id after the prefix, e.g. `partner:<org>`.
fn allowed_prefix(allowed: &[&str], text: &str) -> bool {
    allowed.iter().any(|a| {
        a.strip_suffix(':').is_some_and(|prefix| {
            text.strip_prefix(prefix)
                .and_then(|rest| rest.strip_prefix(':'))
                .is_some_and(|id| crate::id::OrgId::new(id).is_ok())
        })
    })
}

/// The calendar-date format of the schemas (`YYYY-MM-DD`).
pub const DATE: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]");

#[cfg(test)]
mod tests;

/// A person of the household as `meta` records them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema), schema(as = Person))]
pub struct PersonRecord {
    /// The person id.
    pub id: crate::id::PersonId,
    /// The name.
    pub name: String,
    /// The birth date, `YYYY-MM-DD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "utoipa", schema(format = Date))]
    pub birth_date: Option<String>,
    /// Persons holding parental authority (gezag) over this person.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gezag: Vec<crate::id::PersonId>,
}

/// A new `meta` document for a dossier of `team` in `district`.
pub fn new_meta(
    district: &crate::id::DistrictId,
    team: &crate::id::TeamId,
    assigned: &[crate::id::UserId],
    persons: &[PersonRecord],
) -> AutoCommit {
    let mut doc = skeleton(DocumentKind::Meta);
    // Writing fresh objects into a fresh document cannot fail.
    let _ = write_meta(&mut doc, district, team, assigned, persons);
    doc.commit();
    doc
}

/// Writes what [`new_meta`] holds into `doc` (a `meta` skeleton), for a caller that chooses
/// the actor and time of the change itself.
pub fn write_meta(
    doc: &mut impl Transactable,
    district: &crate::id::DistrictId,
    team: &crate::id::TeamId,
    assigned: &[crate::id::UserId],
    persons: &[PersonRecord],
) -> Result<(), automerge::AutomergeError> {
    doc.put(ROOT, "district", district.as_str())?;
    doc.put(ROOT, "team", team.as_str())?;
    set_assigned(doc, assigned)?;
    let list = doc.put_object(ROOT, "persons", ObjType::List)?;
    for (i, p) in persons.iter().enumerate() {
        let obj = doc.insert_object(&list, i, ObjType::Map)?;
        put_person(doc, &obj, p)?;
    }
    Ok(())
}

/// Replaces the `assigned` list of a `meta` document.
pub fn set_assigned(
    doc: &mut impl Transactable,
    assigned: &[crate::id::UserId],
) -> Result<(), automerge::AutomergeError> {
    let list = doc.put_object(ROOT, "assigned", ObjType::List)?;
    for (i, user) in assigned.iter().enumerate() {
        doc.insert(&list, i, user.as_str())?;
    }
    Ok(())
}

fn put_person(
    doc: &mut impl Transactable,
    obj: &automerge::ObjId,
    p: &PersonRecord,
) -> Result<(), automerge::AutomergeError> {
    doc.put(obj, "id", p.id.as_str())?;
    doc.put(obj, "name", p.name.as_str())?;
    if let Some(b) = &p.birth_date {
        doc.put(obj, "birth_date", b.as_str())?;
    }
    if !p.gezag.is_empty() {
        let g = doc.put_object(obj, "gezag", ObjType::List)?;
        for (i, holder) in p.gezag.iter().enumerate() {
            doc.insert(&g, i, holder.as_str())?;
        }
    }
    Ok(())
}

/// A new `view/<person>` document holding that person's own data and no entries yet.
pub fn new_view(person: &PersonRecord) -> AutoCommit {
    let mut doc = skeleton(DocumentKind::View);
    let _ = (|| -> Result<(), automerge::AutomergeError> {
        let obj = doc.put_object(ROOT, "person", ObjType::Map)?;
        doc.put(&obj, "id", person.id.as_str())?;
        doc.put(&obj, "name", person.name.as_str())?;
        if let Some(b) = &person.birth_date {
            doc.put(&obj, "birth_date", b.as_str())?;
        }
        Ok(())
    })();
    doc.commit();
    doc
}

/// The assigned workers listed in a `meta` document, in order.
pub fn assigned(meta: &impl ReadDoc) -> Vec<String> {
    read::strings(meta, &ROOT, "assigned")
}

/// The persons recorded in a `meta` document.
pub fn persons(meta: &impl ReadDoc) -> Vec<PersonRecord> {
    use read::{items, list, strings, text};
    let Some(persons) = list(meta, &ROOT, "persons") else {
        return Vec::new();
    };
    items(meta, &persons)
        .iter()
        .filter_map(|obj| {
            Some(PersonRecord {
                id: text(meta, obj, "id")?.parse().ok()?,
                name: text(meta, obj, "name")?,
                birth_date: text(meta, obj, "birth_date"),
                gezag: strings(meta, obj, "gezag")
                    .into_iter()
                    .filter_map(|g| g.parse().ok())
                    .collect(),
            })
        })
        .collect()
}

/// The legal regimes recorded in a `meta` document, with their trigger dates (R23). A regime or
/// date that does not parse is left out, so it can never shorten a retention term.
pub fn regimes(meta: &impl ReadDoc) -> Vec<crate::retention::DossierPart> {
    use read::{items, list, text};
    let Some(regimes) = list(meta, &ROOT, "regimes") else {
        return Vec::new();
    };
    items(meta, &regimes)
        .iter()
        .filter_map(|obj| {
            let regime = crate::retention::Regime::from_code(&text(meta, obj, "regime")?)?;
            let trigger_on = match text(meta, obj, "trigger") {
                Some(t) if !t.is_empty() => Some(time::Date::parse(&t, DATE).ok()?),
                _ => None,
            };
            Some(crate::retention::DossierPart { regime, trigger_on })
        })
        .collect()
}
