//! The versioned hash chain: the V2 layout pinned byte for byte, a chain written by the V1
//! code (the fixture `v1_chain.json`, four rows captured through `Store` at commit 5edc42c, before
//! the encoding was versioned) verifying as it is and with V2 rows after it, every field of
//! either version covered by the hash, no way back from V2 to V1, and an old data directory
//! migrated, appended to and verified by `regie-server verify-audit`'s code.

use serde::Deserialize;
use sqlx::Row;
use time::format_description::well_known::Rfc3339;
use time::macros::datetime;

use super::*;
use crate::storage::Store;

/// A row of the fixture: the audit table's columns as the V1 code stored them.
#[derive(Debug, Clone, Deserialize)]
struct FixtureRow {
    seq: i64,
    at: String,
    actor: String,
    role: String,
    on_behalf_of: Option<String>,
    dossier: Option<String>,
    document: Option<String>,
    persons: Option<String>,
    action: String,
    basis: Option<String>,
    outcome: String,
    device: Option<String>,
    detail: Option<String>,
    prev_hash: String,
    hash: String,
}

impl FixtureRow {
    fn event(&self) -> AuditEvent {
        AuditEvent {
            at: OffsetDateTime::parse(&self.at, &Rfc3339).unwrap(),
            actor: self.actor.clone(),
            role: self.role.clone(),
            on_behalf_of: self.on_behalf_of.clone(),
            dossier: self.dossier.clone(),
            document: self.document.clone(),
            persons: self.persons.clone(),
            action: self.action.clone(),
            basis: self.basis.clone(),
            outcome: self.outcome.clone(),
            device: self.device.clone(),
            detail: self.detail.clone(),
        }
    }
}

fn fixture() -> Vec<FixtureRow> {
    serde_json::from_str(include_str!("v1_chain.json")).unwrap()
}

/// A row in memory, as the table would hold it.
#[derive(Debug, Clone)]
struct MemRow {
    seq: i64,
    encoding: i64,
    event: AuditEvent,
    prev_hash: Vec<u8>,
    hash: Vec<u8>,
}

fn walk(rows: &[MemRow]) -> Verification {
    let mut walk = ChainWalk::new();
    for r in rows {
        if !walk.check(StoredRow {
            seq: r.seq,
            encoding: r.encoding,
            event: Some(&r.event),
            prev_hash: &r.prev_hash,
            hash: &r.hash,
        }) {
            break;
        }
    }
    walk.verification()
}

fn v1_rows() -> Vec<MemRow> {
    fixture()
        .iter()
        .map(|f| MemRow {
            seq: f.seq,
            encoding: 1,
            event: f.event(),
            prev_hash: hex::decode(&f.prev_hash).unwrap(),
            hash: hex::decode(&f.hash).unwrap(),
        })
        .collect()
}

/// Events unlike the fixture's: every optional field set in one, none in another, a non-UTC
/// offset and nanoseconds.
fn new_events() -> Vec<AuditEvent> {
    let mut full = AuditEvent::new(
        datetime!(2026-03-29 01:00:00.000000001 UTC),
        "anna",
        "worker",
        AuditAction::Write,
    );
    full.on_behalf_of = Some("rep-1".into());
    full.dossier = Some("d-9".into());
    full.document = Some("record".into());
    full.persons = Some("p-a,p-b".into());
    full.basis = Some("assignment".into());
    full.device = Some("tablet-anna".into());
    full.detail = Some("3 changes".into());
    let mut local = AuditEvent::new(
        datetime!(2026-10-25 02:30 +01:00),
        "eva",
        "privacy_officer",
        AuditAction::AuditRead,
    );
    local.detail = Some(String::new());
    vec![
        full,
        local,
        AuditEvent::new(
            datetime!(2026-11-29 12:00 UTC),
            "server",
            "server",
            AuditAction::Revoke,
        ),
    ]
}

/// The fixture followed by [`new_events`] in the current encoding.
fn mixed_rows() -> Vec<MemRow> {
    let mut rows = v1_rows();
    for event in new_events() {
        let last = rows.last().unwrap();
        let prev = last.hash.clone();
        rows.push(MemRow {
            seq: last.seq + 1,
            encoding: Encoding::CURRENT.stored(),
            hash: event.chain_hash(&prev),
            prev_hash: prev,
            event,
        });
    }
    rows
}

fn intact(rows: u64) -> Verification {
    Verification {
        rows,
        first_broken_seq: None,
    }
}

fn broken(at: i64) -> Verification {
    Verification {
        rows: at as u64 - 1,
        first_broken_seq: Some(at),
    }
}

#[test]
fn the_v2_input_is_the_documented_layout_byte_for_byte() {
    let mut e = AuditEvent::new(
        datetime!(1970-01-01 00:00:01 +01:00),
        "ab",
        "r",
        AuditAction::Open,
    );
    e.dossier = Some(String::new());
    let prev = [7_u8; 32];
    let mut want = b"regie-audit\x02".to_vec();
    want.extend_from_slice(&[0, 0, 0, 32]);
    want.extend_from_slice(&prev);
    // 00:00:01 at +01:00 is 3,600 seconds before the epoch less one.
    want.extend_from_slice(&(-3_599_000_000_000_i128).to_be_bytes());
    want.extend_from_slice(&3600_i32.to_be_bytes());
    want.extend_from_slice(b"\x01\x00\x00\x00\x02ab"); // actor
    want.extend_from_slice(b"\x01\x00\x00\x00\x01r"); // role
    want.push(0); // on_behalf_of
    want.extend_from_slice(b"\x01\x00\x00\x00\x00"); // dossier: present and empty
    want.extend_from_slice(&[0, 0]); // document, persons
    want.extend_from_slice(b"\x01\x00\x00\x00\x04open"); // action
    want.push(0); // basis
    want.extend_from_slice(b"\x01\x00\x00\x00\x07allowed"); // outcome
    want.extend_from_slice(&[0, 0]); // device, detail
    assert_eq!(e.encode_v2(&prev), want);
    assert_eq!(
        e.chain_hash_as(Encoding::V2, &prev),
        Sha256::digest(&want).to_vec()
    );
    assert_eq!(e.chain_hash(&prev), e.chain_hash_as(Encoding::V2, &prev));
    assert_eq!(Encoding::CURRENT, Encoding::V2);
}

#[test]
fn v2_tells_absent_from_empty_and_where_one_field_ends() {
    let base = AuditEvent::new(
        datetime!(2026-01-01 00:00 UTC),
        "ab",
        "c",
        AuditAction::Read,
    );
    let mut shifted = base.clone();
    shifted.actor = "a".into();
    shifted.role = "bc".into();
    let mut empty = base.clone();
    empty.detail = Some(String::new());
    let mut offset = base.clone();
    offset.at = base
        .at
        .to_offset(time::UtcOffset::from_hms(1, 0, 0).unwrap());
    let hashes: Vec<Vec<u8>> = [&base, &shifted, &empty, &offset]
        .iter()
        .map(|e| e.chain_hash(&GENESIS))
        .collect();
    for (i, a) in hashes.iter().enumerate() {
        for b in &hashes[i + 1..] {
            assert_ne!(a, b);
        }
    }
}

#[test]
fn the_chain_written_by_the_v1_code_verifies() {
    let rows = v1_rows();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0].prev_hash, GENESIS);
    assert_eq!(walk(&rows), intact(4));
    // And each row is the V1 hash of its event, not the V2 one.
    let mut prev = GENESIS.to_vec();
    for r in &rows {
        assert_eq!(r.event.chain_hash_as(Encoding::V1, &prev), r.hash);
        assert_ne!(r.event.chain_hash_as(Encoding::V2, &prev), r.hash);
        prev = r.hash.clone();
    }
}

#[test]
fn new_rows_after_the_old_ones_verify() {
    let rows = mixed_rows();
    assert_eq!(walk(&rows), intact(7));
    assert_eq!(walk(&rows[..5]), intact(5));
}

/// A named way of altering one field of an event.
type Alteration = (&'static str, fn(&mut AuditEvent));

/// Each way of altering one field of an event.
fn alterations() -> Vec<Alteration> {
    fn other(v: &mut Option<String>) {
        *v = match v.take() {
            Some(s) if s.is_empty() => None,
            Some(s) => Some(format!("{s}x")),
            None => Some(String::new()),
        };
    }
    vec![
        ("at", |e| e.at += time::Duration::nanoseconds(1)),
        ("at offset", |e| {
            e.at = e.at.to_offset(time::UtcOffset::from_hms(5, 0, 0).unwrap());
        }),
        ("actor", |e| e.actor.push('x')),
        ("role", |e| e.role.push('x')),
        ("on_behalf_of", |e| other(&mut e.on_behalf_of)),
        ("dossier", |e| other(&mut e.dossier)),
        ("document", |e| other(&mut e.document)),
        ("persons", |e| other(&mut e.persons)),
        ("action", |e| e.action.push('x')),
        ("basis", |e| other(&mut e.basis)),
        ("outcome", |e| e.outcome.push('x')),
        ("device", |e| other(&mut e.device)),
        ("detail", |e| other(&mut e.detail)),
    ]
}

#[test]
fn altering_any_field_of_any_row_of_either_encoding_breaks_the_chain_there() {
    let rows = mixed_rows();
    for i in 0..rows.len() {
        let seq = rows[i].seq;
        for (field, alter) in alterations() {
            let mut tampered = rows.clone();
            let before = tampered[i].event.clone();
            alter(&mut tampered[i].event);
            let after = &tampered[i].event;
            // `==` on instants ignores the offset.
            assert!(
                *after != before || after.at.offset() != before.at.offset(),
                "{field} did not change"
            );
            assert_eq!(
                walk(&tampered),
                broken(seq),
                "{field} of row {seq} (encoding {})",
                rows[i].encoding
            );
        }
        for (what, alter) in [
            (
                "prev_hash",
                (|r: &mut MemRow| r.prev_hash[0] ^= 1) as fn(&mut MemRow),
            ),
            ("hash", |r| r.hash[31] ^= 1),
            ("encoding 1 -> 2, 2 -> 1", |r| r.encoding = 3 - r.encoding),
            ("unknown encoding", |r| r.encoding = 3),
            ("no encoding", |r| r.encoding = 0),
        ] {
            let mut tampered = rows.clone();
            alter(&mut tampered[i]);
            assert_eq!(walk(&tampered), broken(seq), "{what} of row {seq}");
        }
    }
    // A row whose columns do not parse.
    let mut walker = ChainWalk::new();
    let r = &rows[0];
    assert!(!walker.check(StoredRow {
        seq: r.seq,
        encoding: r.encoding,
        event: None,
        prev_hash: &r.prev_hash,
        hash: &r.hash,
    }));
    assert_eq!(walker.verification(), broken(1));
}

#[test]
fn a_v1_row_after_a_v2_row_is_a_downgrade_even_with_a_matching_hash() {
    let mut rows = mixed_rows();
    let last = rows.last().unwrap().clone();
    let event = AuditEvent::new(last.event.at, "mallory", "worker", AuditAction::Read);
    rows.push(MemRow {
        seq: last.seq + 1,
        encoding: 1,
        hash: event.chain_hash_as(Encoding::V1, &last.hash),
        prev_hash: last.hash,
        event,
    });
    assert_eq!(walk(&rows), broken(8));
}

/// Lays out the data directory of a Regie from before migration 0010: the schema up to
/// migration 9 and the fixture's rows as the V1 code inserted them.
async fn old_data_dir(dir: &std::path::Path) {
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(dir.join("regie.sqlite3"))
        .create_if_missing(true)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    sqlx::migrate!("./migrations/sqlite")
        .run_to(9, &pool)
        .await
        .unwrap();
    let columns: Vec<String> = sqlx::query("SELECT name FROM pragma_table_info('audit')")
        .fetch_all(&pool)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(!columns.iter().any(|c| c == "encoding"), "{columns:?}");
    for f in fixture() {
        sqlx::query("INSERT INTO audit (seq, at, actor, role, on_behalf_of, dossier, document, persons, action, basis, outcome, device, detail, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
            .bind(f.seq)
            .bind(&f.at)
            .bind(&f.actor)
            .bind(&f.role)
            .bind(&f.on_behalf_of)
            .bind(&f.dossier)
            .bind(&f.document)
            .bind(&f.persons)
            .bind(&f.action)
            .bind(&f.basis)
            .bind(&f.outcome)
            .bind(&f.device)
            .bind(&f.detail)
            .bind(hex::decode(&f.prev_hash).unwrap())
            .bind(hex::decode(&f.hash).unwrap())
            .execute(&pool)
            .await
            .unwrap();
    }
    pool.close().await;
}

#[tokio::test]
async fn an_old_data_dir_verifies_after_the_migration_and_after_new_rows() {
    let dir = tempfile::tempdir().unwrap();
    old_data_dir(dir.path()).await;
    let args = || crate::config::StoreArgs::sqlite(dir.path());
    // `regie-server verify-audit` on the old directory, which migrates it.
    crate::verify_audit(args()).await.unwrap();

    let store = Store::open(dir.path()).await.unwrap();
    assert_eq!(store.verify_audit().await.unwrap(), intact(4));
    for event in new_events() {
        store.append_audit(&event).await.unwrap();
    }
    assert_eq!(store.verify_audit().await.unwrap(), intact(7));
    let encodings: Vec<i64> = sqlx::query("SELECT encoding FROM audit ORDER BY seq")
        .fetch_all(store.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(encodings, [1, 1, 1, 1, 2, 2, 2]);
    // The events read back are the ones written, old and new.
    let read: Vec<AuditEvent> = store
        .audit_events(None)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, e)| e)
        .collect();
    let mut written: Vec<AuditEvent> = fixture().iter().map(FixtureRow::event).collect();
    written.extend(new_events());
    assert_eq!(read, written);
    drop(store);
    crate::verify_audit(args()).await.unwrap();

    // Someone with the file alters an old row, then (on a copy) a new one.
    let tamper = |seq: i64, sql: &'static str| {
        let dir = dir.path().to_owned();
        async move {
            let copy = tempfile::tempdir().unwrap();
            let store = Store::open(&dir).await.unwrap();
            sqlx::query("VACUUM INTO ?")
                .bind(copy.path().join("regie.sqlite3").display().to_string())
                .execute(store.pool())
                .await
                .unwrap();
            drop(store);
            let store = Store::open(copy.path()).await.unwrap();
            sqlx::query("DROP TRIGGER audit_is_append_only_update")
                .execute(store.pool())
                .await
                .unwrap();
            sqlx::query(sql)
                .bind(seq)
                .execute(store.pool())
                .await
                .unwrap();
            assert_eq!(store.verify_audit().await.unwrap(), broken(seq), "{sql}");
            drop(store);
            let err = crate::verify_audit(crate::config::StoreArgs::sqlite(copy.path()))
                .await
                .unwrap_err();
            assert!(
                err.to_string()
                    .contains(&format!("audit log broken at row {seq}")),
                "{err}"
            );
        }
    };
    tamper(2, "UPDATE audit SET detail = 'safety' WHERE seq = ?").await;
    tamper(
        3,
        "UPDATE audit SET at = '2024-10-27T00:30:00Z' WHERE seq = ?",
    )
    .await;
    tamper(5, "UPDATE audit SET persons = 'p-a' WHERE seq = ?").await;
    tamper(6, "UPDATE audit SET encoding = 1 WHERE seq = ?").await;
    tamper(4, "UPDATE audit SET encoding = 2 WHERE seq = ?").await;
}

/// The codes are stored in every row and hashed: they may not change. Each is derived once
/// from the variant's name and reads back as the same action through text, parsing and serde.
#[test]
fn action_codes_are_the_stored_ones_and_read_back() {
    use strum::VariantArray;
    let codes: Vec<&str> = AuditAction::VARIANTS.iter().map(|a| a.as_str()).collect();
    assert_eq!(
        codes,
        [
            "open",
            "write",
            "reject",
            "deny",
            "revoke",
            "read",
            "offline_read",
            "create",
            "relate",
            "break_glass",
            "audit_read",
            "review",
            "signal",
            "destroy",
            "export",
            "rights",
            "breach",
            "key",
        ]
    );
    for &a in AuditAction::VARIANTS {
        assert_eq!(a.as_str().parse::<AuditAction>(), Ok(a));
        assert_eq!(serde_json::to_value(a).unwrap(), a.as_str());
        let e = AuditEvent::new(datetime!(2026-01-01 00:00 UTC), "u", "worker", a);
        assert_eq!(e.kind(), Some(a));
    }
    assert!("Open".parse::<AuditAction>().is_err());
    assert!("offline-read".parse::<AuditAction>().is_err());
}
