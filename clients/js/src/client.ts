// The client: an unmodified automerge-repo `Repo` with Regie's network adapter, plus what makes
// it keep Regie's promises, as regie-client (Rust) does: the caseload from the server's listing
// (delisted documents purged), `rejected` → reset to the server's heads and replay of the
// still-permitted edits, `replaced` → the handle moves to the new document, `revoked` → purge,
// local edits checked against the server's write rules before they become changes, and offline
// reads logged and uploaded once (I3).

import * as A from "@automerge/automerge"
import {
  Repo,
  type AutomergeUrl,
  type DocHandle,
  type DocHandleChangePayload,
  type DocumentId,
  type StorageAdapterInterface,
} from "@automerge/automerge-repo"
import { EventEmitter } from "eventemitter3"

import {
  RegieNetworkAdapter,
  UnauthorizedError,
  sleep,
  type Backoff,
  type RegieMessage,
  type TokenCallback,
  type WebSocketFactory,
} from "./network.js"
import { hasHeads, replay } from "./rebase.js"
import { refusedEdits, type RefusedEdit, type WriteRules } from "./rules.js"
import { RegieStore, type CaseloadEntry, type OfflineRead } from "./store.js"

/** How to reach the server and where to keep documents. */
export interface RegieClientOptions {
  /** The server's base URL, e.g. `https://regie.example` or `http://127.0.0.1:8080`. */
  server: string
  /** Returns a token; called before every connection attempt and after a 401. */
  token: TokenCallback
  /** Where documents and Regie's own records live (IndexedDB in browsers, files in Node). */
  storage: StorageAdapterInterface
  /** The WebSocket constructor (the browser's, or `ws` in Node). */
  WebSocket: WebSocketFactory
  /** `fetch`; defaults to the global one. */
  fetch?: typeof fetch
  /** Backoff between connection attempts. */
  backoff?: Partial<Backoff>
  /** automerge-repo's save debounce, in ms (default 100). */
  saveDebounceMs?: number
  /** Diagnostics; never receives a token or dossier content. */
  log?: (line: string) => void
}

/** The server refused a batch; the document was reset and the permitted edits replayed. */
export interface RejectedEvent {
  documentId: string
  url: string
  key?: string
  dossier?: string
  /** The server's reason code, e.g. `path_reserved`. */
  reason: string
  detail?: string
  /** The refused change hashes (hex). */
  changes: string[]
  /** Local edits replayed as new changes. */
  replayed: number
  /** Local edits dropped, each with the policy's reason. */
  dropped: RefusedEdit[]
}

/** The document may no longer be held; it was purged from memory and storage. */
export interface RevokedEvent {
  documentId: string
  key?: string
  dossier?: string
  reason: string
}

/** The document was rewritten under a new id; the handle moved and the old one was purged. */
export interface ReplacedEvent {
  documentId: string
  newDocumentId: string
  key?: string
  dossier?: string
}

/** A document left memory and storage. */
export interface PurgedEvent {
  documentId: string
  /** `revoked:<code>`, `replaced`, `delisted` or `unavailable`. */
  reason: string
}

/** The answer to an offline-read upload. */
export interface ReadsUploadedEvent {
  accepted: string[]
  refused: { id: string; reason: string }[]
}

export interface RegieClientEvents {
  rejected: (e: RejectedEvent) => void
  revoked: (e: RevokedEvent) => void
  replaced: (e: ReplacedEvent) => void
  purged: (e: PurgedEvent) => void
  connection: (online: boolean) => void
  caseload: (entries: CaseloadEntry[]) => void
  "offline-reads-uploaded": (e: ReadsUploadedEvent) => void
}

/** A local edit the write rules refuse; nothing was changed. */
export class WriteRefusedError extends Error {
  constructor(readonly refused: RefusedEdit[]) {
    super(`edit refused: ${refused.map(r => `${r.path} (${r.reason})`).join(", ")}`)
    this.name = "WriteRefusedError"
  }
}

export interface RegieDocumentEvents<T> {
  /** The document changed (locally or from the server). */
  change: (doc: A.Doc<T>) => void
  /** The handle moved: to the reset document after `rejected`, or to a new id after `replaced`. */
  moved: (handle: DocHandle<T>) => void
  /** The document was purged; it can no longer be read or changed. */
  purged: (reason: string) => void
}

/** One caseload document as the application sees it: its current handle (which moves on
 * `rejected` and `replaced`), reading, and edits checked against the write rules. */
export class RegieDocument<T = unknown> extends EventEmitter<RegieDocumentEvents<T>> {
  #client: RegieClient
  #handle: DocHandle<T>
  #purged: string | undefined
  /** Edits made while the document is reset after `rejected`; applied to the reset document. */
  #queued: Array<{ fn: A.ChangeFn<T>; message?: string }> | undefined
  #relay = (p: DocHandleChangePayload<T>) => this.emit("change", p.doc)

  /** @internal */
  constructor(client: RegieClient, readonly entry: CaseloadEntry, handle: DocHandle<T>) {
    super()
    this.#client = client
    this.#handle = handle
    handle.on("change", this.#relay)
  }

  /** The automerge-repo handle (for Presence, `view`, `diff`…); it changes on `moved`. */
  get handle(): DocHandle<T> {
    return this.#handle
  }
  get documentId(): DocumentId {
    return this.#handle.documentId
  }
  get url(): AutomergeUrl {
    return this.#handle.url
  }
  get key(): string {
    return this.entry.key
  }
  get dossier(): string {
    return this.entry.dossier
  }
  /** Why it was purged, once it was. */
  get purged(): string | undefined {
    return this.#purged
  }

  /** The current content (undefined once purged). */
  doc(): A.Doc<T> | undefined {
    // Undefined also for the moment a reset after `rejected` takes.
    return this.#purged || !this.#handle.isReady() ? undefined : this.#handle.doc()
  }

  /** What the caller may write here, as the server last said (undefined: not known yet). */
  rules(): WriteRules | undefined {
    return this.#client.rulesOf(this.documentId)
  }

  /** Makes a change, after checking every edit in it against the write rules: an edit outside
   * them throws {@link WriteRefusedError} and no change is made. `fn` runs once, on a copy. */
  change(fn: A.ChangeFn<T>, message?: string): void {
    if (this.#purged) throw new WriteRefusedError([{ path: "/", reason: `purged:${this.#purged}` }])
    if (this.#queued) {
      // Checked against the rules when applied, after the reset.
      this.#queued.push({ fn, message })
      return
    }
    const rules = this.rules()
    if (!rules) throw new WriteRefusedError([{ path: "/", reason: "rules_unknown" }])
    const current = this.#handle.doc()
    let patches: A.Patch[] = []
    // The edit runs on a copy with the same actor; only a permitted change reaches the handle.
    const trial = A.change(
      A.clone(current, { actor: A.getActorId(current) }),
      { message, patchCallback: p => (patches = p) },
      fn,
    )
    const refused = refusedEdits(rules, patches)
    if (refused.length > 0) throw new WriteRefusedError(refused)
    const change = A.getLastLocalChange(trial)
    if (!change || A.getHeads(trial).every(h => A.getHeads(current).includes(h))) return
    this.#handle.update(d => A.applyChanges(d, [change])[0])
    // Stored now rather than after the repo's save debounce: an app reloaded or closed right
    // after an offline edit would otherwise lose it.
    void this.#client.repo.flush([this.#handle.documentId]).catch(() => undefined)
  }

  /** @internal The document is being reset: edits wait for the reset document. */
  holdEdits(): void {
    this.#queued ??= []
  }

  /** @internal Applies the edits that waited for a reset; returns those the rules refused. */
  releaseEdits(): RefusedEdit[] {
    const queued = this.#queued ?? []
    this.#queued = undefined
    const refused: RefusedEdit[] = []
    for (const { fn, message } of queued) {
      try {
        this.change(fn, message)
      } catch (e) {
        if (e instanceof WriteRefusedError) refused.push(...e.refused)
        else throw e
      }
    }
    return refused
  }

  /** @internal */
  moveTo(handle: DocHandle<T>): void {
    this.#handle.off("change", this.#relay)
    this.#handle = handle
    handle.on("change", this.#relay)
    this.emit("moved", handle)
    const doc = handle.isReady() ? handle.doc() : undefined
    if (doc) this.emit("change", doc)
  }

  /** @internal */
  markPurged(reason: string): void {
    this.#purged = reason
    this.#handle.off("change", this.#relay)
    this.emit("purged", reason)
  }
}

const ONE_PER_DOC_TIMEOUT_MS = 5_000
/** Sync messages about one document within {@link STORM_WINDOW_MS}, with the server's heads
 * unchanged, that count as a livelock (a healthy exchange takes a handful). */
const STORM_MESSAGES = 200
const STORM_WINDOW_MS = 3_000

/** Regie's client on automerge-repo. */
export class RegieClient extends EventEmitter<RegieClientEvents> {
  /** The automerge-repo repo (unmodified). */
  readonly repo: Repo
  /** The network adapter (online state, reconnection count). */
  readonly network: RegieNetworkAdapter
  #options: Required<Omit<RegieClientOptions, "backoff">> & { backoff: Backoff }
  #store: RegieStore
  #caseload = new Map<string, CaseloadEntry>()
  #documents = new Map<string, RegieDocument<any>>()
  #handles = new Map<string, Promise<DocHandle<any> | undefined>>()
  #serverHeads = new Map<string, string[]>()
  #serverSyncWaiters = new Map<string, Array<() => void>>()
  #rules = new Map<string, WriteRules>()
  #purged = new Set<string>()
  /** Documents being reset after `rejected`: nothing about them moves meanwhile. */
  #resetting = new Set<string>()
  #replayedChanges = new Map<string, Set<string>>()
  #queues = new Map<string, Promise<void>>()
  #token: string | undefined
  #closed = false
  #storms = new Map<string, { since: number; heads: string; count: number }>()
  /** Sync livelocks broken by reconnecting (diagnostics). */
  stormsBroken = 0
  #uploading: Promise<void> | undefined

  private constructor(options: RegieClientOptions) {
    super()
    const log = options.log ?? (() => {})
    this.#options = {
      ...options,
      fetch: options.fetch ?? globalThis.fetch.bind(globalThis),
      saveDebounceMs: options.saveDebounceMs ?? 100,
      log,
      backoff: { initialMs: 250, maxMs: 10_000, ...options.backoff },
    }
    this.#store = new RegieStore(options.storage)
    const base = options.server.replace(/\/+$/, "")
    this.network = new RegieNetworkAdapter({
      url: base.replace(/^http/, "ws") + "/sync",
      token: options.token,
      WebSocket: options.WebSocket,
      backoff: this.#options.backoff,
      beforeConnect: token => this.#beforeConnect(token),
      onRegieMessage: m => this.#onRegieMessage(m),
      onServerSync: (id, data) => this.#onServerSync(id, data),
      onUnavailable: id => this.#serially(id, () => this.#onUnavailable(id)),
      shouldDeliver: id => !this.#purged.has(id) && !this.#resetting.has(id),
      onConnection: online => this.#onConnection(online),
      log,
    })
    this.repo = new Repo({
      storage: options.storage,
      network: [this.network],
      saveDebounceRate: this.#options.saveDebounceMs,
    })
  }

  /** Creates a client, loads the stored caseload (so documents open offline) and starts
   * connecting in the background. */
  static async start(options: RegieClientOptions): Promise<RegieClient> {
    const client = new RegieClient(options)
    for (const e of (await client.#store.caseload()) ?? []) {
      client.#caseload.set(documentIdOf(e.url), e)
    }
    return client
  }

  /** Whether a session with the server is up. */
  get online(): boolean {
    return this.network.online
  }

  /** The caseload as last listed. */
  get caseload(): CaseloadEntry[] {
    return [...this.#caseload.values()]
  }

  /** The device id the server knows (automerge-repo's storage id). */
  async deviceId(): Promise<string> {
    return (await this.repo.storageId()) ?? "unknown-device"
  }

  /** The write rules of a document, if known. */
  rulesOf(documentId: string): WriteRules | undefined {
    return this.#rules.get(documentId)
  }

  /** Opens a caseload document by URL, document id, or `{ dossier, key }`. Opening while offline
   * is logged and uploaded on the next connection (I3). */
  async open<T = unknown>(
    ref: string | { dossier: string; key: string },
  ): Promise<RegieDocument<T>> {
    const entry = this.#entry(ref)
    if (!entry) throw new Error("not in the caseload (or not yours to see)")
    const id = documentIdOf(entry.url)
    if (!this.online) await this.#logOfflineRead(entry)
    const existing = this.#documents.get(id)
    if (existing && !existing.purged) return existing as RegieDocument<T>
    const handle = await this.#track(entry)
    if (!handle) throw new Error(`document ${entry.key} is unavailable`)
    if (!this.#rules.has(id)) await this.#loadRules(entry)
    const doc = new RegieDocument<T>(this, entry, handle as DocHandle<T>)
    this.#documents.set(id, doc)
    return doc
  }

  /** Fetches the caseload again and purges what is no longer listed. */
  async refreshCaseload(): Promise<CaseloadEntry[]> {
    const token = this.#token ?? (await this.#options.token("initial"))
    return this.#refreshCaseload(token)
  }

  /** Stops syncing and flushes the repo. Stored documents stay. */
  async close(): Promise<void> {
    this.#closed = true
    await Promise.allSettled([...this.#queues.values()])
    this.network.disconnect()
    // Repo.shutdown would also flush handles that never became ready (a refused find), and throw.
    const ready = Object.values(this.repo.handles)
      .filter(h => h.isReady())
      .map(h => h.documentId)
    await this.repo.flush(ready)
  }

  #entry(ref: string | { dossier: string; key: string }): CaseloadEntry | undefined {
    if (typeof ref !== "string") {
      return this.caseload.find(e => e.dossier === ref.dossier && e.key === ref.key)
    }
    const id = ref.startsWith("automerge:") ? documentIdOf(ref) : ref
    return this.#caseload.get(id)
  }

  /** Runs `op` after every earlier operation on the same document. */
  #serially(id: string, op: () => Promise<void>): Promise<void> {
    const prev = this.#queues.get(id) ?? Promise.resolve()
    const next = prev.then(op).catch(e => this.#options.log(`${id}: ${(e as Error).message}`))
    this.#queues.set(id, next)
    return next
  }

  async #api(token: string, method: string, path: string, body?: unknown): Promise<unknown> {
    const res = await this.#options.fetch(this.#options.server.replace(/\/+$/, "") + path, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    if (res.status === 401) throw new UnauthorizedError(`${method} ${path}: 401`)
    if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status}`)
    return res.json()
  }

  async #beforeConnect(token: string): Promise<void> {
    this.#token = token
    await this.#refreshCaseload(token)
    await this.#uploadReads(token).catch(e => {
      if (e instanceof UnauthorizedError) throw e
      // The answer may have been lost: the reads stay and go again (the server logs each once).
      this.#options.log(`offline-read upload failed: ${(e as Error).message}`)
    })
  }

  async #refreshCaseload(token: string): Promise<CaseloadEntry[]> {
    const listed = (await this.#api(token, "GET", "/api/v1/me/documents")) as CaseloadEntry[]
    const now = new Map(listed.map(e => [documentIdOf(e.url), e]))
    // A document listed again (a new assignment) may be synced again.
    for (const id of now.keys()) this.#purged.delete(id)
    const gone = [...this.#caseload.keys()].filter(id => !now.has(id))
    this.#caseload = now
    await this.#store.setCaseload(listed)
    for (const id of gone) await this.#serially(id, () => this.#purge(id, "delisted"))
    for (const e of listed) {
      // Rules change with the listing (a closed dossier, a grant that ended).
      if (this.#documents.has(documentIdOf(e.url))) await this.#loadRules(e, token)
    }
    this.emit("caseload", listed)
    return listed
  }

  #onConnection(online: boolean): void {
    this.emit("connection", online)
    if (!online || this.#closed) return
    // Sync the whole caseload, so it is on the device for the next time it is offline.
    for (const e of this.#caseload.values()) void this.#track(e)
    if (!this.#uploading) {
      this.#uploading = this.#retryUploads().finally(() => (this.#uploading = undefined))
    }
  }

  /** The repo handle of a caseload document, syncing it; undefined if unavailable. */
  #track(entry: CaseloadEntry): Promise<DocHandle<any> | undefined> {
    const id = documentIdOf(entry.url)
    let h = this.#handles.get(id)
    if (!h) {
      h = this.repo
        .find(entry.url as AutomergeUrl)
        .then(handle => handle as DocHandle<any>)
        .catch(() => {
          this.#handles.delete(id)
          return undefined
        })
      this.#handles.set(id, h)
    }
    return h
  }

  async #loadRules(entry: CaseloadEntry, token = this.#token): Promise<void> {
    const id = documentIdOf(entry.url)
    if (token && this.online) {
      try {
        const rules = (await this.#api(
          token,
          "GET",
          `/api/v1/me/documents/${id}/write-rules`,
        )) as WriteRules
        this.#rules.set(id, rules)
        await this.#store.setRules(id, rules)
        return
      } catch (e) {
        this.#options.log(`write rules of ${entry.key}: ${(e as Error).message}`)
      }
    }
    const stored = await this.#store.rules<WriteRules>(id)
    if (stored) this.#rules.set(id, stored)
  }

  #onServerSync(documentId: string, data: Uint8Array): void {
    let heads: string[]
    try {
      heads = A.decodeSyncMessage(data).heads
    } catch {
      return
    }
    this.#serverHeads.set(documentId, heads)
    this.#watchForStorm(documentId, heads)
    for (const w of this.#serverSyncWaiters.get(documentId)?.splice(0) ?? []) w()
  }

  /** A sync exchange that goes on and on while the server's heads stay the same is a livelock
   * (seen with the hub under concurrent edits, with unmodified automerge-repo clients too): a
   * new connection starts the exchange afresh from the stored sync state and heals it. */
  #watchForStorm(documentId: string, heads: string[]): void {
    const now = Date.now()
    const key = heads.join(",")
    const w = this.#storms.get(documentId)
    if (!w || w.heads !== key || now - w.since > STORM_WINDOW_MS) {
      this.#storms.set(documentId, { since: now, heads: key, count: 1 })
      return
    }
    w.count += 1
    if (w.count >= STORM_MESSAGES) {
      this.#storms.clear()
      this.stormsBroken += 1
      this.#options.log(`sync livelock on ${documentId} (${w.count} messages, no progress): reconnecting`)
      this.network.dropConnection()
    }
  }

  #nextServerSync(documentId: string, ms: number): Promise<void> {
    return new Promise(resolve => {
      const t = setTimeout(resolve, ms)
      const list = this.#serverSyncWaiters.get(documentId) ?? []
      list.push(() => {
        clearTimeout(t)
        resolve()
      })
      this.#serverSyncWaiters.set(documentId, list)
    })
  }

  #onRegieMessage(m: RegieMessage): void {
    const id = m.documentId
    // Ids and reason codes only: these messages carry no content.
    this.#options.log(`${m.type} ${JSON.stringify(m)}`)
    switch (m.type) {
      case "rejected":
        void this.#serially(id, () => this.#onRejected(m))
        return
      case "revoked":
        void this.#serially(id, async () => {
          const entry = this.#caseload.get(id)
          await this.#purge(id, `revoked:${m.reason}`)
          this.emit("revoked", { documentId: id, key: entry?.key, dossier: entry?.dossier, reason: m.reason })
        })
        return
      case "replaced":
        void this.#serially(id, () => this.#onReplaced(id, m.newDocumentId))
        return
    }
  }

  async #onUnavailable(id: string): Promise<void> {
    // The server answers a document its user may no longer read like an unknown one.
    const handle = await this.#handles.get(id)
    if (handle?.isReady()) await this.#purge(id, "unavailable")
  }

  /** Resets to the server's heads and replays the permitted local edits (I2). */
  async #onRejected(m: Extract<RegieMessage, { type: "rejected" }>): Promise<void> {
    const id = m.documentId
    const entry = this.#caseload.get(id)
    const handle = await this.#handles.get(id)
    if (!handle || !entry || this.#purged.has(id)) return
    // The server's heads come with its sync messages; the repo may still be applying one.
    const deadline = Date.now() + ONE_PER_DOC_TIMEOUT_MS
    while (!hasHeads(handle.doc(), this.#serverHeads.get(id) ?? []) && Date.now() < deadline) {
      await sleep(20)
    }
    const heads = this.#serverHeads.get(id) ?? []
    const local = handle.doc()
    // A replay the server refuses again is not replayed a second time.
    const again = m.changes.some(c => this.#replayedChanges.get(id)?.has(c))
    const known = hasHeads(local, heads)
    const outcome = known
      ? replay(local, heads, again ? undefined : this.#rules.get(id))
      : undefined
    if (again && outcome) {
      outcome.dropped = outcome.dropped.map(d => ({ ...d, reason: `${m.reason} (refused again)` }))
      outcome.changes = []
      outcome.replayed = 0
    }
    const wrapper = this.#documents.get(id)
    wrapper?.holdEdits()
    this.#resetting.add(id)
    try {
      await this.#dropLocal(id)
    } finally {
      this.#resetting.delete(id)
    }
    let fresh: DocHandle<any> | undefined
    if (outcome) {
      fresh = this.repo.import(A.save(outcome.server), { docId: id as DocumentId })
      fresh.doneLoading()
      this.#handles.set(id, Promise.resolve(fresh))
      // The reset goes out first, so the server unblocks this connection before new changes.
      if (this.online) await this.#nextServerSync(id, ONE_PER_DOC_TIMEOUT_MS)
      if (outcome.changes.length > 0) {
        fresh.update(d => A.applyChanges(d, outcome.changes)[0])
        const hashes = this.#replayedChanges.get(id) ?? new Set()
        for (const c of outcome.changes) hashes.add(A.decodeChange(c).hash)
        this.#replayedChanges.set(id, hashes)
      }
    } else {
      // Nothing acknowledged to replay onto: fetch the server's version again.
      this.#handles.delete(id)
      fresh = await this.#track(entry)
    }
    if (wrapper && fresh) wrapper.moveTo(fresh)
    const refusedLater = wrapper?.releaseEdits() ?? []
    this.emit("rejected", {
      documentId: id,
      url: entry.url,
      key: entry.key,
      dossier: entry.dossier,
      reason: m.reason,
      detail: m.detail,
      changes: m.changes,
      replayed: outcome?.replayed ?? 0,
      dropped: [
        ...(outcome?.dropped ?? [{ path: "/", reason: "no_server_version" }]),
        ...refusedLater,
      ],
    })
  }

  async #onReplaced(oldId: string, newId: string): Promise<void> {
    const entry = this.#caseload.get(oldId)
    const doc = this.#documents.get(oldId)
    await this.#purge(oldId, "replaced", { keepWrapper: true })
    if (entry) {
      const moved: CaseloadEntry = { ...entry, url: `automerge:${newId}` }
      this.#caseload.set(newId, moved)
      await this.#store.setCaseload(this.caseload)
      const handle = await this.#track(moved)
      if (doc && handle) {
        this.#documents.delete(oldId)
        this.#documents.set(newId, doc)
        ;(doc.entry as CaseloadEntry).url = moved.url
        doc.moveTo(handle)
        await this.#loadRules(moved)
      }
    }
    this.emit("replaced", { documentId: oldId, newDocumentId: newId, key: entry?.key, dossier: entry?.dossier })
  }

  /** Removes a document from memory and storage (R28, I6). */
  async #purge(id: string, reason: string, opts: { keepWrapper?: boolean } = {}): Promise<void> {
    if (this.#purged.has(id)) return
    this.#purged.add(id)
    this.#caseload.delete(id)
    await this.#store.setCaseload(this.caseload)
    const doc = this.#documents.get(id)
    if (doc && !opts.keepWrapper) {
      this.#documents.delete(id)
      doc.markPurged(reason)
    }
    await this.#dropLocal(id)
    this.#rules.delete(id)
    this.#serverHeads.delete(id)
    await this.#store.forget(id)
    this.emit("purged", { documentId: id, reason })
  }

  /** Deletes the repo's handle and every stored key of the document. */
  async #dropLocal(id: string): Promise<void> {
    this.#handles.delete(id)
    // Nothing about the document is delivered any more (`shouldDeliver`); let the repo finish
    // a message it is still handling, or it would sync a deleted handle again.
    await sleep(50)
    this.repo.delete(id as DocumentId)
    // automerge-repo saves with a debounce, and a deleted handle's (empty) document may still be
    // saved once after the delete: wait for that save to land, then remove every key, and check.
    await sleep(this.#options.saveDebounceMs * 2 + 50)
    for (let round = 0; round < 5; round++) {
      await this.#removeStored(id)
      if ((await this.#options.storage.loadRange([id])).length === 0) return
      await sleep(this.#options.saveDebounceMs)
    }
  }

  /** Removes every stored key of a document, retrying while a save races with the removal
   * (a file written into a directory being removed fails the removal). */
  async #removeStored(id: string): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#options.storage.removeRange([id])
        return
      } catch (e) {
        if (attempt >= 10) throw e
        await sleep(20 * attempt)
      }
    }
  }

  async #logOfflineRead(entry: CaseloadEntry): Promise<void> {
    const read: OfflineRead = {
      id: globalThis.crypto.randomUUID(),
      dossier: entry.dossier,
      document: entry.key,
      opened_at: new Date().toISOString(),
    }
    await this.#store.logRead(read)
  }

  async #uploadReads(token: string): Promise<void> {
    const pending = await this.#store.pendingReads()
    if (pending.length === 0) return
    const device = await this.deviceId()
    for (let i = 0; i < pending.length; i += 500) {
      const batch = pending.slice(i, i + 500)
      const answer = (await this.#api(token, "POST", "/api/v1/audit/offline-reads", {
        device,
        sent_at: new Date().toISOString(),
        events: batch,
      })) as ReadsUploadedEvent
      // Refused reads can never be accepted; the server logged the attempt, so they go too.
      await this.#store.removeReads([...answer.accepted, ...answer.refused.map(r => r.id)])
      this.emit("offline-reads-uploaded", answer)
    }
  }

  /** While online, retries an upload whose answer was lost, a few times with backoff. */
  async #retryUploads(): Promise<void> {
    for (let attempt = 1; attempt <= 5 && this.online && !this.#closed; attempt++) {
      if ((await this.#store.pendingReads()).length === 0) return
      await sleep(this.#options.backoff.initialMs * 2 ** (attempt - 1))
      if (!this.#token || !this.online) return
      try {
        await this.#uploadReads(this.#token)
      } catch (e) {
        this.#options.log(`offline-read upload failed: ${(e as Error).message}`)
      }
    }
  }
}

/** The document id of an `automerge:` URL. */
export function documentIdOf(url: string): string {
  return url.replace(/^automerge:/, "").split("#")[0]
}
