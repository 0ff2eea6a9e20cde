//! Replaying a local diff onto the server's version: permitted edits survive as new changes,
//! forbidden ones are dropped with the policy's reason, and the result passes the server's check.

use automerge::transaction::Transactable;
use automerge::{ObjType, ROOT, ReadDoc};
use regie_core::document::{self, skeleton};
use regie_core::id::{DistrictId, DocumentKey, DocumentKind, DossierId, TeamId};
use regie_core::policy::Basis;
use regie_core::principal::{Claims, Principal, Role};
use regie_core::relationship::Relationships;
use time::OffsetDateTime;

use super::replay;
use crate::json::to_json;

fn resident() -> (Principal, Relationships) {
    let who = Principal::from_claims(&Claims {
        sub: "sanne".into(),
        role: Role::Resident,
        district: None,
        team: None,
        org: None,
        person: Some("p-sanne".into()),
        citywide: false,
    })
    .unwrap();
    let rel = Relationships::as_seen_by(
        &who,
        DossierId::new_random(),
        DistrictId::new("noord").unwrap(),
        TeamId::new("team-noord").unwrap(),
        Basis::ResidentLink,
        &DocumentKey::Plan,
    );
    (who, rel)
}

#[test]
fn a_forbidden_edit_between_two_permitted_ones_is_dropped_and_the_others_replayed() {
    // The server's version: the skeleton plus a worker's goal.
    let mut server = skeleton(DocumentKind::Plan);
    let goals = server.get(ROOT, "goals").unwrap().unwrap().1;
    let goal = server.insert_object(&goals, 0, ObjType::Map).unwrap();
    server.put(&goal, "id", "g-1").unwrap();
    let title = server.put_object(&goal, "title", ObjType::Text).unwrap();
    server
        .splice_text(&title, 0, 0, "Schulden op orde")
        .unwrap();
    server.commit();
    let server_heads = server.get_heads();

    // The resident's device: three offline edits, the second forbidden (R8 reserves owners).
    let mut local = server.fork();
    let hulpvraag = local.get(ROOT, "hulpvraag").unwrap().unwrap().1;
    local
        .splice_text(&hulpvraag, 0, 0, "Ik wil rust in huis")
        .unwrap();
    local.commit();
    local.put(&goal, "owner", "resident").unwrap();
    local.commit();
    let agreements = local.get(ROOT, "agreements").unwrap().unwrap().1;
    let ag = local.insert_object(&agreements, 0, ObjType::Map).unwrap();
    local.put(&ag, "id", "ag-1").unwrap();
    let text = local.put_object(&ag, "text", ObjType::Text).unwrap();
    local.splice_text(&text, 0, 0, "Elke week bellen").unwrap();
    local.commit();
    local
        .update_text(&title, "Schulden helemaal op orde")
        .unwrap();
    local.commit();

    let (who, rel) = resident();
    let now = OffsetDateTime::now_utc();
    let out = replay(
        local.document(),
        &server_heads,
        &who,
        &DocumentKey::Plan,
        &rel,
        now,
    )
    .unwrap();

    assert_eq!(out.dropped, vec!["goals/0/owner: path_reserved".to_owned()]);
    assert!(out.replayed >= 3, "{}", out.replayed);
    let json = to_json(&out.doc);
    assert_eq!(json["hulpvraag"], "Ik wil rust in huis");
    assert_eq!(json["agreements"][0]["text"], "Elke week bellen");
    assert_eq!(json["agreements"][0]["id"], "ag-1");
    assert_eq!(json["goals"][0]["title"], "Schulden helemaal op orde");
    assert!(json["goals"][0].get("owner").is_none(), "{json}");
    document::validate(DocumentKind::Plan, &out.doc).unwrap();
    // Built on the server's heads, by a new actor: the server can take it as it is.
    let new = server.document().get_changes_added(&out.doc);
    assert!(new.iter().all(|c| {
        c.deps()
            .iter()
            .all(|d| out.doc.get_change_by_hash(d).is_some())
    }));
    assert!(new.iter().all(|c| c.actor_id() != local.get_actor()));
}

#[test]
fn a_replay_that_breaks_the_schema_as_a_whole_is_not_replayed() {
    let mut server = skeleton(DocumentKind::Plan);
    let server_heads = server.get_heads();
    let mut local = server.clone();
    // An unknown root key is allowed by the resident's path rules but not by the schema.
    local.put(ROOT, "wishes", "more").unwrap();
    local.commit();
    let (who, rel) = resident();
    let out = replay(
        local.document(),
        &server_heads,
        &who,
        &DocumentKey::Plan,
        &rel,
        OffsetDateTime::now_utc(),
    )
    .unwrap();
    assert_eq!(out.replayed, 0);
    assert_eq!(out.doc.get_heads(), server_heads);
    assert_eq!(out.dropped.len(), 1);
    assert!(out.dropped[0].contains("schema"), "{:?}", out.dropped);
}
