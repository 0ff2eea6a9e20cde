//! One automerge-repo connection to Regie: the WebSocket upgrade, `join` answered by `peer`, and
//! protocol messages as binary frames. Generic over the byte stream, so the load generator can
//! count every byte through its own socket wrapper while tests use a plain TCP stream; and over
//! two WebSocket stacks: tokio-tungstenite, which never offers compression, and yawc offering
//! permessage-deflate as browsers and Node's `ws` do.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use regie_sync_protocol::{Message, PeerId, PeerMetadata, decode, encode};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Something with a sync endpoint on a socket address: a test server, or just its address.
pub trait Dial {
    /// Where it listens.
    fn socket_addr(&self) -> SocketAddr;
}

impl Dial for SocketAddr {
    fn socket_addr(&self) -> SocketAddr {
        *self
    }
}

/// Why a connection was not made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The server answered the upgrade with this HTTP status (e.g. 401 for a bad token).
    #[error("the upgrade was refused with HTTP {0}")]
    Refused(u16),
    /// The socket or the WebSocket failed.
    #[error("connection failed: {0}")]
    Failed(String),
    /// The server answered `join` with an `error` message: it refused the peer.
    #[error("the join was refused: {0}")]
    JoinRefused(String),
    /// The server did not answer `join` with `peer` in time or answered something else.
    #[error("join failed: {0}")]
    Join(String),
}

impl From<tungstenite::Error> for ConnectError {
    fn from(e: tungstenite::Error) -> Self {
        match e {
            tungstenite::Error::Http(res) => ConnectError::Refused(res.status().as_u16()),
            other => ConnectError::Failed(other.to_string()),
        }
    }
}

/// An upgraded socket of either stack. Frames are tungstenite's [`WsMessage`] on both.
pub enum Socket<S> {
    /// tokio-tungstenite, without extensions.
    Plain(Box<WebSocketStream<S>>),
    /// yawc, having offered permessage-deflate.
    Deflate(Box<yawc::WebSocket<S>>),
}

impl<S> From<WebSocketStream<S>> for Socket<S> {
    fn from(ws: WebSocketStream<S>) -> Self {
        Socket::Plain(Box::new(ws))
    }
}

impl<S> From<yawc::WebSocket<S>> for Socket<S> {
    fn from(ws: yawc::WebSocket<S>) -> Self {
        Socket::Deflate(Box::new(ws))
    }
}

/// What a client offers for permessage-deflate: the extension with no parameters, as Chrome and
/// Node's `ws` offer it; the server decides about context takeover.
pub fn deflate_offer() -> yawc::Options {
    yawc::Options::default()
        .with_balanced_compression()
        .with_max_payload_read(2 * regie_sync_protocol::MAX_MESSAGE_BYTES + 1)
}

impl<S: AsyncRead + AsyncWrite + Unpin> Socket<S> {
    async fn send(&mut self, frame: WsMessage) -> Result<(), tungstenite::Error> {
        match self {
            Socket::Plain(ws) => ws.send(frame).await,
            Socket::Deflate(ws) => {
                let frame = match frame {
                    WsMessage::Binary(b) => yawc::Frame::binary(b),
                    WsMessage::Text(t) => yawc::Frame::text(t.as_str().to_owned()),
                    WsMessage::Ping(b) => yawc::Frame::ping(b),
                    WsMessage::Pong(b) => yawc::Frame::pong(b),
                    WsMessage::Close(c) => {
                        let (code, reason) = c.map_or((1000, String::new()), |c| {
                            (c.code.into(), c.reason.as_str().to_owned())
                        });
                        yawc::Frame::close(code.into(), reason)
                    }
                    WsMessage::Frame(_) => return Err(tungstenite::Error::AttackAttempt),
                };
                ws.send(frame)
                    .await
                    .map_err(|e| tungstenite::Error::Io(std::io::Error::other(e)))
            }
        }
    }

    async fn next(&mut self) -> Option<Result<WsMessage, tungstenite::Error>> {
        match self {
            Socket::Plain(ws) => ws.next().await,
            Socket::Deflate(ws) => {
                use yawc::OpCode;
                let frame = ws.next().await?;
                Some(Ok(match frame.opcode() {
                    OpCode::Text => {
                        WsMessage::Text(String::from_utf8_lossy(frame.payload()).as_ref().into())
                    }
                    OpCode::Ping => WsMessage::Ping(frame.into_payload()),
                    OpCode::Pong => WsMessage::Pong(frame.into_payload()),
                    OpCode::Close => WsMessage::Close(frame.close_code().map(|code| {
                        tungstenite::protocol::CloseFrame {
                            code: u16::from(code).into(),
                            reason: frame
                                .close_reason()
                                .ok()
                                .flatten()
                                .unwrap_or_default()
                                .into(),
                        }
                    })),
                    OpCode::Binary | OpCode::Continuation => {
                        WsMessage::Binary(frame.into_payload())
                    }
                }))
            }
        }
    }

    async fn close(&mut self) {
        match self {
            Socket::Plain(ws) => {
                let _ = ws.as_mut().close(None).await;
            }
            Socket::Deflate(ws) => {
                let _ = ws.close().await;
            }
        }
    }
}

/// A joined connection: this peer's id, the server's, and the socket.
pub struct Connection<S> {
    ws: Socket<S>,
    /// This peer's id.
    pub me: PeerId,
    /// The server's peer id, from its `peer` answer.
    pub server: PeerId,
}

/// A plain connection over TCP (no TLS: tests and benchmarks run on loopback).
pub type Plain = Connection<MaybeTlsStream<TcpStream>>;

impl Plain {
    /// Opens `ws://<addr><path>` (e.g. `/sync?token=…`) and joins as `me`, with `storage` as its
    /// storage id (none: an ephemeral peer).
    pub async fn open(
        addr: SocketAddr,
        path: &str,
        me: PeerId,
        storage: Option<String>,
        within: Duration,
    ) -> Result<Plain, ConnectError> {
        Self::dial(addr, path, me, storage, within, false).await
    }

    /// [`Plain::open`] offering permessage-deflate ([`deflate_offer`]).
    pub async fn open_deflate(
        addr: SocketAddr,
        path: &str,
        me: PeerId,
        storage: Option<String>,
        within: Duration,
    ) -> Result<Plain, ConnectError> {
        Self::dial(addr, path, me, storage, within, true).await
    }

    async fn dial(
        addr: SocketAddr,
        path: &str,
        me: PeerId,
        storage: Option<String>,
        within: Duration,
        offer_deflate: bool,
    ) -> Result<Plain, ConnectError> {
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|e| ConnectError::Failed(e.to_string()))?;
        let url = format!("ws://{addr}{path}");
        let ws = upgrade(&url, MaybeTlsStream::Plain(tcp), offer_deflate).await?;
        Connection::join(ws, me, storage, within).await
    }
}

/// The WebSocket upgrade of `url` over `io`: with yawc offering permessage-deflate
/// ([`deflate_offer`]), or with tokio-tungstenite offering nothing.
pub async fn upgrade<S>(url: &str, io: S, offer_deflate: bool) -> Result<Socket<S>, ConnectError>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    if !offer_deflate {
        let (ws, _) = tokio_tungstenite::client_async(url, io).await?;
        return Ok(ws.into());
    }
    let url = url
        .parse()
        .map_err(|e| ConnectError::Failed(format!("bad URL {url}: {e}")))?;
    let ws = yawc::WebSocket::handshake(url, io, deflate_offer())
        .await
        .map_err(|e| match e {
            yawc::WebSocketError::InvalidStatusCode(status) => ConnectError::Refused(status),
            other => ConnectError::Failed(other.to_string()),
        })?;
    Ok(ws.into())
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    /// Sends `join` on an upgraded socket and waits up to `within` for the server's `peer`.
    pub async fn join(
        ws: impl Into<Socket<S>>,
        me: PeerId,
        storage: Option<String>,
        within: Duration,
    ) -> Result<Connection<S>, ConnectError> {
        let mut c = Connection {
            ws: ws.into(),
            me,
            server: PeerId::new("unknown"),
        };
        let join = Message::Join {
            sender_id: c.me.clone(),
            supported_protocol_versions: vec!["1".into()],
            peer_metadata: Some(PeerMetadata {
                is_ephemeral: storage.is_none(),
                storage_id: storage.map(Into::into),
            }),
        };
        c.send(&join).await?;
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let frame = tokio::time::timeout_at(deadline, c.ws.next())
                .await
                .map_err(|_| ConnectError::Join(format!("no `peer` answer within {within:?}")))?;
            match frame {
                Some(Ok(WsMessage::Binary(b))) => match decode(&b) {
                    Ok(Message::Peer { sender_id, .. }) => {
                        c.server = sender_id;
                        return Ok(c);
                    }
                    Ok(Message::Error { message }) => {
                        return Err(ConnectError::JoinRefused(message));
                    }
                    Ok(other) => return Err(ConnectError::Join(format!("got {other:?}"))),
                    Err(e) => return Err(ConnectError::Join(format!("undecodable: {e}"))),
                },
                Some(Ok(WsMessage::Close(_))) | None => {
                    return Err(ConnectError::Join(
                        "the server closed the connection".into(),
                    ));
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e.into()),
            }
        }
    }

    /// Sends one protocol message.
    pub async fn send(&mut self, m: &Message) -> Result<(), tungstenite::Error> {
        self.send_frame(WsMessage::Binary(encode(m).into())).await
    }

    /// Sends one WebSocket frame as is (for frames that are not protocol messages).
    pub async fn send_frame(&mut self, frame: WsMessage) -> Result<(), tungstenite::Error> {
        self.ws.send(frame).await
    }

    /// The next WebSocket frame; `None` once the stream ended. Cancel-safe, so it can be one
    /// arm of a `select!`.
    pub async fn next_frame(&mut self) -> Option<Result<WsMessage, tungstenite::Error>> {
        self.ws.next().await
    }

    /// Closes the connection, waiting at most two seconds for the server's close frame.
    pub async fn close(&mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), self.ws.close()).await;
    }
}
