//! The `/sync` WebSocket upgrade: the RFC 6455 handshake checked as axum's own extractor checks
//! it (400 for a request that is not an upgrade, 426 when the connection cannot be upgraded),
//! then the socket handed to yawc with Regie's limits and permessage-deflate (RFC 7692) where the
//! client offers it. The server imposes no context takeover in both directions, so a connection
//! holds deflate state only while one of its messages is compressed or inflated (the state is
//! borrowed from one pool per process), and an idle connection costs what it cost without
//! compression. Inflation is bounded by the same size limit as an uncompressed frame (I7).

use std::sync::LazyLock;

use axum::extract::FromRequestParts;
use axum::http::header::{CONNECTION, SEC_WEBSOCKET_PROTOCOL, UPGRADE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use regie_sync_protocol::MAX_MESSAGE_BYTES;
use yawc::{DeflatePool, HttpWebSocket, IncomingUpgrade, Options};

use super::ApiError;
use crate::auth::SYNC_SUBPROTOCOL;

/// Messages shorter than this go out uncompressed: a heads-only sync message (~150 bytes of
/// envelope and hashes) barely shrinks without a shared context, and every compressed message
/// costs a deflate reset.
const COMPRESSION_THRESHOLD: usize = 512;

/// Idle deflate and inflate states kept for reuse: about the number of messages compressed at
/// the same moment (worker threads), not the number of connections.
const POOL_CAPACITY: usize = 16;

static POOL: LazyLock<DeflatePool> = LazyLock::new(|| DeflatePool::new(POOL_CAPACITY));

/// The socket options of every sync connection.
pub(super) fn options() -> Options {
    Options::default()
        // Twice the protocol limit, so an oversized message is still read and answered with a
        // clear `error` rather than a bare transport failure; the bound holds for the inflated
        // size of a compressed frame and for a message reassembled from fragments alike.
        .with_max_payload_read(2 * MAX_MESSAGE_BYTES + 1)
        .with_max_read_buffer(2 * MAX_MESSAGE_BYTES + 1)
        // Small starting buffers: most connections are idle; a large frame grows them for as
        // long as it takes, and they shrink back afterwards.
        .with_read_buffer_capacity(4 * 1024)
        .with_write_buffer_capacity(4 * 1024)
        .with_low_latency_compression()
        .server_no_context_takeover()
        .client_no_context_takeover()
        .with_deflate_pool(POOL.clone())
        .with_compression_threshold(COMPRESSION_THRESHOLD)
}

/// A checked request to upgrade `/sync`, and whether the client offered Regie's subprotocol.
pub(super) struct SyncUpgrade {
    upgrade: IncomingUpgrade,
    subprotocol: bool,
}

impl<S: Send + Sync> FromRequestParts<S> for SyncUpgrade {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let not_upgrade = |what: &str| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("not a WebSocket upgrade request: {what}"),
            )
        };
        let headers = &parts.headers;
        if !has_token(headers, CONNECTION, "upgrade") {
            return Err(not_upgrade("`Connection` must include `upgrade`"));
        }
        if !has_token(headers, UPGRADE, "websocket") {
            return Err(not_upgrade("`Upgrade` must be `websocket`"));
        }
        let subprotocol = has_token(headers, SEC_WEBSOCKET_PROTOCOL, SYNC_SUBPROTOCOL);
        if parts
            .extensions
            .get::<hyper::upgrade::OnUpgrade>()
            .is_none()
        {
            return Err(ApiError::new(
                StatusCode::UPGRADE_REQUIRED,
                "upgrade_required",
                "this connection cannot be upgraded to a WebSocket",
            ));
        }
        // yawc checks the key and the version.
        let upgrade = IncomingUpgrade::from_request_parts(parts, state)
            .await
            .map_err(|_| {
                not_upgrade("`Sec-WebSocket-Key` is missing or `Sec-WebSocket-Version` is not 13")
            })?;
        Ok(SyncUpgrade {
            upgrade,
            subprotocol,
        })
    }
}

impl SyncUpgrade {
    /// Answers the upgrade and runs `session` on the socket once the client has switched.
    pub(super) fn on_upgrade<F, Fut>(self, session: F) -> Result<Response, ApiError>
    where
        F: FnOnce(HttpWebSocket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (response, socket) = self.upgrade.upgrade(options()).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("the WebSocket extensions offered cannot be agreed: {e}"),
            )
        })?;
        tokio::spawn(async move {
            match socket.await {
                Ok(socket) => session(socket).await,
                Err(e) => tracing::debug!(error = %e, "the client left during the upgrade"),
            }
        });
        let mut response = response.map(axum::body::Body::new);
        if self.subprotocol {
            // Echo `regie.v1` if offered, never the `regie.token.<jwt>` next to it.
            response.headers_mut().insert(
                SEC_WEBSOCKET_PROTOCOL,
                HeaderValue::from_static(SYNC_SUBPROTOCOL),
            );
        }
        Ok(response)
    }
}

/// Whether a comma-separated header `name` holds `token` (ASCII case-insensitive).
fn has_token(headers: &HeaderMap, name: axum::http::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}
