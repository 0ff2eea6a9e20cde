// `@regie/client/browser`: the client with IndexedDB for storage and the browser's WebSocket.
// IndexedDB is not encrypted: the client clears a document from it on revocation and
// replacement; clear the whole database on logout.

import { IndexedDBStorageAdapter } from "@automerge/automerge-repo-storage-indexeddb"

import { RegieClient, type RegieClientOptions } from "./client.js"
import type { WebSocketFactory } from "./network.js"

export * from "./index.js"

/** Options for {@link startBrowserClient}: `storage` and `WebSocket` are filled in. */
export type BrowserClientOptions = Omit<RegieClientOptions, "storage" | "WebSocket"> & {
  /** The IndexedDB database name (one per user on a shared device). */
  database?: string
}

/** Starts a client that keeps its documents in IndexedDB. */
export function startBrowserClient(options: BrowserClientOptions): Promise<RegieClient> {
  const { database = "regie", ...rest } = options
  return RegieClient.start({
    ...rest,
    storage: new IndexedDBStorageAdapter(database),
    WebSocket: globalThis.WebSocket as unknown as WebSocketFactory,
  })
}
