//! [`Client`]: one device profile — its store, its login, the caseload, local opens (recorded
//! for the audit log, I3) and policy-checked edits (I5). A login is also the unlock (R29): the
//! server checks the token, releases this device's key for it, and the store holds key and
//! token in memory until it is idle for the configured time; a device reported lost is refused
//! its key and stays locked. Sync lives in `crate::sync`.

use std::path::Path;
use std::time::Duration;

use automerge::{Automerge, ReadDoc};
use base64::Engine;
use regie_core::id::{DocumentKey, DossierId, OrgId};
use regie_core::policy::{Action, Decision, decide};
use regie_core::principal::{Claims, Principal, Role};
use regie_core::relationship::Relationships;
use regie_core::validation::check_batch;
use regie_sync_protocol::DocumentId;
use serde::Deserialize;
use time::{Date, OffsetDateTime};

use crate::edit::{
    self, Editor, GoalChanges, MaatwerkOutcome, NewAction, NewConsent, NewEntry, NewGoal,
    NewTriage, PartnerState,
};
use crate::error::{ClientError, LockReason, Result};
use crate::seal::DeviceKey;
use crate::store::{
    COMPACT_AFTER, DeviceStore, DocumentInfo, DocumentWrite, OfflineRead, Profile, PurgeRecord,
};

/// How the sync engine connects and retries.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// Connection attempts per sync before giving up (at least 1).
    pub max_attempts: u32,
    /// The first retry waits about this long (jittered), doubling each time.
    pub initial_backoff: Duration,
    /// The longest wait between attempts.
    pub max_backoff: Duration,
    /// A connection that says nothing for this long while documents are outstanding is dropped
    /// and retried.
    pub idle_timeout: Duration,
    /// Timeout of each HTTP call and of the WebSocket handshake.
    pub request_timeout: Duration,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            max_attempts: 6,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(20),
            request_timeout: Duration::from_secs(15),
        }
    }
}

/// A device profile: the library's entry point.
pub struct Client {
    pub(crate) store: DeviceStore,
    pub(crate) http: reqwest::Client,
    pub(crate) options: SyncOptions,
}

/// What a login found.
#[derive(Debug, Clone)]
pub struct LoginReport {
    /// The user id.
    pub user: String,
    /// The role.
    pub role: Role,
    /// How many documents the server lists for this user.
    pub documents: usize,
    /// Documents of a previous user that were purged from the device.
    pub purged: Vec<PurgeRecord>,
}

/// A document opened on the device.
#[derive(Debug, Clone)]
pub struct OpenedDocument {
    /// Which document.
    pub info: DocumentInfo,
    /// Its content as JSON.
    pub content: serde_json::Value,
    /// Its heads (hex).
    pub heads: Vec<String>,
    /// Local changes the server has not acknowledged yet.
    pub pending_changes: usize,
}

/// The device's state for `regie status`.
#[derive(Debug, Clone)]
pub struct Status {
    /// The profile's device identity and login.
    pub profile: Profile,
    /// Documents listed for this user.
    pub documents: usize,
    /// Documents with content on the device.
    pub held: usize,
    /// Local changes the server has not acknowledged, over all documents.
    pub pending_changes: usize,
    /// Offline reads waiting for upload.
    pub pending_reads: usize,
    /// Whether the server answered its health check (None when not logged in).
    pub server_reachable: Option<bool>,
}

/// One row of `GET /api/v1/me/documents`.
#[derive(Debug, Deserialize)]
pub(crate) struct Listed {
    dossier: DossierId,
    key: DocumentKey,
    url: String,
    access: regie_core::policy::Mode,
    basis: regie_core::policy::Basis,
    district: regie_core::id::DistrictId,
    team: regie_core::id::TeamId,
    #[serde(default)]
    closed: bool,
}

impl Listed {
    fn into_info(self) -> Result<DocumentInfo> {
        Ok(DocumentInfo {
            id: DocumentId::from_url(&self.url)
                .map_err(|e| ClientError::Protocol(format!("the server listed a bad url: {e}")))?,
            dossier: self.dossier,
            key: self.key,
            access: self.access,
            basis: self.basis,
            district: self.district,
            team: self.team,
            closed: self.closed,
        })
    }
}

/// The body of `POST /api/v1/me/device-key`.
#[derive(serde::Serialize)]
struct DeviceKeyRequest<'a> {
    device: &'a str,
}

/// The server's answer: the key's id and the key, base64. Not `Debug`: it holds the key.
#[derive(Deserialize)]
struct DeviceKeyBody {
    key_id: String,
    key: String,
}

#[derive(Deserialize)]
struct ApiErrorBody {
    error: ApiErrorDetail,
}

#[derive(Deserialize)]
struct ApiErrorDetail {
    code: String,
    message: String,
}

/// Reads the claims out of a JWT without verifying it: the server verifies every use; the
/// device only needs the claims to ask the policy locally.
pub fn token_claims(token: &str) -> Result<(Claims, Option<OffsetDateTime>)> {
    let payload = token.split('.').nth(1).ok_or_else(|| {
        ClientError::BadToken("not a JWT (expected three dot-separated parts)".into())
    })?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| ClientError::BadToken("the payload is not base64url".into()))?;
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|_| ClientError::BadToken("the payload is not JSON".into()))?;
    let claims: Claims = serde_json::from_value(value.clone())
        .map_err(|e| ClientError::BadToken(format!("the claims are not Regie claims: {e}")))?;
    Principal::from_claims(&claims).map_err(|e| ClientError::BadToken(e.to_string()))?;
    let exp = value
        .get("exp")
        .and_then(serde_json::Value::as_i64)
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok());
    Ok((claims, exp))
}

pub(crate) fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

impl Client {
    /// Opens the device profile in `dir` (creating it on first use).
    pub async fn open(dir: &Path) -> Result<Client> {
        // reqwest and tungstenite use rustls; ring is the provider (once per process).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let options = SyncOptions::default();
        let http = reqwest::Client::builder()
            .timeout(options.request_timeout)
            .build()
            .map_err(|e| ClientError::Protocol(format!("cannot set up HTTP: {e}")))?;
        Ok(Client {
            store: DeviceStore::open(dir).await?,
            http,
            options,
        })
    }

    /// Replaces the sync options (e.g. shorter backoff in tests).
    pub fn with_options(mut self, options: SyncOptions) -> Self {
        self.options = options;
        self
    }

    /// Sets how long the store stays unlocked without being used before it drops its key
    /// (default [`crate::DEFAULT_IDLE_LOCK`]); after that, log in again.
    pub fn with_idle_lock(self, idle: Duration) -> Self {
        self.store.set_idle_lock(idle);
        self
    }

    /// Whether the store is locked: no device key in memory, so no content is read or
    /// written until the next login.
    pub fn is_locked(&self) -> bool {
        self.store.is_locked()
    }

    /// Drops the device key and the token from memory now (e.g. when the app goes to the
    /// background); the next login unlocks again.
    pub fn lock(&self) {
        self.store.lock(LockReason::NotUnlocked);
    }

    /// The device store (read-only inspection: purges, pending reads, stored bytes).
    pub fn store(&self) -> &DeviceStore {
        &self.store
    }

    /// The profile's storage id: how the server knows this device.
    pub async fn device_id(&self) -> Result<String> {
        Ok(self.store.profile().await?.storage_id)
    }

    /// Logs in to the server at `server_url` with `token` and unlocks the store: the server
    /// must accept the token (by listing the user's documents) and release this device's key
    /// for it ([`ClientError::DeviceLost`] when the device was reported lost). Key and token
    /// stay in memory only; the store keeps the server URL and the claims. Logging in as
    /// another user purges the previous user's documents; a store from before encryption is
    /// sealed now.
    pub async fn login(&self, server_url: &str, token: &str) -> Result<LoginReport> {
        let url = server_url.trim().trim_end_matches('/').to_owned();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ClientError::BadToken(format!(
                "the server URL must start with http:// or https:// (got {url})"
            )));
        }
        let token = token.trim();
        let (claims, exp) = token_claims(token)?;
        let listing = self.fetch_listing(&url, token).await?;
        let storage_id = self.store.profile().await?.storage_id;
        let key = self.fetch_device_key(&url, token, &storage_id).await?;
        let mut purged = self.store.set_login(&url, &claims, exp, now()).await?;
        purged.extend(self.store.unlock(key, token, now()).await?);
        purged.extend(self.store.upsert_listing(&listing, now()).await?);
        Ok(LoginReport {
            user: claims.sub.clone(),
            role: claims.role,
            documents: listing.len(),
            purged,
        })
    }

    /// Logs in again to the server of the last login: what unlocks the store after its idle
    /// time, or in a new process.
    pub async fn unlock(&self, token: &str) -> Result<LoginReport> {
        let url = self
            .store
            .profile()
            .await?
            .server_url
            .ok_or(ClientError::NotLoggedIn)?;
        self.login(&url, token).await
    }

    /// Asks the server for this device's key (R29). A refusal with `device_revoked` means the
    /// device was reported lost: the store is locked for good.
    async fn fetch_device_key(&self, url: &str, token: &str, device: &str) -> Result<DeviceKey> {
        use base64::Engine;
        let res = self
            .http
            .post(format!("{url}/api/v1/me/device-key"))
            .bearer_auth(token)
            .json(&DeviceKeyRequest { device })
            .send()
            .await
            .map_err(|e| Self::unreachable(url, &e))?;
        if !res.status().is_success() {
            return match Self::api_error(res).await {
                ClientError::Server {
                    status: 403, code, ..
                } if code == "device_revoked" => {
                    self.store.lock(LockReason::DeviceLost);
                    Err(ClientError::DeviceLost)
                }
                other => Err(other),
            };
        }
        let body: DeviceKeyBody = res
            .json()
            .await
            .map_err(|_| ClientError::Protocol("unexpected device key answer".into()))?;
        let text = zeroize::Zeroizing::new(body.key);
        let bytes = zeroize::Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(text.as_bytes())
                .map_err(|_| ClientError::Protocol("the device key is not base64".into()))?,
        );
        DeviceKey::new(&body.key_id, &bytes)
    }

    /// The logged-in principal, from the stored claims.
    pub async fn principal(&self) -> Result<Principal> {
        let claims = self
            .store
            .profile()
            .await?
            .claims
            .ok_or(ClientError::NotLoggedIn)?;
        Principal::from_claims(&claims).map_err(|e| ClientError::BadToken(e.to_string()))
    }

    /// The profile, server URL and token of an unlocked store.
    pub(crate) async fn login_parts(
        &self,
    ) -> Result<(Profile, String, zeroize::Zeroizing<String>)> {
        let profile = self.store.profile().await?;
        let url = profile.server_url.clone().ok_or(ClientError::NotLoggedIn)?;
        Ok((profile, url, self.store.token()?))
    }

    pub(crate) fn unreachable(url: &str, e: &reqwest::Error) -> ClientError {
        let detail = if e.is_timeout() {
            "timed out".to_owned()
        } else if e.is_connect() {
            "connection refused or no route".to_owned()
        } else {
            e.to_string()
        };
        ClientError::Unreachable {
            url: url.to_owned(),
            detail,
        }
    }

    /// Turns a non-success response into the matching error.
    pub(crate) async fn api_error(res: reqwest::Response) -> ClientError {
        let status = res.status().as_u16();
        let (code, message) = match res.json::<ApiErrorBody>().await {
            Ok(b) => (b.error.code, b.error.message),
            Err(_) => ("unknown".to_owned(), "no error body".to_owned()),
        };
        if status == 401 {
            ClientError::Unauthorized { code, message }
        } else {
            ClientError::Server {
                status,
                code,
                message,
            }
        }
    }

    pub(crate) async fn fetch_listing(&self, url: &str, token: &str) -> Result<Vec<DocumentInfo>> {
        let res = self
            .http
            .get(format!("{url}/api/v1/me/documents"))
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| Self::unreachable(url, &e))?;
        if !res.status().is_success() {
            return Err(Self::api_error(res).await);
        }
        let rows: Vec<Listed> = res
            .json()
            .await
            .map_err(|e| ClientError::Protocol(format!("unexpected listing: {e}")))?;
        rows.into_iter().map(Listed::into_info).collect()
    }

    /// The caseload as last listed (no content; nothing is recorded). Refused while locked,
    /// like everything else of the caseload.
    pub async fn documents(&self) -> Result<Vec<DocumentInfo>> {
        self.store.key()?;
        self.store.documents().await
    }

    /// The relationships of `info`'s dossier as this device sees them.
    pub(crate) fn relationships(who: &Principal, info: &DocumentInfo) -> Relationships {
        let mut rel = Relationships::as_seen_by(
            who,
            info.dossier,
            info.district.clone(),
            info.team.clone(),
            info.basis,
            &info.key,
        );
        rel.closed = info.closed;
        rel
    }

    async fn held(&self, dossier: DossierId, key: &DocumentKey) -> Result<crate::store::Loaded> {
        let what = format!("{key} of dossier {dossier}");
        let info = self
            .store
            .find(dossier, key)
            .await?
            .ok_or_else(|| ClientError::NotHeld(what.clone()))?;
        match self.store.load(info.id).await? {
            Some(l) if !l.doc.get_heads().is_empty() => Ok(l),
            _ => Err(ClientError::NotHeld(what)),
        }
    }

    /// Opens a document for reading. The open is recorded for the server's audit log (who,
    /// what, when by the device clock, which device) and uploaded at the next sync (I3).
    pub async fn open_document(
        &self,
        dossier: DossierId,
        key: &DocumentKey,
    ) -> Result<OpenedDocument> {
        let who = self.principal().await?;
        let loaded = self.held(dossier, key).await?;
        let rel = Self::relationships(&who, &loaded.info);
        let t = now();
        if let Decision::Deny(reason) = decide(&who, Action::Read(key), &rel, t) {
            return Err(ClientError::Denied {
                what: key.to_string(),
                reason,
            });
        }
        self.store
            .record_read(&OfflineRead {
                id: uuid::Uuid::new_v4().to_string(),
                at: t,
                user: who.user.to_string(),
                dossier,
                key: key.clone(),
                document_id: loaded.info.id,
            })
            .await?;
        Ok(OpenedDocument {
            content: crate::json::to_json(&loaded.doc),
            heads: loaded
                .doc
                .get_heads()
                .iter()
                .map(ToString::to_string)
                .collect(),
            pending_changes: pending(&loaded.doc, &loaded.server_heads),
            info: loaded.info,
        })
    }

    /// Edits one document: asks the policy whether this user may write it at all, then runs
    /// `f` on a fork through an [`Editor`] that asks the policy before each write, then checks
    /// the whole batch with regie-core's `check_batch` (the server's own check), and only then
    /// stores the new change. Any refusal leaves the document and the store untouched.
    pub async fn edit<T>(
        &self,
        dossier: DossierId,
        key: &DocumentKey,
        f: impl FnOnce(&mut Editor<'_>) -> Result<T>,
    ) -> Result<T> {
        let who = self.principal().await?;
        let info = self
            .store
            .find(dossier, key)
            .await?
            .ok_or_else(|| ClientError::NotHeld(format!("{key} of dossier {dossier}")))?;
        let rel = Self::relationships(&who, &info);
        let t = now();
        if let Decision::Deny(reason) = decide(&who, Action::Write(key), &rel, t) {
            return Err(ClientError::Denied {
                what: key.to_string(),
                reason,
            });
        }
        let loaded = self.held(dossier, key).await?;
        let before = loaded.doc.get_heads();
        let mut fork: Automerge = loaded.doc.clone();
        fork.set_actor(automerge::ActorId::random());
        let out = {
            let mut editor = Editor::new(fork.transaction(), &who, key, &rel, t);
            let out = f(&mut editor)?;
            editor.commit();
            out
        };
        let new = loaded.doc.get_changes_added(&fork);
        check_batch(&who, key, &rel, t, &fork, &new).map_err(|r| ClientError::Invalid {
            code: r.code.to_owned(),
            path: r.path,
            detail: r.detail,
        })?;
        if new.is_empty() {
            return Ok(out);
        }
        let mut w = DocumentWrite::default();
        if loaded.chunk_count + 1 >= COMPACT_AFTER {
            w.snapshot = Some(fork.save());
        } else {
            w.chunk = Some(fork.save_after(&before));
        }
        self.store.write(info.id, w).await?;
        Ok(out)
    }

    /// Replaces the plan's hulpvraag (merging with concurrent edits of it).
    pub async fn set_hulpvraag(&self, dossier: DossierId, text: &str) -> Result<()> {
        self.edit(dossier, &DocumentKey::Plan, |e| {
            edit::plan::set_hulpvraag(e, text)
        })
        .await
    }

    /// Adds a goal to the plan; returns its id.
    pub async fn add_goal(&self, dossier: DossierId, goal: &NewGoal) -> Result<String> {
        self.edit(dossier, &DocumentKey::Plan, |e| {
            edit::plan::add_goal(e, goal)
        })
        .await
    }

    /// Changes a goal of the plan.
    pub async fn edit_goal(
        &self,
        dossier: DossierId,
        goal: &str,
        changes: &GoalChanges,
    ) -> Result<()> {
        self.edit(dossier, &DocumentKey::Plan, |e| {
            edit::plan::edit_goal(e, goal, changes)
        })
        .await
    }

    /// Adds an action to a goal; returns its id.
    pub async fn add_action(
        &self,
        dossier: DossierId,
        goal: &str,
        action: &NewAction,
    ) -> Result<String> {
        self.edit(dossier, &DocumentKey::Plan, |e| {
            edit::plan::add_action(e, goal, action)
        })
        .await
    }

    /// Adds an agreement to the plan; returns its id.
    pub async fn add_agreement(
        &self,
        dossier: DossierId,
        text: &str,
        made_on: Date,
    ) -> Result<String> {
        self.edit(dossier, &DocumentKey::Plan, |e| {
            edit::plan::add_agreement(e, text, made_on)
        })
        .await
    }

    /// Adds an evaluation moment to the plan (workers only); returns its id.
    pub async fn add_evaluation(
        &self,
        dossier: DossierId,
        date: Date,
        summary: Option<&str>,
    ) -> Result<String> {
        self.edit(dossier, &DocumentKey::Plan, |e| {
            edit::plan::add_evaluation(e, date, summary)
        })
        .await
    }

    /// Adds an entry to the record; returns its id.
    pub async fn add_entry(&self, dossier: DossierId, entry: &NewEntry) -> Result<String> {
        self.edit(dossier, &DocumentKey::Record, |e| {
            edit::record::add_entry(e, entry)
        })
        .await
    }

    /// Records a triage decision (R12); returns its id.
    pub async fn add_triage(&self, dossier: DossierId, triage: &NewTriage) -> Result<String> {
        self.edit(dossier, &DocumentKey::Record, |e| {
            edit::record::add_triage(e, triage)
        })
        .await
    }

    /// Records a consent (R16); returns its id.
    pub async fn add_consent(&self, dossier: DossierId, consent: &NewConsent) -> Result<String> {
        self.edit(dossier, &DocumentKey::Record, |e| {
            edit::record::add_consent(e, consent)
        })
        .await
    }

    /// Records the withdrawal of a consent.
    pub async fn withdraw_consent(
        &self,
        dossier: DossierId,
        consent: &str,
        on: Date,
    ) -> Result<()> {
        self.edit(dossier, &DocumentKey::Record, |e| {
            edit::record::withdraw_consent(e, consent, on)
        })
        .await
    }

    /// A chain partner reports progress on an assigned action.
    pub async fn update_partner_status(
        &self,
        dossier: DossierId,
        org: &OrgId,
        action: &str,
        state: PartnerState,
        note: Option<&str>,
    ) -> Result<()> {
        self.edit(dossier, &DocumentKey::Partner(org.clone()), |e| {
            edit::extract::partner_status(e, action, state, note)
        })
        .await
    }

    /// A worker assigns an action to a chain partner; returns its id.
    pub async fn add_partner_action(
        &self,
        dossier: DossierId,
        org: &OrgId,
        description: &str,
        agreed_on: Date,
    ) -> Result<String> {
        self.edit(dossier, &DocumentKey::Partner(org.clone()), |e| {
            edit::extract::partner_action(e, description, agreed_on)
        })
        .await
    }

    /// A worker fills in the request of a maatwerk extract.
    pub async fn set_maatwerk_request(
        &self,
        dossier: DossierId,
        n: u32,
        requested: &str,
        assessed_need: Option<&str>,
        proposed: Option<&str>,
    ) -> Result<()> {
        self.edit(dossier, &DocumentKey::Maatwerk(n), |e| {
            edit::extract::maatwerk_request(e, requested, assessed_need, proposed)
        })
        .await
    }

    /// The back office records a maatwerk decision.
    pub async fn decide_maatwerk(
        &self,
        dossier: DossierId,
        n: u32,
        outcome: MaatwerkOutcome,
        motivation: &str,
        on: Date,
    ) -> Result<()> {
        self.edit(dossier, &DocumentKey::Maatwerk(n), |e| {
            edit::extract::maatwerk_decision(e, outcome, motivation, on)
        })
        .await
    }

    /// Pending work, last sync and whether the server answers (refused while locked: the
    /// pending work is sealed).
    pub async fn status(&self) -> Result<Status> {
        self.store.key()?;
        let profile = self.store.profile().await?;
        let infos = self.store.documents().await?;
        let (mut held, mut pending_changes) = (0, 0);
        for info in &infos {
            if let Some(l) = self.store.load(info.id).await?
                && !l.doc.get_heads().is_empty()
            {
                held += 1;
                pending_changes += pending(&l.doc, &l.server_heads);
            }
        }
        let server_reachable = match &profile.server_url {
            Some(url) => Some(
                self.http
                    .get(format!("{url}/api/v1/health"))
                    .timeout(Duration::from_secs(3))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success()),
            ),
            None => None,
        };
        Ok(Status {
            documents: infos.len(),
            held,
            pending_changes,
            pending_reads: self.store.pending_reads().await?.len(),
            server_reachable,
            profile,
        })
    }

    /// The heads of a held document (hex), without recording a read.
    pub async fn heads(&self, dossier: DossierId, key: &DocumentKey) -> Result<Vec<String>> {
        let l = self.held(dossier, key).await?;
        Ok(l.doc.get_heads().iter().map(ToString::to_string).collect())
    }
}

/// Local changes not yet in the server's known heads.
pub(crate) fn pending(doc: &Automerge, server_heads: &[automerge::ChangeHash]) -> usize {
    if server_heads
        .iter()
        .all(|h| doc.get_change_by_hash(h).is_some())
    {
        doc.get_changes(server_heads).len()
    } else {
        0
    }
}

#[cfg(test)]
mod tests;
