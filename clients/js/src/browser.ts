// `@regie/client/browser`: the client with IndexedDB for storage, sealed with the device key the
// server releases (R29), and the browser's WebSocket. The key is asked for after login by the
// device's storage id, imported non-extractable and held in memory only; without it (offline
// before it was released, or the device reported lost) the store does not open.

import { IndexedDBStorageAdapter } from "@automerge/automerge-repo-storage-indexeddb"

import { RegieClient, type RegieClientOptions } from "./client.js"
import type { WebSocketFactory } from "./network.js"
import { SealedStorageAdapter, deviceStorageId, importDeviceKeyBase64 } from "./sealed.js"

export * from "./index.js"
export {
  SealedBlockError,
  SealedStorageAdapter,
  StorageLockedError,
  deviceStorageId,
  importDeviceKey,
  importDeviceKeyBase64,
} from "./sealed.js"

/** The server refused this device its key: the device was reported lost (`device_revoked`). */
export class DeviceRevokedError extends Error {
  constructor() {
    super("this device was reported lost: the server will not release its key again")
    this.name = "DeviceRevokedError"
  }
}

/** The key could not be asked for: no connection to the server. */
export class KeyUnreachableError extends Error {
  constructor() {
    super("the device key can only be fetched with a connection to the server")
    this.name = "KeyUnreachableError"
  }
}

/** An IndexedDB database opened with the device key. */
export interface SealedDatabase {
  /** The sealed adapter to give the client; `lock()` it to drop the key. */
  storage: SealedStorageAdapter
  /** The unsealed adapter below (to close the connection, or to delete the database). */
  inner: IndexedDBStorageAdapter
  /** The device's storage id, by which the server keeps its key. */
  device: string
  /** The key's id (for support; not secret). */
  keyId: string
  /** How long the server lets the device hold the key without use, if it says. */
  idleSeconds?: number
}

/** Closes an IndexedDB adapter's connection (it has no close(); the connection is a
 * TypeScript-private field), so its database can be deleted. */
export async function closeIndexedDB(adapter: IndexedDBStorageAdapter): Promise<void> {
  ;(await (adapter as unknown as { dbPromise: Promise<IDBDatabase> }).dbPromise).close()
}

/**
 * Asks `server` for this device's key with `token` and opens `database` sealed with it. Throws
 * {@link DeviceRevokedError} when the device was reported lost, {@link KeyUnreachableError}
 * when the server cannot be reached, and an `Error` naming the HTTP status otherwise. The key
 * never leaves this function except inside the adapter.
 */
export async function openSealedDatabase(options: {
  server: string
  database: string
  token: string
  fetch?: typeof fetch
}): Promise<SealedDatabase> {
  const inner = new IndexedDBStorageAdapter(options.database)
  try {
    return await unseal(inner, options)
  } catch (e) {
    // A database the key was refused for is not left open: the app may have to delete it.
    await closeIndexedDB(inner).catch(() => {})
    throw e
  }
}

async function unseal(
  inner: IndexedDBStorageAdapter,
  options: { server: string; token: string; fetch?: typeof fetch },
): Promise<SealedDatabase> {
  const device = await deviceStorageId(inner)
  const doFetch = options.fetch ?? globalThis.fetch.bind(globalThis)
  let res: Response
  try {
    res = await doFetch(options.server.replace(/\/+$/, "") + "/api/v1/me/device-key", {
      method: "POST",
      headers: { authorization: `Bearer ${options.token}`, "content-type": "application/json" },
      body: JSON.stringify({ device }),
    })
  } catch {
    throw new KeyUnreachableError()
  }
  const body = await res.json().catch(() => null)
  if (res.status === 403 && body?.error?.code === "device_revoked") throw new DeviceRevokedError()
  if (!res.ok || typeof body?.key !== "string" || typeof body?.key_id !== "string") {
    // The message names the status and code only: the body of a 200 holds the key.
    throw new Error(`the server did not release the device key (HTTP ${res.status}${body?.error?.code ? `, ${body.error.code}` : ""})`)
  }
  const key = await importDeviceKeyBase64(body.key)
  body.key = undefined
  const idle = body.idle_seconds
  return {
    storage: new SealedStorageAdapter(inner, key),
    inner,
    device,
    keyId: body.key_id,
    idleSeconds: Number.isInteger(idle) && idle > 0 ? idle : undefined,
  }
}

/** Options for {@link startBrowserClient}: `storage` and `WebSocket` are filled in. */
export type BrowserClientOptions = Omit<RegieClientOptions, "storage" | "WebSocket"> & {
  /** The IndexedDB database name (one per user on a shared device). */
  database?: string
}

/** Starts a client that keeps its documents in IndexedDB, sealed with the device key (the token
 * callback is asked once for it, with reason `initial`). */
export async function startBrowserClient(
  options: BrowserClientOptions,
): Promise<{ client: RegieClient; database: SealedDatabase }> {
  const { database = "regie", ...rest } = options
  const sealed = await openSealedDatabase({
    server: options.server,
    database,
    token: await options.token("initial"),
    fetch: options.fetch,
  })
  const client = await RegieClient.start({
    ...rest,
    storage: sealed.storage,
    WebSocket: globalThis.WebSocket as unknown as WebSocketFactory,
  })
  return { client, database: sealed }
}
