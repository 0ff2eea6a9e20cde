//! A location inside a document: the chain of map keys and list indices from the root to the
//! property an operation writes, and how an operation of a change is located in a document.
//! Path-level write rules (policy) and schema errors speak in paths.

use std::fmt;

use automerge::legacy::ObjectId;
use automerge::{Automerge, Prop, ReadDoc};

/// One step of a [`Path`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    /// A map key.
    Key(String),
    /// A position in a list or text (positions shift, so rules never depend on them).
    Index(usize),
}

/// A path from the document root, e.g. `goals/0/title`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Path(pub Vec<Segment>);

impl Path {
    /// The empty path: the document root.
    pub fn root() -> Self {
        Path(Vec::new())
    }

    /// Parses `a/0/b`; numeric segments become indices.
    pub fn parse(s: &str) -> Self {
        Path(
            s.split('/')
                .filter(|p| !p.is_empty())
                .map(|p| match p.parse() {
                    Ok(i) => Segment::Index(i),
                    Err(_) => Segment::Key(p.to_owned()),
                })
                .collect(),
        )
    }

    /// This path extended by one segment.
    pub fn child(&self, seg: Segment) -> Self {
        let mut v = self.0.clone();
        v.push(seg);
        Path(v)
    }

    /// The first key, if the path starts with one.
    pub fn first_key(&self) -> Option<&str> {
        match self.0.first() {
            Some(Segment::Key(k)) => Some(k),
            _ => None,
        }
    }

    /// Whether this path matches `pattern` segment by segment up to the pattern's length, where
    /// `*` in the pattern matches any one segment. `goals/*/owner` matches `goals/3/owner` and
    /// everything below it.
    pub fn starts_with_pattern(&self, pattern: &str) -> bool {
        let parts: Vec<&str> = pattern.split('/').collect();
        parts.len() <= self.0.len()
            && parts.iter().zip(&self.0).all(|(p, s)| match (p, s) {
                (&"*", _) => true,
                (p, Segment::Key(k)) => p == k,
                (p, Segment::Index(i)) => p.parse() == Ok(*i),
            })
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("/");
        }
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("/")?;
            }
            match s {
                Segment::Key(k) => f.write_str(k)?,
                Segment::Index(n) => write!(f, "{n}")?,
            }
        }
        Ok(())
    }
}

/// The path of an object (the root, or wherever it sits now).
pub(crate) fn object_path(doc: &Automerge, obj: &ObjectId) -> Option<Path> {
    match obj {
        ObjectId::Root => Some(Path::root()),
        ObjectId::Id(id) => exid_path(doc, &doc.import_obj(&id.to_string()).ok()?),
    }
}

/// The path of an object by its exported id: the props from the root down to it.
pub(crate) fn exid_path(doc: &Automerge, obj: &automerge::ObjId) -> Option<Path> {
    let parents = doc.parents(obj).ok()?;
    Some(Path(
        parents
            .path()
            .into_iter()
            .map(|(_, prop)| match prop {
                Prop::Map(k) => Segment::Key(k),
                Prop::Seq(i) => Segment::Index(i),
            })
            .collect(),
    ))
}

/// The paths a batch touched, as `validation::check_batch` located them: each operation's path
/// (a map key it sets, or the list or text it edits), and for an object inserted into a list
/// its own path with its index. Projection and consent reassessment read them instead of
/// decoding the batch again.
pub type Touched = std::collections::HashSet<Path>;

/// The path an operation writes: the path of its object, plus the map key it sets. Operations
/// inside a list or text stop at the list, because no rule depends on a position. The write
/// path locates operations in `validation::locate`, with a cache; the property tests use this.
#[cfg(test)]
pub(crate) fn op_path(
    doc: &Automerge,
    obj: &ObjectId,
    key: &automerge::legacy::Key,
) -> Option<Path> {
    let mut path = object_path(doc, obj)?;
    if let automerge::legacy::Key::Map(k) = key {
        path = path.child(Segment::Key(k.to_string()));
    }
    Some(path)
}
