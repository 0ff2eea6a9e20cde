//! Small readers over Automerge documents shared by the projection and the share rules: a
//! string field whether stored as a scalar or as `Text`, a list field, its items, and a list of
//! strings. Missing or mistyped values read as absent, never as an error.

use automerge::{ObjId, ObjType, ReadDoc, Value};

/// The string in a value, whether a scalar string or a `Text` object.
pub(crate) fn text_of(doc: &impl ReadDoc, value: &Value<'_>, id: &ObjId) -> Option<String> {
    match value {
        Value::Object(ObjType::Text) => doc.text(id).ok(),
        Value::Scalar(s) => s.as_str().map(str::to_owned),
        _ => None,
    }
}

/// The string field `key` of `obj`.
pub(crate) fn text(doc: &impl ReadDoc, obj: &ObjId, key: &str) -> Option<String> {
    let (value, id) = doc.get(obj, key).ok()??;
    text_of(doc, &value, &id)
}

/// The list field `key` of `obj`.
pub(crate) fn list(doc: &impl ReadDoc, obj: &ObjId, key: &str) -> Option<ObjId> {
    match doc.get(obj, key).ok()?? {
        (Value::Object(ObjType::List), id) => Some(id),
        _ => None,
    }
}

/// The map field `key` of `obj`.
pub(crate) fn map(doc: &impl ReadDoc, obj: &ObjId, key: &str) -> Option<ObjId> {
    match doc.get(obj, key).ok()?? {
        (Value::Object(ObjType::Map), id) => Some(id),
        _ => None,
    }
}

/// The object ids of a list's items.
pub(crate) fn items(doc: &impl ReadDoc, list: &ObjId) -> Vec<ObjId> {
    (0..doc.length(list))
        .filter_map(|i| doc.get(list, i).ok().flatten().map(|(_, id)| id))
        .collect()
}

/// The strings of the list field `key` of `obj` (empty when absent).
pub(crate) fn strings(doc: &impl ReadDoc, obj: &ObjId, key: &str) -> Vec<String> {
    let Some(l) = list(doc, obj, key) else {
        return Vec::new();
    };
    (0..doc.length(&l))
        .filter_map(|i| {
            let (v, id) = doc.get(&l, i).ok()??;
            text_of(doc, &v, &id)
        })
        .collect()
}
