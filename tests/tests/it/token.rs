//! Authentication at the door (SPEC §5): forged, expired, not-yet-valid, wrong-issuer,
//! wrong-audience and `alg: none` tokens never open a sync connection or an API call, and the
//! error says what to do without echoing the token.

use base64::Engine;
use jsonwebtoken::{EncodingKey, Header, encode};
use serde_json::json;

use crate::support::*;

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn token(secret: &str, claims: serde_json::Value) -> String {
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn claims(exp: i64, nbf: i64, iss: &str, aud: &str) -> serde_json::Value {
    json!({ "sub": "sanne", "role": "resident", "person": "p-sanne", "exp": exp, "nbf": nbf, "iat": nbf, "iss": iss, "aud": aud })
}

#[tokio::test]
async fn bad_tokens_are_refused_before_the_websocket_opens() {
    let server = TestServer::new().await;
    let t = now();
    let b64 = |v: serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let alg_none = format!(
        "{}.{}.",
        b64(json!({ "alg": "none", "typ": "JWT" })),
        b64(claims(t + 600, t, ISSUER, AUDIENCE))
    );
    let cases = [
        (
            "valid",
            token(SECRET, claims(t + 600, t - 5, ISSUER, AUDIENCE)),
            None,
        ),
        (
            "forged",
            token(
                "another-secret-of-sufficient-length-x",
                claims(t + 600, t, ISSUER, AUDIENCE),
            ),
            Some("token_bad_signature"),
        ),
        (
            "expired",
            token(SECRET, claims(t - 3600, t - 7200, ISSUER, AUDIENCE)),
            Some("token_expired"),
        ),
        (
            "not yet valid",
            token(SECRET, claims(t + 7200, t + 3600, ISSUER, AUDIENCE)),
            Some("token_not_yet_valid"),
        ),
        (
            "wrong issuer",
            token(SECRET, claims(t + 600, t, "someone-else", AUDIENCE)),
            Some("token_wrong_issuer"),
        ),
        (
            "wrong audience",
            token(SECRET, claims(t + 600, t, ISSUER, "other-app")),
            Some("token_wrong_audience"),
        ),
        ("alg none", alg_none, Some("token_algorithm_not_allowed")),
        ("garbage", "not.a.token".to_owned(), Some("token_malformed")),
    ];
    for (name, tok, refusal) in cases {
        let ws = Peer::connect(&server, &tok).await;
        let (status, body) = server
            .api(&tok, "GET", "/api/v1/me/documents", serde_json::Value::Null)
            .await;
        match refusal {
            None => {
                assert!(ws.is_ok(), "{name} token must connect");
                assert_eq!(status, 200, "{name}");
            }
            Some(code) => {
                assert_eq!(ws.err(), Some(401), "{name} token must not open /sync");
                assert_eq!(
                    (status, body["error"]["code"].as_str()),
                    (401, Some(code)),
                    "{name}: {body}"
                );
                assert!(
                    !body.to_string().contains(&tok),
                    "{name}: the error echoes the token"
                );
            }
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn a_missing_token_gets_a_message_that_says_how_to_send_one() {
    let server = TestServer::new().await;
    let res = reqwest::get(format!("http://{}/api/v1/me/documents", server.addr))
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "token_missing");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Authorization: Bearer")
    );
    server.stop().await;
}

#[tokio::test]
async fn a_connection_ends_when_its_token_expires_and_receives_nothing_after() {
    let server = TestServer::new().await;
    let house = seed_household(&server).await;
    let plan = house.doc("plan");
    let short = server
        .state
        .auth
        .mint(&cast("resident"), std::time::Duration::from_secs(2))
        .unwrap();
    let mut sanne = Peer::connect(&server, &short).await.unwrap();
    sanne.request(plan).await;
    assert!(
        sanne
            .wait_for(plan, |d| automerge::ReadDoc::get(
                d,
                automerge::ROOT,
                "goals"
            )
            .unwrap()
            .is_some())
            .await
    );
    let mut ended = None;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(6);
    while ended.is_none() && tokio::time::Instant::now() < deadline {
        match sanne
            .next_within(std::time::Duration::from_millis(500))
            .await
        {
            Some(regie_sync_protocol::Message::Error { message }) => ended = Some(message),
            _ if sanne.closed => break,
            _ => {}
        }
    }
    let message = ended.expect("told before the connection closes");
    assert!(message.contains("token expired"), "{message}");
    // What the worker writes now never reaches the expired connection.
    let mut anna = Peer::connect(&server, &server.token("worker"))
        .await
        .unwrap();
    anna.request(plan).await;
    assert!(
        anna.wait_for(plan, |d| automerge::ReadDoc::get(
            d,
            automerge::ROOT,
            "goals"
        )
        .unwrap()
        .is_some())
            .await
    );
    let before = sanne.received.len();
    anna.edit(plan, |d| {
        use automerge::transaction::Transactable;
        let h = automerge::ReadDoc::get(d, automerge::ROOT, "hulpvraag")
            .unwrap()
            .unwrap()
            .1;
        d.splice_text(&h, 0, 0, "NA-VERLOOP ").unwrap();
    })
    .await;
    sanne.settle(std::time::Duration::from_millis(300)).await;
    assert!(
        sanne.received[before..]
            .iter()
            .all(|m| !matches!(m, regie_sync_protocol::Message::Sync { .. })),
        "no sync after expiry"
    );
    server.stop().await;
}

/// Opens `/sync` offering these subprotocols (no `Authorization`, no `?token=`); the HTTP status
/// of a refusal, or the protocol the server selected and the socket.
async fn connect_with_subprotocols(
    server: &TestServer,
    offered: &str,
) -> Result<
    (
        Option<String>,
        tokio_tungstenite::WebSocketStream<
            tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
        >,
    ),
    u16,
> {
    use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest};
    let mut request = format!("ws://{}/sync", server.addr)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", offered.parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Ok((ws, res)) => Ok((
            res.headers()
                .get("sec-websocket-protocol")
                .map(|v| v.to_str().unwrap().to_owned()),
            ws,
        )),
        Err(tungstenite::Error::Http(res)) => Err(res.status().as_u16()),
        Err(e) => panic!("connect failed: {e}"),
    }
}

// SPEC §5: a browser, which cannot set `Authorization` on a WebSocket, sends its token as the
// `regie.token.<jwt>` subprotocol next to `regie.v1`; the server selects `regie.v1` only, so the
// token never comes back in a header, and a bad token is refused before the upgrade.
#[tokio::test]
async fn the_token_travels_in_sec_websocket_protocol_and_is_never_echoed() {
    use futures_util::{SinkExt, StreamExt};
    use regie_sync_protocol::{Message, PeerId, decode, encode};
    let server = TestServer::new().await;
    let tok = server.token("resident");

    let (selected, mut ws) =
        connect_with_subprotocols(&server, &format!("regie.v1, regie.token.{tok}"))
            .await
            .expect("a valid token in the subprotocol opens /sync");
    assert_eq!(selected.as_deref(), Some("regie.v1"));
    ws.send(tokio_tungstenite::tungstenite::Message::Binary(
        encode(&Message::Join {
            sender_id: PeerId::new("browser-1"),
            supported_protocol_versions: vec!["1".into()],
            peer_metadata: None,
        })
        .into(),
    ))
    .await
    .unwrap();
    let answer = tokio::time::timeout(PATIENCE, ws.next())
        .await
        .expect("an answer to join")
        .expect("a frame")
        .unwrap();
    assert!(
        matches!(decode(&answer.into_data()).unwrap(), Message::Peer { .. }),
        "the handshake completes"
    );

    let forged = tok[..tok.len() - 4].to_owned() + "AAAA";
    assert_eq!(
        connect_with_subprotocols(&server, &format!("regie.v1, regie.token.{forged}"))
            .await
            .err(),
        Some(401),
        "a forged token in the subprotocol is refused"
    );
    assert_eq!(
        connect_with_subprotocols(&server, "regie.v1").await.err(),
        Some(401),
        "no token anywhere is refused"
    );
    server.stop().await;
}
