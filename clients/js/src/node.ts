// `@regie/client/node`: the client with files for storage (automerge-repo's NodeFS adapter) and
// the `ws` WebSocket, for Node.js (tests, scripts, a desktop shell).

import type { Chunk, StorageAdapterInterface, StorageKey } from "@automerge/automerge-repo"
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs"
import WebSocket from "ws"

import { RegieClient, type RegieClientOptions } from "./client.js"
import type { WebSocketFactory } from "./network.js"

export * from "./index.js"

/** Options for {@link startNodeClient}: `storage` and `WebSocket` are filled in. */
export type NodeClientOptions = Omit<RegieClientOptions, "storage" | "WebSocket"> & {
  /** The directory that holds this device's documents. */
  dir: string
}

/**
 * Files under one directory per document, with the operations on one document run one after
 * another: the repo saves a snapshot without waiting while a purge removes the document's
 * directory, and on a file system those two race (a `mkdir` of a directory whose parent was
 * just removed fails with ENOENT, unhandled). Operations on different documents still overlap.
 */
class SerialFiles implements StorageAdapterInterface {
  #files: NodeFSStorageAdapter
  #tails = new Map<string, Promise<unknown>>()

  constructor(dir: string) {
    this.#files = new NodeFSStorageAdapter(dir)
  }

  #serially<T>(key: StorageKey, op: () => Promise<T>): Promise<T> {
    const doc = key[0] ?? ""
    const run = (this.#tails.get(doc) ?? Promise.resolve()).then(op, op)
    const tail = run.catch(() => undefined)
    this.#tails.set(doc, tail)
    void tail.then(() => {
      if (this.#tails.get(doc) === tail) this.#tails.delete(doc)
    })
    return run
  }

  load(key: StorageKey): Promise<Uint8Array | undefined> {
    return this.#serially(key, () => this.#files.load(key))
  }
  save(key: StorageKey, data: Uint8Array): Promise<void> {
    return this.#serially(key, () => this.#files.save(key, data))
  }
  remove(key: StorageKey): Promise<void> {
    return this.#serially(key, () => this.#files.remove(key))
  }
  loadRange(prefix: StorageKey): Promise<Chunk[]> {
    return this.#serially(prefix, () => this.#files.loadRange(prefix))
  }
  removeRange(prefix: StorageKey): Promise<void> {
    return this.#serially(prefix, () => this.#files.removeRange(prefix))
  }
}

/** Starts a client that keeps its documents as files under `dir`. */
export function startNodeClient(options: NodeClientOptions): Promise<RegieClient> {
  const { dir, ...rest } = options
  return RegieClient.start({
    ...rest,
    storage: new SerialFiles(dir),
    WebSocket: WebSocket as unknown as WebSocketFactory,
  })
}
