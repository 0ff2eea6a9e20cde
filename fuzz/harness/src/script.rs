//! Structure-aware edits: bytes read as a script of Automerge operations (put, insert, delete,
//! increment, splice, nested objects, commits) on the objects a document already has, with keys
//! and strings mostly from Regie's schemas. This is how the fuzzer writes changes Automerge
//! accepts — what a device with a valid token could send — instead of bytes that fail the
//! change checksum.

use arbitrary::{Result, Unstructured};
use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjId, ObjType, ROOT, ReadDoc, ScalarValue, Value};

/// Every field name of Regie's schemas, and a few names no schema has.
pub(crate) const KEYS: &[&str] = &[
    "action",
    "actions",
    "agreed_on",
    "agreements",
    "approved_by",
    "assessed_need",
    "assigned",
    "assignment",
    "at",
    "author",
    "birth_date",
    "category",
    "consents",
    "date",
    "decided_by",
    "decided_on",
    "decision",
    "description",
    "destroy_by",
    "discussed_with_resident",
    "doelbinding",
    "done",
    "due",
    "email",
    "entries",
    "entry",
    "evaluations",
    "expires_on",
    "gezag",
    "given_by",
    "given_on",
    "goals",
    "ground",
    "hulpvraag",
    "id",
    "items",
    "kind",
    "life_domain",
    "made_on",
    "moment",
    "motivation",
    "name",
    "not_discussed_reason",
    "note",
    "owner",
    "person",
    "persons",
    "phone",
    "proportionaliteit",
    "proposed_voorziening",
    "purpose",
    "recipient",
    "relations",
    "request",
    "requested",
    "resident_informed_on",
    "safety",
    "statements",
    "status",
    "subject",
    "subjects",
    "submitted_on",
    "subsidiariteit",
    "summary",
    "team",
    "text",
    "title",
    "to",
    "triage",
    "trigger",
    "weighing",
    "withdrawn_on",
    "",
    "*",
    "0",
    "__proto__",
    "goals/0/owner",
];

/// Values Regie's schemas give meaning to, and some they refuse.
pub(crate) const STRINGS: &[&str] = &[
    "worker",
    "resident",
    "network",
    "partner:",
    "partner:org-1",
    "open",
    "achieved",
    "dropped",
    "fact",
    "opinion",
    "analysis",
    "conversation",
    "work_note",
    "safety",
    "veilig_thuis",
    "aanmelding",
    "share",
    "2026-01-01",
    "2026-02-30",
    "0000-00-00",
    "2026-01-01T00:00:00Z",
    "2026-01-01T25:00:00+01:00",
    "p-1",
    "g-1",
    "e-1",
    "org-1",
    "worker-1",
    "",
    "é",
    "\u{0}",
];

/// The objects of `doc` reachable from the root, breadth first, at most `limit`.
pub(crate) fn objects(doc: &impl ReadDoc, limit: usize) -> Vec<(ObjId, ObjType)> {
    let mut out = vec![(ROOT, ObjType::Map)];
    let mut i = 0;
    while i < out.len() && out.len() < limit {
        let (obj, typ) = out[i].clone();
        i += 1;
        let props: Vec<automerge::Prop> = match typ {
            ObjType::Map | ObjType::Table => doc.keys(&obj).map(Into::into).collect(),
            ObjType::List => (0..doc.length(&obj)).map(Into::into).collect(),
            ObjType::Text => Vec::new(),
        };
        let children: Vec<(ObjId, ObjType)> = props
            .into_iter()
            .filter_map(|prop| match doc.get(&obj, prop) {
                Ok(Some((Value::Object(t), id))) => Some((id, t)),
                _ => None,
            })
            .collect();
        out.extend(children.into_iter().take(limit - out.len()));
    }
    out
}

fn key(u: &mut Unstructured<'_>) -> Result<String> {
    if u.ratio(7, 8)? {
        Ok((*u.choose(KEYS)?).to_owned())
    } else {
        Ok(short(u.arbitrary::<&str>()?, 64))
    }
}

fn string(u: &mut Unstructured<'_>) -> Result<String> {
    match u.int_in_range(0..=7)? {
        0 => Ok(short(u.arbitrary::<&str>()?, 64)),
        // Past the schemas' limits (64, 500 characters).
        1 => Ok("x".repeat(u.int_in_range(0..=600)?)),
        _ => Ok((*u.choose(STRINGS)?).to_owned()),
    }
}

fn short(s: &str, chars: usize) -> String {
    s.chars().take(chars).collect()
}

fn scalar(u: &mut Unstructured<'_>) -> Result<ScalarValue> {
    Ok(match u.int_in_range(0..=9)? {
        0 => ScalarValue::Int(u.arbitrary()?),
        1 => ScalarValue::Uint(u.arbitrary()?),
        2 => ScalarValue::F64(u.arbitrary()?),
        3 => ScalarValue::Boolean(u.arbitrary()?),
        4 => ScalarValue::Null,
        5 => ScalarValue::Counter(u.arbitrary::<i64>()?.into()),
        6 => ScalarValue::Timestamp(u.arbitrary()?),
        7 => {
            let len = u.int_in_range(0..=8)?;
            ScalarValue::Bytes(u.bytes(len)?.to_vec())
        }
        _ => ScalarValue::Str(string(u)?.into()),
    })
}

fn obj_type(u: &mut Unstructured<'_>) -> Result<ObjType> {
    Ok(*u.choose(&[ObjType::Map, ObjType::List, ObjType::Text])?)
}

/// Applies up to 24 operations read from `u` to `doc`, committing now and then and at the end.
/// Operations Automerge refuses are skipped.
pub(crate) fn edit(doc: &mut AutoCommit, u: &mut Unstructured<'_>) -> Result<()> {
    let mut objs = objects(doc, 64);
    let n = u.int_in_range(1..=24)?;
    for _ in 0..n {
        if u.is_empty() {
            break;
        }
        let (obj, typ) = u.choose(&objs)?.clone();
        let op = u.int_in_range(0..=7)?;
        if op == 7 {
            doc.commit();
            continue;
        }
        match typ {
            ObjType::Map | ObjType::Table => match op {
                0 | 1 => {
                    let _ = doc.put(&obj, key(u)?, scalar(u)?);
                }
                2 | 3 => {
                    if let Ok(new) = doc.put_object(&obj, key(u)?, obj_type(u)?) {
                        let t = doc.object_type(&new).unwrap_or(ObjType::Map);
                        objs.push((new, t));
                    }
                }
                4 => {
                    let keys: Vec<String> = doc.keys(&obj).collect();
                    let k = if keys.is_empty() || u.ratio(1, 4)? {
                        key(u)?
                    } else {
                        u.choose(&keys)?.clone()
                    };
                    let _ = doc.delete(&obj, k);
                }
                _ => {
                    let _ = doc.increment(&obj, key(u)?, u.arbitrary()?);
                }
            },
            ObjType::List => {
                let len = doc.length(&obj);
                match op {
                    0 | 1 => {
                        let at = u.int_in_range(0..=len)?;
                        let _ = doc.insert(&obj, at, scalar(u)?);
                    }
                    2 | 3 => {
                        let at = u.int_in_range(0..=len)?;
                        if let Ok(new) = doc.insert_object(&obj, at, obj_type(u)?) {
                            let t = doc.object_type(&new).unwrap_or(ObjType::Map);
                            objs.push((new, t));
                        }
                    }
                    4 if len > 0 => {
                        let at = u.int_in_range(0..=len - 1)?;
                        let _ = doc.delete(&obj, at);
                    }
                    _ if len > 0 => {
                        let at = u.int_in_range(0..=len - 1)?;
                        let _ = doc.put(&obj, at, scalar(u)?);
                    }
                    _ => {}
                }
            }
            ObjType::Text => {
                let len = doc.length(&obj);
                let at = u.int_in_range(0..=len)?;
                let del = u.int_in_range(0..=len - at)?;
                let text = string(u)?;
                let _ = doc.splice_text(&obj, at, del as isize, &text);
            }
        }
    }
    doc.commit();
    Ok(())
}
