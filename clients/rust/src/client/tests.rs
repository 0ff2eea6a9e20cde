//! The device store under the editing API, without a server: edits are durable across a
//! reopen, incremental saves are compacted, and pending changes are counted against the
//! server's last known heads; the store's blocks are sealed with the device key and refused
//! while it is locked.

use regie_core::document::skeleton;
use regie_core::id::{DistrictId, DocumentKey, DocumentKind, DossierId, TeamId};
use regie_core::policy::{Basis, Mode};
use regie_core::principal::{Claims, Role};
use regie_sync_protocol::DocumentId;

use super::*;
use crate::edit::{NewGoal, Owner};
use crate::seal::{DeviceKey, KEY_LEN};

/// A device key as the server would release it (fixed bytes: the same key after a reopen).
fn test_key() -> DeviceKey {
    DeviceKey::new("dvk-test", &zeroize::Zeroizing::new(vec![0x5A; KEY_LEN])).unwrap()
}

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
        .set_login("http://127.0.0.1:9", &claims, None, now())
        .await
        .unwrap();
    client
        .store
        .unlock(test_key(), "token", now())
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
    assert!(matches!(
        reopened.status().await,
        Err(ClientError::Locked(LockReason::NotUnlocked))
    ));
    let purged = reopened
        .store
        .unlock(test_key(), "token", now())
        .await
        .unwrap();
    assert!(purged.is_empty(), "the same key opens what it sealed");
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

#[tokio::test]
async fn every_block_is_sealed_on_disk_refused_while_locked_and_purged_when_another_key_unlocks() {
    const SENTINEL: &str = "SENTINEL-UNIT-d41c";
    let dir = tempfile::tempdir().unwrap();
    let (client, dossier, id) = worker_with_a_plan(dir.path()).await;
    client.set_hulpvraag(dossier, SENTINEL).await.unwrap();
    client
        .open_document(dossier, &DocumentKey::Plan)
        .await
        .unwrap();
    client.store.checkpoint().await.unwrap();
    let stored = client.store.stored_bytes().await.unwrap();
    assert!(
        stored[0]
            .chunks
            .iter()
            .any(|c| c.windows(SENTINEL.len()).any(|w| w == SENTINEL.as_bytes())),
        "control: the opened blocks hold the sentinel"
    );
    let file = std::fs::read(dir.path().join(crate::store::STORE_FILE)).unwrap();
    let id = id.to_string();
    assert!(
        file.windows(id.len()).any(|w| w == id.as_bytes()),
        "control: the scan reads the file (the document id is plaintext)"
    );
    assert!(
        !file
            .windows(SENTINEL.len())
            .any(|w| w == SENTINEL.as_bytes())
    );

    client.lock();
    for refused in [
        client
            .open_document(dossier, &DocumentKey::Plan)
            .await
            .err(),
        client.set_hulpvraag(dossier, "x").await.err(),
        client.documents().await.err(),
        client.store.pending_reads().await.err(),
    ] {
        assert!(
            matches!(refused, Some(ClientError::Locked(_))),
            "{refused:?}"
        );
    }
    // Another key (another user's, or one the server no longer has) opens nothing: what it
    // cannot open is purged, not kept.
    let other = DeviceKey::new("dvk-other", &zeroize::Zeroizing::new(vec![1; KEY_LEN])).unwrap();
    let purged = client.store.unlock(other, "token", now()).await.unwrap();
    assert_eq!(purged.len(), 1);
    assert_eq!(purged[0].reason, "sealed_by_another_key");
    assert!(client.store.pending_reads().await.unwrap().is_empty());
    assert!(client.store.held().await.unwrap().is_empty());
}
