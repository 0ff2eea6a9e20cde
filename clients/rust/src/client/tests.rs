//! The device store under the editing API, without a server: edits are durable across a
//! reopen, incremental saves are compacted, and pending changes are counted against the
//! server's last known heads.

use regie_core::document::skeleton;
use regie_core::id::{DistrictId, DocumentKey, DocumentKind, DossierId, TeamId};
use regie_core::policy::{Basis, Mode};
use regie_core::principal::{Claims, Role};
use regie_sync_protocol::DocumentId;

use super::*;
use crate::edit::{NewGoal, Owner};

async fn worker_with_a_plan(dir: &Path) -> (Client, DossierId, DocumentId) {
    let client = Client::open(dir).await.unwrap();
    let claims = Claims {
        sub: "anna".into(),
        role: Role::Worker,
        district: Some("noord".into()),
        team: Some("team-noord".into()),
        org: None,
        person: None,
        citywide: false,
    };
    client
        .store
        .set_login("http://127.0.0.1:9", "token", &claims, None, now())
        .await
        .unwrap();
    let dossier = DossierId::new_random();
    let id = DocumentId::new_random();
    let info = DocumentInfo {
        id,
        dossier,
        key: DocumentKey::Plan,
        access: Mode::Write,
        basis: Basis::Assignment,
        district: DistrictId::new("noord").unwrap(),
        team: TeamId::new("team-noord").unwrap(),
        closed: false,
    };
    client.store.upsert_listing(&[info], now()).await.unwrap();
    let mut plan = skeleton(DocumentKind::Plan);
    let heads = plan.get_heads();
    client
        .store
        .write(
            id,
            DocumentWrite {
                snapshot: Some(plan.save()),
                server_heads: Some(heads),
                ..DocumentWrite::default()
            },
        )
        .await
        .unwrap();
    (client, dossier, id)
}

#[tokio::test]
async fn every_edit_is_one_pending_change_and_survives_compaction_and_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (client, dossier, _) = worker_with_a_plan(dir.path()).await;
    let edits = COMPACT_AFTER as usize + 10;
    for i in 0..edits {
        client
            .add_goal(
                dossier,
                &NewGoal {
                    title: format!("doel {i}"),
                    owner: Some(Owner::Worker),
                },
            )
            .await
            .unwrap();
        assert_eq!(client.status().await.unwrap().pending_changes, i + 1);
    }
    client.store.close().await;
    let reopened = Client::open(dir.path()).await.unwrap();
    let status = reopened.status().await.unwrap();
    assert_eq!(status.pending_changes, edits);
    assert_eq!(status.held, 1);
    let stored = reopened.store.stored_bytes().await.unwrap();
    assert!(stored[0].snapshot.is_some());
    assert!(stored[0].chunks.len() < COMPACT_AFTER as usize, "compacted");
    let plan = reopened
        .open_document(dossier, &DocumentKey::Plan)
        .await
        .unwrap();
    assert_eq!(plan.content["goals"].as_array().unwrap().len(), edits);
    assert_eq!(plan.pending_changes, edits);
    assert_eq!(reopened.store.pending_reads().await.unwrap().len(), 1);
}
