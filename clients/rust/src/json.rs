//! A document's current content as JSON, for apps and the CLI: maps become objects, lists
//! arrays, `Text` objects and strings become strings, and a conflict shows its winning value.

use automerge::{ObjId, ObjType, ROOT, ReadDoc, ScalarValue, Value};
use serde_json::{Map, Value as Json};

/// The whole document as JSON.
pub fn to_json(doc: &impl ReadDoc) -> Json {
    object(doc, &ROOT, ObjType::Map)
}

fn object(doc: &impl ReadDoc, obj: &ObjId, kind: ObjType) -> Json {
    match kind {
        ObjType::Map | ObjType::Table => {
            let mut out = Map::new();
            for key in doc.keys(obj) {
                if let Ok(Some((v, id))) = doc.get(obj, key.as_str()) {
                    out.insert(key, value(doc, v, &id));
                }
            }
            Json::Object(out)
        }
        ObjType::List => Json::Array(
            (0..doc.length(obj))
                .filter_map(|i| doc.get(obj, i).ok().flatten())
                .map(|(v, id)| value(doc, v, &id))
                .collect(),
        ),
        ObjType::Text => Json::String(doc.text(obj).unwrap_or_default()),
    }
}

fn value(doc: &impl ReadDoc, v: Value<'_>, id: &ObjId) -> Json {
    match v {
        Value::Object(kind) => object(doc, id, kind),
        Value::Scalar(s) => match s.as_ref() {
            ScalarValue::Str(t) => Json::String(t.to_string()),
            ScalarValue::Int(i) => Json::from(*i),
            ScalarValue::Uint(u) => Json::from(*u),
            ScalarValue::F64(f) => Json::from(*f),
            ScalarValue::Counter(c) => Json::from(i64::from(c)),
            ScalarValue::Timestamp(t) => Json::from(*t),
            ScalarValue::Boolean(b) => Json::Bool(*b),
            ScalarValue::Null => Json::Null,
            ScalarValue::Bytes(b) => Json::String(hex::encode(b)),
            _ => Json::Null,
        },
    }
}
