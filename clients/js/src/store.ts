// What the client keeps beside automerge-repo's documents, in the same storage adapter under the
// key prefix `regie` (never a document id): the last caseload listing, the write rules per
// document, and offline reads waiting for upload. Values are JSON. Nothing here is dossier
// content: ids, keys, reason codes and times.

import type { StorageAdapterInterface } from "@automerge/automerge-repo"

/** One document of the caseload, as `GET /api/v1/me/documents` lists it. */
export interface CaseloadEntry {
  dossier: string
  /** `plan`, `record`, `view/<person>`, `maatwerk/<n>`, `partner/<org>` or `meta`. */
  key: string
  /** `automerge:` URL. */
  url: string
  access: "read" | "write"
  basis: string
  district: string
  team: string
  closed: boolean
}

/** A local open of a document while offline (I3), waiting for upload. */
export interface OfflineRead {
  /** The device's id for the event; the server logs each (user, device, id) once. */
  id: string
  dossier: string
  /** The document key. */
  document: string
  /** RFC 3339, device clock. */
  opened_at: string
}

const PREFIX = "regie"
const encoder = new TextEncoder()
const decoder = new TextDecoder()

/** The `regie` namespace of a storage adapter. */
export class RegieStore {
  constructor(readonly adapter: StorageAdapterInterface) {}

  async #get<T>(key: string[]): Promise<T | undefined> {
    const bytes = await this.adapter.load([PREFIX, ...key])
    return bytes ? (JSON.parse(decoder.decode(bytes)) as T) : undefined
  }

  async #put(key: string[], value: unknown): Promise<void> {
    await this.adapter.save([PREFIX, ...key], encoder.encode(JSON.stringify(value)))
  }

  caseload(): Promise<CaseloadEntry[] | undefined> {
    return this.#get(["caseload"])
  }

  setCaseload(entries: CaseloadEntry[]): Promise<void> {
    return this.#put(["caseload"], entries)
  }

  rules<T>(documentId: string): Promise<T | undefined> {
    return this.#get(["rules", documentId])
  }

  setRules(documentId: string, rules: unknown): Promise<void> {
    return this.#put(["rules", documentId], rules)
  }

  async forget(documentId: string): Promise<void> {
    await this.adapter.remove([PREFIX, "rules", documentId])
  }

  async logRead(read: OfflineRead): Promise<void> {
    await this.#put(["offline-reads", read.id], read)
  }

  async pendingReads(): Promise<OfflineRead[]> {
    const chunks = await this.adapter.loadRange([PREFIX, "offline-reads"])
    return chunks
      .filter(c => c.data)
      .map(c => JSON.parse(decoder.decode(c.data!)) as OfflineRead)
      .sort((a, b) => a.opened_at.localeCompare(b.opened_at))
  }

  async removeReads(ids: string[]): Promise<void> {
    for (const id of ids) await this.adapter.remove([PREFIX, "offline-reads", id])
  }
}
