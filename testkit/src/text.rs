//! The strings a peer received or holds, for leak scans: every change's operations decoded, and
//! every document's materialized content. A sentinel written as text spans one operation per
//! character, so the scans concatenate what a change writes.

use automerge::{Automerge, Change, ReadDoc};

/// The strings in one sync chunk: a change chunk's operations, or a whole saved document's.
pub fn chunk_texts(chunk: &[u8]) -> Vec<String> {
    if let Ok(change) = Change::from_bytes(chunk.to_vec()) {
        return vec![change_text(&change)];
    }
    match Automerge::load(chunk) {
        Ok(doc) => document_texts(&doc),
        Err(_) => Vec::new(),
    }
}

/// Every change's operations and the materialized content of a document, as strings.
pub fn document_texts(doc: &Automerge) -> Vec<String> {
    let mut out: Vec<String> = doc.get_changes(&[]).iter().map(change_text).collect();
    out.push(format!("{:?}", doc.hydrate(None)));
    out
}

/// The string values an expanded change writes, concatenated in order, with its map keys.
fn change_text(change: &Change) -> String {
    let mut s = String::new();
    for op in change.decode().operations {
        if let automerge::legacy::OpType::Put(automerge::ScalarValue::Str(v)) = &op.action {
            s.push_str(v);
        }
        if let automerge::legacy::Key::Map(k) = &op.key {
            s.push('\u{0}');
            s.push_str(k);
            s.push('\u{0}');
        }
    }
    s
}

/// Reads a text-or-string field at the root of a document.
pub fn root_text(doc: &impl ReadDoc, key: &str) -> Option<String> {
    text_at(doc, &automerge::ROOT, key)
}

/// Reads a text-or-string field of a map.
pub fn text_at(doc: &impl ReadDoc, obj: &automerge::ObjId, key: &str) -> Option<String> {
    let (v, id) = doc.get(obj, key).ok()??;
    match v {
        automerge::Value::Object(automerge::ObjType::Text) => doc.text(&id).ok(),
        automerge::Value::Scalar(s) => s.as_str().map(str::to_owned),
        _ => None,
    }
}
