//! Eigen verklaringen (R20): a resident adds their own statement to a record entry that concerns
//! them. The server writes it into `record`, linked to the entry, and it appears in that
//! resident's view. Residents never write `record` themselves.

use automerge::transaction::Transactable;
use automerge::{ObjType, ROOT, ReadDoc};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use regie_core::id::DocumentKey;
use regie_core::policy::Action;
use regie_core::projection;
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;

use super::{ApiError, ApiResult, AppState, Caller, doc};
use crate::audit::{AuditAction, AuditEvent};

/// How many statements one person keeps on one entry.
const MAX_STATEMENTS_PER_ENTRY: usize = 100;

/// The body of a statement.
#[derive(Deserialize, ToSchema)]
pub(super) struct NewStatement {
    /// The id of the record entry.
    entry: String,
    /// 1 to 20000 characters.
    text: String,
}

/// `POST /api/v1/dossiers/{id}/statements`.
#[utoipa::path(
    post,
    path = "/api/v1/dossiers/{id}/statements",
    summary = r#"A linked resident adds an eigen verklaring (own statement) to a record entry that concerns them (R20); it appears in their view"#,
    params(
        ("id" = regie_core::id::DossierId, Path, description = "The dossier; an id that is not a dossier id is not_found"),
    ),
    request_body = NewStatement,
    responses(
        (status = 201, description = "Added", body = super::Created),
        (status = 404, description = "not_found: no such dossier, or not the caller's to see", body = doc::ErrorBody),
        (status = 400, description = "a statement is 1 to 20000 characters; or the entry is not about the caller; or bad_request: unreadable JSON, or the body refused", body = doc::ErrorBody),
        doc::JsonBody,
    )
)]
pub(super) async fn add_statement(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
    Json(body): Json<NewStatement>,
) -> ApiResult<(StatusCode, Json<super::Created>)> {
    let entry = super::standing(&state, &who, &id, Action::AddStatement).await?;
    let id = entry.rel.dossier;
    let now = OffsetDateTime::now_utc();
    let person = who.person.clone().expect("the policy checked it");
    let text = body.text.trim().to_owned();
    if text.is_empty() || text.chars().count() > 20_000 {
        return Err(ApiError::bad_request(
            "a statement is 1 to 20000 characters",
        ));
    }
    let record = entry
        .documents
        .get(&DocumentKey::Record)
        .copied()
        .ok_or_else(ApiError::not_found)?;
    let doc = state
        .hub
        .snapshot(record)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let Some(seen) = projection::view_entry(&doc, &body.entry, &person) else {
        // Unknown entries and entries about others look the same.
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no_such_entry",
            "no entry with that id concerns you",
        ));
    };
    // The view holds at most this many statements per entry (its schema).
    if seen.statements.len() >= MAX_STATEMENTS_PER_ENTRY {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "too_many_statements",
            format!(
                "an entry keeps at most {MAX_STATEMENTS_PER_ENTRY} statements of yours; ask your worker to rectify the entry instead (R20)"
            ),
        ));
    }
    let statement_id = format!("s-{}", uuid::Uuid::new_v4().simple());
    let at = now.format(&Rfc3339).expect("UTC formats");
    let (sid, entry_id, who_id) = (statement_id.clone(), body.entry.clone(), person.to_string());
    let mut ev = AuditEvent::new(
        now,
        who.user.as_str(),
        who.role.as_str(),
        AuditAction::Write,
    );
    ev.dossier = Some(id.to_string());
    ev.document = Some("record".into());
    ev.persons = Some(person.to_string());
    ev.basis = Some("resident_link".into());
    ev.detail = Some("eigen verklaring".into());
    state
        .hub
        .server_write_audited(record, &[ev], move |tx| {
            let list = tx
                .get(ROOT, "statements")?
                .map(|(_, l)| l)
                .ok_or(automerge::AutomergeError::Fail)?;
            let at_index = tx.length(&list);
            let s = tx.insert_object(&list, at_index, ObjType::Map)?;
            tx.put(&s, "id", sid.as_str())?;
            tx.put(&s, "entry", entry_id.as_str())?;
            tx.put(&s, "person", who_id.as_str())?;
            let t = tx.put_object(&s, "text", ObjType::Text)?;
            tx.splice_text(&t, 0, 0, &text)?;
            tx.put(&s, "at", at.as_str())?;
            Ok(())
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(super::Created { id: statement_id }),
    ))
}
