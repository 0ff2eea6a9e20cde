//! "What may I write?": every path of a document kind's schema, put to [`decide`] for one
//! principal, so a client can refuse a local edit before it becomes a change without knowing a
//! single rule itself (I5). The answers are exactly the policy's: each schema path is asked as
//! [`Action::WritePath`] with list positions filled in (`goals/*/owner` is asked as
//! `goals/0/owner`; rules never depend on positions), and the document as a whole as
//! [`Action::Write`].

use serde::Serialize;
use time::OffsetDateTime;

use crate::document::{Shape, schema};
use crate::id::{DocumentKey, DocumentKind};
use crate::path::Path;
use crate::policy::{Action, Decision, DenyReason, decide};
use crate::principal::Principal;
use crate::relationship::Relationships;

/// The policy's answer for one schema path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct PathRule {
    /// The path pattern, `*` standing for any list position, e.g. `goals/*/owner`. An edit is
    /// located the way `check_batch` locates an operation: map keys are part of the path, list
    /// and text positions end it at the list or text (inserting a goal writes `goals`).
    pub path: String,
    /// Whether the principal may write there now.
    pub allowed: bool,
    /// Why not, when not: the policy's reason code, e.g. `path_reserved`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "utoipa", schema(value_type = Option<String>, nullable = false))]
    pub reason: Option<DenyReason>,
}

/// What one principal may write in one document, now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WriteRules {
    /// Whether the principal may send changes to the document at all.
    pub writable: bool,
    /// Why not, when not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<DenyReason>,
    /// Every path of the document's schema, in schema order.
    pub paths: Vec<PathRule>,
}

/// Every path pattern of a kind's schema, parents before children: map fields, each list and
/// its items (`goals`, `goals/*`), and what the items hold.
pub fn schema_paths(kind: DocumentKind) -> Vec<String> {
    fn walk(prefix: &str, shape: &Shape, out: &mut Vec<String>) {
        match shape {
            Shape::Map(fields) => {
                for field in fields.iter() {
                    let here = join(prefix, field.name);
                    out.push(here.clone());
                    walk(&here, &field.shape, out);
                }
            }
            Shape::List(item, _) => {
                let here = join(prefix, "*");
                out.push(here.clone());
                walk(&here, item, out);
            }
            _ => {}
        }
    }
    fn join(prefix: &str, segment: &str) -> String {
        if prefix.is_empty() {
            segment.to_owned()
        } else {
            format!("{prefix}/{segment}")
        }
    }
    let mut out = Vec::new();
    walk("", &Shape::Map(schema(kind)), &mut out);
    out
}

/// Asks [`decide`] about the document and each of its schema paths for `who` at `now`.
pub fn write_rules(
    who: &Principal,
    key: &DocumentKey,
    rel: &Relationships,
    now: OffsetDateTime,
) -> WriteRules {
    let reason = |d: Decision| match d {
        Decision::Allow { .. } => None,
        Decision::Deny(r) => Some(r),
    };
    let whole = reason(decide(who, Action::Write(key), rel, now));
    let paths = schema_paths(key.kind())
        .into_iter()
        .map(|pattern| {
            let concrete = Path::parse(&pattern.replace('*', "0"));
            let denied = reason(decide(who, Action::WritePath(key, &concrete), rel, now));
            PathRule {
                path: pattern,
                allowed: denied.is_none(),
                reason: denied,
            }
        })
        .collect();
    WriteRules {
        writable: whole.is_none(),
        reason: whole,
        paths,
    }
}

#[cfg(test)]
mod tests;
