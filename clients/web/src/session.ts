// Who is logged in on this device, and the client that syncs their caseload into IndexedDB,
// sealed with the device key (R29). The token and the key live in memory only: a reload, an idle
// period or logout drops them and the app is locked until the user logs in again, which needs
// the server (the key is released by it, after authentication). What stays in localStorage is
// who was last here (user id, role, database name: no token, no content), so the lock screen can
// say whose dossiers are on the device, and the sync bookkeeping (document ids and heads).
// Logout deletes the IndexedDB database and all of it. Nothing personal goes into a URL or the
// console.

import * as A from "@automerge/automerge"
import {
  RegieClient,
  WriteRefusedError,
  closeIndexedDB,
  openSealedDatabase,
  type RegieDocument,
  type SealedDatabase,
  type WebSocketFactory,
} from "@regie/client/browser"
import type { CaseloadEntry, RejectedEvent, RefusedEdit } from "@regie/client/browser"

export interface Claims {
  sub: string
  role: string
  district?: string
  team?: string
  org?: string
  person?: string
  exp?: number
}

/** Who was last logged in on this device: kept in localStorage, without the token. */
export interface Account {
  claims: Claims
  /** The IndexedDB database of this user on this device. */
  database: string
}

/** A logged-in user: the account and the token, in memory only. */
export interface Session extends Account {
  token: string
}

const ACCOUNT_KEY = "regie.session"
const SYNC_KEY = "regie.sync"
/** Databases whose deletion was blocked (a connection still open); deleted at the next start. */
const DOOMED_KEY = "regie.doomed"
/** How long the key is held without use when the server does not say (R29). */
export const DEFAULT_IDLE_SECONDS = 15 * 60

/** Reads a JWT's claims without verifying it (the server verifies); undefined if unreadable. */
export function readClaims(token: string): Claims | undefined {
  try {
    const part = token.split(".")[1]
    const json = atob(part.replace(/-/g, "+").replace(/_/g, "/"))
    const claims = JSON.parse(json)
    if (typeof claims.sub !== "string" || typeof claims.role !== "string") return undefined
    return claims
  } catch {
    return undefined
  }
}

async function userHash(sub: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(sub))
  return [...new Uint8Array(digest)].map(b => b.toString(16).padStart(2, "0")).join("").slice(0, 16)
}

/** The sealed database of a user. (Before R29 it was `regie-<hash>`, unsealed.) */
export async function databaseName(sub: string): Promise<string> {
  return `regie-sealed-${await userHash(sub)}`
}

/** Who was last here, if anyone. A session an earlier version stored (token included, for an
 * unsealed database) is removed: its token must not stay on disk. */
export function storedAccount(): Account | undefined {
  try {
    const s = JSON.parse(localStorage.getItem(ACCOUNT_KEY) ?? "null")
    if (!s || typeof s.claims?.sub !== "string" || typeof s.database !== "string") return undefined
    const account = { claims: s.claims as Claims, database: s.database as string }
    if ("token" in s || !account.database.startsWith("regie-sealed-")) {
      localStorage.removeItem(ACCOUNT_KEY)
      return undefined
    }
    return account
  } catch {
    return undefined
  }
}

/** A session for `token` (in memory); the account without the token goes to localStorage. */
export async function newSession(token: string): Promise<Session | undefined> {
  const claims = readClaims(token.trim())
  if (!claims) return undefined
  const database = await databaseName(claims.sub)
  localStorage.setItem(ACCOUNT_KEY, JSON.stringify({ claims, database }))
  return { token: token.trim(), claims, database }
}

/** Deletes a database; true once it is gone, false if an open connection blocks it. */
function deleteDatabase(name: string): Promise<boolean> {
  return new Promise(resolve => {
    const req = indexedDB.deleteDatabase(name)
    req.onsuccess = () => resolve(true)
    req.onerror = req.onblocked = () => resolve(false)
  })
}

/** At start, before any database opens: finish deletions a logout could not complete, and delete
 * databases an earlier version kept unsealed (`regie-<hash>`; what they held that was not sent
 * is lost, which is the price of not leaving it in clear). */
export async function finishDeletions(): Promise<void> {
  const doomed: string[] = JSON.parse(localStorage.getItem(DOOMED_KEY) ?? "[]")
  const unsealed = ((await indexedDB.databases?.()) ?? [])
    .map(d => d.name ?? "")
    .filter(n => /^regie-[0-9a-f]{16}$/.test(n))
  const left: string[] = []
  for (const name of [...doomed, ...unsealed]) if (!(await deleteDatabase(name))) left.push(name)
  if (left.length > 0) localStorage.setItem(DOOMED_KEY, JSON.stringify(left))
  else localStorage.removeItem(DOOMED_KEY)
}

/** A refused edit, local (the write rules) or from the server (`rejected`). */
export interface Refusal {
  id: number
  at: number
  key: string
  local: boolean
  reason: string
  dropped: RefusedEdit[]
  replayed: number
}

type Listener = () => void

/** The app's view of the client: online state, pending edits, last sync, refusals. */
export class Sync {
  readonly client: RegieClient
  readonly session: Session
  readonly database: SealedDatabase
  /** Seconds without use after which the app drops the key and locks (from the server). */
  readonly idleSeconds: number
  #listeners = new Set<Listener>()
  #serverHeads = new Map<string, string[]>()
  #docs = new Map<string, RegieDocument<any>>()
  #opening = new Map<string, Promise<RegieDocument<any>>>()
  refusals: Refusal[] = []
  notices: string[] = []
  lastSync: number | undefined
  #nextId = 1
  #tick: ReturnType<typeof setTimeout> | undefined
  /** The caseload is asked for again every minute while online (the server sends no event for
   * a new assignment). */
  #refresher = setInterval(() => void this.refresh(), 60_000)
  #closed = false

  private constructor(client: RegieClient, session: Session, database: SealedDatabase) {
    this.client = client
    this.session = session
    this.database = database
    this.idleSeconds = database.idleSeconds ?? DEFAULT_IDLE_SECONDS
    const saved = JSON.parse(localStorage.getItem(SYNC_KEY) ?? "{}")
    this.lastSync = typeof saved.lastSync === "number" ? saved.lastSync : undefined
    for (const [id, heads] of Object.entries(saved.heads ?? {})) this.#serverHeads.set(id, heads as string[])
    client.network.on("message", (m: any) => {
      if ((m.type === "sync" || m.type === "request") && m.data instanceof Uint8Array) {
        try {
          this.#serverHeads.set(m.documentId, A.decodeSyncMessage(m.data).heads)
        } catch {
          return
        }
        this.#changed()
      }
    })
    client.on("connection", online => {
      this.#changed()
      if (online) void this.#prefetch()
    })
    client.on("caseload", () => this.#changed())
    client.on("rejected", (e: RejectedEvent) => {
      this.refusals.push({
        id: this.#nextId++,
        at: Date.now(),
        key: e.key ?? "",
        local: false,
        reason: e.reason,
        dropped: e.dropped,
        replayed: e.replayed,
      })
      this.#changed()
    })
    client.on("purged", e => {
      this.#docs.delete(e.documentId)
      this.#opening.delete(e.documentId)
      this.#serverHeads.delete(e.documentId)
      this.#changed()
    })
    client.on("revoked", e => {
      this.notices.push(e.reason)
      this.#changed()
    })
  }

  /** Asks the server for the device key and opens the sealed database with it. Throws
   * `DeviceRevokedError` (reported lost) or `KeyUnreachableError` (offline) from
   * `@regie/client/browser`. */
  static async start(session: Session, server = location.origin): Promise<Sync> {
    const database = await openSealedDatabase({ server, database: session.database, token: session.token })
    const client = await RegieClient.start({
      server,
      storage: database.storage,
      WebSocket: globalThis.WebSocket as unknown as WebSocketFactory,
      token: async () => session.token,
      backoff: { initialMs: 250, maxMs: 3_000 },
    })
    return new Sync(client, session, database)
  }

  subscribe(l: Listener): () => void {
    this.#listeners.add(l)
    return () => this.#listeners.delete(l)
  }

  #changed(): void {
    // Coalesce bursts of sync messages into one render.
    if (this.#tick || this.#closed) return
    this.#tick = setTimeout(() => {
      this.#tick = undefined
      // After logout nothing may be written again.
      if (this.#closed) return
      if (this.online && this.pending() === 0) this.lastSync = Date.now()
      localStorage.setItem(
        SYNC_KEY,
        JSON.stringify({ lastSync: this.lastSync, heads: Object.fromEntries(this.#serverHeads) }),
      )
      for (const l of this.#listeners) l()
    }, 50)
  }

  get online(): boolean {
    return this.client.online
  }

  get caseload(): CaseloadEntry[] {
    return this.client.caseload
  }

  /** Local changes the server has not acknowledged, over the documents open on this device. */
  pending(): number {
    let n = 0
    for (const d of this.#docs.values()) {
      const doc = d.doc()
      if (!doc) continue
      const heads = this.#serverHeads.get(d.documentId)
      // Unknown until the server has spoken about the document; behind it, nothing is pending.
      if (!heads || !A.hasHeads(doc, heads)) continue
      n += A.getChanges(A.view(doc, heads), doc).length
    }
    return n
  }

  /** Opens every caseload document once online, so it and its write rules are on the device: a
   * dossier never opened online can then still be read and edited offline. */
  async #prefetch(): Promise<void> {
    for (const entry of this.caseload) {
      if (!this.online) return
      await this.open(entry).catch(() => {})
    }
  }

  /** Asks the server for the caseload again (new assignments, grants) and fetches what is new. */
  async refresh(): Promise<void> {
    if (!this.online) return
    await this.client.refreshCaseload().catch(() => {})
    await this.#prefetch()
    this.#changed()
  }

  /** Opens (once) a caseload document and re-renders on each of its changes. */
  open<T>(entry: CaseloadEntry): Promise<RegieDocument<T>> {
    const id = entry.url.replace(/^automerge:/, "")
    let p = this.#opening.get(id)
    if (!p) {
      p = this.client.open<T>(entry.url).then(doc => {
        this.#docs.set(doc.documentId, doc)
        doc.on("change", () => this.#changed())
        doc.on("moved", () => this.#changed())
        return doc
      })
      p.catch(() => this.#opening.delete(id))
      this.#opening.set(id, p)
    }
    return p as Promise<RegieDocument<T>>
  }

  /** Changes a document; an edit the write rules refuse is recorded and shown, not made. */
  change<T>(doc: RegieDocument<T>, fn: A.ChangeFn<T>): boolean {
    try {
      doc.change(fn)
      this.#changed()
      return true
    } catch (e) {
      if (!(e instanceof WriteRefusedError)) throw e
      this.refusals.push({
        id: this.#nextId++,
        at: Date.now(),
        key: doc.key,
        local: true,
        reason: e.refused[0]?.reason ?? "refused",
        dropped: e.refused,
        replayed: 0,
      })
      this.#changed()
      return false
    }
  }

  dismiss(id: number): void {
    this.refusals = this.refusals.filter(r => r.id !== id)
    this.#changed()
  }

  dismissNotices(): void {
    this.notices = []
    this.#changed()
  }

  /** Calls the HTTP API with the session's token. */
  async api<R = any>(method: string, path: string, body?: unknown): Promise<R> {
    const res = await fetch(path, {
      method,
      headers: {
        authorization: `Bearer ${this.session.token}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    const text = await res.text()
    const json = text ? JSON.parse(text) : null
    if (!res.ok) throw new Error(json?.error?.message ?? `HTTP ${res.status}`)
    return json as R
  }

  async close(): Promise<void> {
    this.#closed = true
    clearInterval(this.#refresher)
    await this.client.close()
  }

  /** Stops syncing (what is unsaved is saved first), drops the key and closes the database
   * connection, so the database can be deleted. Nothing opens it again without a new key. */
  async closeDatabase(): Promise<void> {
    await this.close().catch(() => {})
    this.database.storage.lock()
    await closeIndexedDB(this.database.inner)
  }
}

/** Erases what this device holds of `account`: its database and the app's local records. */
export async function wipe(account: Account): Promise<void> {
  localStorage.removeItem(ACCOUNT_KEY)
  localStorage.removeItem(SYNC_KEY)
  if (!(await deleteDatabase(account.database))) {
    localStorage.setItem(DOOMED_KEY, JSON.stringify([account.database]))
    location.reload()
  }
}

/** Logout: stop syncing, then delete the database, the account and the sync bookkeeping. */
export async function logout(sync: Sync | undefined, account: Account): Promise<void> {
  if (sync) await sync.closeDatabase()
  await wipe(account)
}
