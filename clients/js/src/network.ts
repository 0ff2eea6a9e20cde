// The network adapter: automerge-repo's protocol "1" over one WebSocket to a Regie server, with
// the token in `Sec-WebSocket-Protocol` (`regie.v1` plus `regie.token.<jwt>`; the server echoes
// only `regie.v1`), reconnection with jittered exponential backoff and a fresh token from the
// application's callback on every attempt, and Regie's extension messages (`rejected`,
// `revoked`, `replaced`) taken off the wire before automerge-repo sees them (it would drop
// them). It is a `NetworkAdapter` subclass, automerge-repo's public extension point: the repo
// itself is unmodified.

import {
  NetworkAdapter,
  cbor,
  type Message,
  type PeerId,
  type PeerMetadata,
} from "@automerge/automerge-repo"

/** The subprotocol Regie's `/sync` speaks. */
export const SYNC_SUBPROTOCOL = "regie.v1"
/** The prefix of the subprotocol that carries the token. */
export const TOKEN_SUBPROTOCOL_PREFIX = "regie.token."

/** Why the client asks the application for a token. */
export type TokenReason =
  /** The first connection. */
  | "initial"
  /** A reconnection after the network or server went away. */
  | "reconnect"
  /** The server ended the session because the token expired: a new token is needed. */
  | "expired"
  /** The server refused the token (HTTP 401): a new token is needed. */
  | "unauthorized"

/** Returns a bearer token (a JWT) for the server; called before every connection attempt. */
export type TokenCallback = (reason: TokenReason) => Promise<string>

/** The smallest WebSocket the adapter needs: the browser's, or the `ws` package's. */
export interface WebSocketLike {
  binaryType: string
  readonly protocol: string
  send(data: ArrayBufferLike | Uint8Array): void
  close(code?: number, reason?: string): void
  onopen: ((ev: unknown) => void) | null
  onclose: ((ev: { code: number; reason: string }) => void) | null
  onerror: ((ev: unknown) => void) | null
  onmessage: ((ev: { data: unknown }) => void) | null
}

/** A WebSocket constructor taking a URL and the offered subprotocols. */
export type WebSocketFactory = new (url: string, protocols: string[]) => WebSocketLike

/** `rejected`: the server refused a batch of this device's changes whole (I2). */
export interface RejectedMessage {
  type: "rejected"
  documentId: string
  reason: string
  detail?: string
  /** The refused change hashes, lower-case hex. */
  changes: string[]
}

/** `revoked`: the device may no longer hold the document and must purge it (R28). */
export interface RevokedMessage {
  type: "revoked"
  documentId: string
  reason: string
}

/** `replaced`: the document was rewritten under `newDocumentId`; the old id is refused forever. */
export interface ReplacedMessage {
  type: "replaced"
  documentId: string
  newDocumentId: string
}

/** One of Regie's three extension messages. */
export type RegieMessage = RejectedMessage | RevokedMessage | ReplacedMessage

/** Backoff between connection attempts. */
export interface Backoff {
  /** The first wait, in ms (default 250). */
  initialMs: number
  /** The longest wait, in ms (default 10 000). */
  maxMs: number
}

/** What the adapter needs from its owner. */
export interface AdapterOptions {
  /** The `/sync` URL, `ws://…` or `wss://…`. */
  url: string
  token: TokenCallback
  WebSocket: WebSocketFactory
  backoff: Backoff
  /** Runs before each connection attempt with the token (listing, uploads); may throw. */
  beforeConnect: (token: string) => Promise<void>
  /** Regie's extension messages. */
  onRegieMessage: (message: RegieMessage) => void
  /** Every automerge sync message the server sends, before the repo applies it. */
  onServerSync: (documentId: string, data: Uint8Array) => void
  /** `doc-unavailable` from the server. */
  onUnavailable: (documentId: string) => void
  /** False for documents the client purged: nothing about them reaches the repo again. */
  shouldDeliver: (documentId: string) => boolean
  /** The connection came up (after `peer`) or went down. */
  onConnection: (online: boolean) => void
  /** Diagnostics (never the token). */
  log: (line: string) => void
}

/** An HTTP answer that says the token is not accepted. */
export class UnauthorizedError extends Error {
  constructor(message: string) {
    super(message)
    this.name = "UnauthorizedError"
  }
}

const sleep = (ms: number) => new Promise<void>(r => setTimeout(r, ms))

/** A Regie server as an automerge-repo peer over a reconnecting WebSocket. */
export class RegieNetworkAdapter extends NetworkAdapter {
  #options: AdapterOptions
  #socket: WebSocketLike | undefined
  #serverPeer: PeerId | undefined
  #stopped = false
  #attempt = 0
  #nextReason: TokenReason = "initial"
  #ready = false
  #readyResolvers: Array<() => void> = []
  #wake: (() => void) | undefined
  /** Connections that came up (a test counts reconnections with it). */
  connections = 0
  /** Protocol messages sent and received, by type (diagnostics). */
  readonly counts = { sent: {} as Record<string, number>, received: {} as Record<string, number> }

  constructor(options: AdapterOptions) {
    super()
    this.#options = options
  }

  override isReady(): boolean {
    return this.#ready
  }

  /** Resolves after the first connection attempt, whether it succeeded or not, so that a
   * `find` of a document that is not stored does not hang while offline. */
  override whenReady(): Promise<void> {
    if (this.#ready) return Promise.resolve()
    return new Promise(resolve => this.#readyResolvers.push(resolve))
  }

  #markReady() {
    if (this.#ready) return
    this.#ready = true
    for (const r of this.#readyResolvers.splice(0)) r()
  }

  override connect(peerId: PeerId, peerMetadata?: PeerMetadata): void {
    this.peerId = peerId
    this.peerMetadata = peerMetadata
    void this.#loop()
  }

  /** Whether a session with the server is up. */
  get online(): boolean {
    return this.#serverPeer !== undefined
  }

  /** Cuts the current connection (the loop reconnects); for tests and "go offline" buttons. */
  dropConnection(): void {
    this.#socket?.close(4000, "client dropped the connection")
  }

  /** Skips the current backoff wait. */
  retryNow(): void {
    this.#wake?.()
  }

  async #loop(): Promise<void> {
    while (!this.#stopped) {
      const reason = this.#nextReason
      let failedFast = true
      try {
        const token = await this.#options.token(reason)
        if (this.#stopped) break
        await this.#options.beforeConnect(token)
        if (this.#stopped) break
        const ended = await this.#session(token)
        failedFast = !ended.wasUp
        this.#nextReason = ended.expired ? "expired" : "reconnect"
        if (ended.wasUp) this.#attempt = 0
      } catch (e) {
        this.#nextReason = e instanceof UnauthorizedError ? "unauthorized" : "reconnect"
        this.#options.log(`connection attempt failed: ${(e as Error).message}`)
      }
      this.#markReady()
      if (this.#stopped) break
      // An expired token is replaced at once; otherwise back off, more after each failure.
      if (this.#nextReason === "expired" && !failedFast) continue
      this.#attempt += 1
      const base = Math.min(
        this.#options.backoff.maxMs,
        this.#options.backoff.initialMs * 2 ** Math.min(this.#attempt - 1, 16),
      )
      const wait = base * (0.5 + 0.5 * Math.random())
      await new Promise<void>(resolve => {
        const t = setTimeout(resolve, wait)
        this.#wake = () => {
          clearTimeout(t)
          resolve()
        }
      })
      this.#wake = undefined
    }
  }

  /** One connection, from opening the socket to its close. */
  #session(token: string): Promise<{ wasUp: boolean; expired: boolean }> {
    return new Promise((resolve, reject) => {
      let socket: WebSocketLike
      try {
        socket = new this.#options.WebSocket(this.#options.url, [
          SYNC_SUBPROTOCOL,
          TOKEN_SUBPROTOCOL_PREFIX + token,
        ])
      } catch (e) {
        reject(e)
        return
      }
      this.#socket = socket
      socket.binaryType = "arraybuffer"
      let wasUp = false
      let expired = false
      let opened = false
      socket.onopen = () => {
        opened = true
        if (socket.protocol !== SYNC_SUBPROTOCOL) {
          this.#options.log(`server selected subprotocol "${socket.protocol}", not ${SYNC_SUBPROTOCOL}`)
        }
        const join = {
          type: "join",
          senderId: this.peerId,
          peerMetadata: this.peerMetadata ?? {},
          supportedProtocolVersions: ["1"],
        }
        socket.send(cbor.encode(join))
      }
      socket.onerror = () => {
        // The close event follows and settles the session.
      }
      socket.onclose = ev => {
        if (this.#socket === socket) this.#socket = undefined
        if (this.#serverPeer) {
          const peerId = this.#serverPeer
          this.#serverPeer = undefined
          this.emit("peer-disconnected", { peerId })
          this.#options.onConnection(false)
        }
        if (!opened) {
          // A refused upgrade (HTTP 401 for a bad token) ends here without an open.
          reject(new Error(`the WebSocket did not open (${ev.code} ${ev.reason})`))
          return
        }
        resolve({ wasUp, expired })
      }
      socket.onmessage = ev => {
        const bytes = toBytes(ev.data)
        if (!bytes) return
        let message: Record<string, unknown>
        try {
          message = cbor.decode(bytes) as Record<string, unknown>
        } catch {
          this.#options.log("undecodable frame from the server")
          return
        }
        const type = String(message.type)
        this.counts.received[type] = (this.counts.received[type] ?? 0) + 1
        switch (message.type) {
          case "peer": {
            wasUp = true
            this.connections += 1
            this.#serverPeer = message.senderId as PeerId
            this.#markReady()
            this.emit("peer-candidate", {
              peerId: message.senderId as PeerId,
              peerMetadata: (message.peerMetadata ?? {}) as PeerMetadata,
            })
            this.#options.onConnection(true)
            return
          }
          case "error": {
            const text = String(message.message ?? "")
            if (text.includes("token expired")) expired = true
            this.#options.log(`server error: ${text}`)
            return
          }
          case "rejected":
          case "revoked":
          case "replaced":
            this.#options.onRegieMessage(message as unknown as RegieMessage)
            return
        }
        if (typeof message.documentId === "string") {
          if (!this.#options.shouldDeliver(message.documentId)) return
          if (message.type === "doc-unavailable") this.#options.onUnavailable(message.documentId)
          if (
            (message.type === "sync" || message.type === "request") &&
            message.data instanceof Uint8Array
          ) {
            this.#options.onServerSync(message.documentId, message.data)
          }
        }
        this.emit("message", message as unknown as Message)
      }
    })
  }

  override send(message: Message): void {
    const socket = this.#socket
    if (!socket || !this.#serverPeer) return
    const documentId = (message as { documentId?: string }).documentId
    if (documentId && !this.#options.shouldDeliver(documentId)) return
    // automerge-repo gossips ephemeral messages on to its other peers under the original
    // sender's id; the server is the only peer and already relays presence to every device of
    // the document, so a forward would only come back to it (and a senderId that is not ours
    // ends the session).
    if (message.type === "ephemeral" && message.senderId !== this.peerId) return
    this.counts.sent[message.type] = (this.counts.sent[message.type] ?? 0) + 1
    // The repo gives `data` as a Uint8Array view; cbor-x encodes it as a byte string.
    socket.send(cbor.encode(message))
  }

  override disconnect(): void {
    this.#stopped = true
    this.#wake?.()
    this.#socket?.close(1000, "client shut down")
    this.#markReady()
  }
}

function toBytes(data: unknown): Uint8Array | undefined {
  if (data instanceof ArrayBuffer) return new Uint8Array(data)
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
  if (Array.isArray(data)) {
    // `ws` may deliver fragmented messages as a list of Buffers.
    const parts = data as Uint8Array[]
    const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0))
    let at = 0
    for (const p of parts) {
      out.set(p, at)
      at += p.byteLength
    }
    return out
  }
  return undefined
}

export { sleep }
