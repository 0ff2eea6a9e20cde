// `@regie/client/node`: the client with files for storage (automerge-repo's NodeFS adapter) and
// the `ws` WebSocket, for Node.js (tests, scripts, a desktop shell).

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

/** Starts a client that keeps its documents as files under `dir`. */
export function startNodeClient(options: NodeClientOptions): Promise<RegieClient> {
  const { dir, ...rest } = options
  return RegieClient.start({
    ...rest,
    storage: new NodeFSStorageAdapter(dir),
    WebSocket: WebSocket as unknown as WebSocketFactory,
  })
}
