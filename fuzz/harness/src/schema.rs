//! Target `schema`: `regie_core::document::validate` and `validate_paths` on a document of any
//! kind as the server creates it (`document::skeleton`), edited by a script
//! ([`crate::script`]: puts, inserts, deletes, nested objects, keys mostly from Regie's schemas,
//! sometimes arbitrary or over the schema's limits), along arbitrary paths. Never a panic,
//! whatever shape the edits leave. Split from `policy` because editing a document costs
//! milliseconds where a policy question costs microseconds: together, the questions ran at the
//! schema's pace.

use std::sync::OnceLock;

use arbitrary::{Result, Unstructured};
use automerge::AutoCommit;
use regie_core::document;
use regie_core::id::DocumentKind;

/// Edits a document of the kind the first byte picks, then validates it whole and along up to
/// three arbitrary paths.
///
/// # Panics
/// If the schema validation panics.
pub fn schema(data: &[u8]) {
    let _ = edit_and_validate(&mut Unstructured::new(data));
}

fn edit_and_validate(u: &mut Unstructured<'_>) -> Result<()> {
    static SKELETONS: OnceLock<Vec<AutoCommit>> = OnceLock::new();
    let skeletons = SKELETONS.get_or_init(|| {
        DocumentKind::ALL
            .iter()
            .map(|&kind| document::skeleton(kind).with_actor(automerge::ActorId::from([0x5e; 16])))
            .collect()
    });
    let index = u.choose_index(DocumentKind::ALL.len())?;
    let kind = DocumentKind::ALL[index];
    let mut doc = skeletons[index].clone();
    crate::script::edit(&mut doc, u)?;
    let _ = document::validate(kind, &doc);
    let mut touched = Vec::new();
    for _ in 0..u.int_in_range(0..=3)? {
        touched.push(crate::policy::path(u)?);
    }
    let _ = document::validate_paths(kind, &doc, &touched);
    Ok(())
}

/// Pseudo-random edit scripts on each kind of document.
pub(crate) fn seeds() -> Vec<Vec<u8>> {
    crate::policy::pseudo_random(0x6a09_e667_f3bc_c908, 32, 160)
}
