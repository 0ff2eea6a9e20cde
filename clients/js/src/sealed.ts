// Encryption at rest for a device's store (R29, issue 18): a storage adapter that seals every
// value (snapshots, incremental changes, sync states, the client's own `regie` records) with
// AES-256-GCM through WebCrypto before it reaches the adapter below it, and opens it on the way
// back. The device key the server releases is imported as a non-extractable CryptoKey and held in
// memory only; `lock()` drops it. Each value gets a fresh random 96-bit nonce, and its storage
// key path is the associated data, so a block copied onto another key (a chunk of one document
// swapped into another) does not open. A value that does not open is refused with an error, never
// served. Storage keys themselves (document ids, chunk hashes, `regie` record names) stay in
// clear: the adapter below needs them to find and range over values.

import type { Chunk, StorageAdapterInterface, StorageKey } from "@automerge/automerge-repo"

/** automerge-repo's storage id of the device: stored unsealed, because the device must name it
 * to be given its key. It is a random UUID, no content; a changed one only fetches a key that
 * opens nothing. */
export const STORAGE_ID_KEY: StorageKey = ["storage-adapter-id"]

/** First byte of every sealed value: the format version (nonce ‖ ciphertext ‖ tag follow). */
const VERSION = 1
const NONCE_BYTES = 12
const TAG_BYTES = 16
/** Separates this use of the key from any other in the associated data. */
const DOMAIN = "regie.sealed.v1\0"
const encoder = new TextEncoder()

/** A stored value that did not open: altered, moved to another key, or sealed with another key.
 * Names the storage key (ids only), never the value. */
export class SealedBlockError extends Error {
  constructor(readonly key: StorageKey) {
    super(`stored block ${JSON.stringify(key)} does not open: altered, moved or sealed with another key`)
    this.name = "SealedBlockError"
  }
}

/** The store was locked (the device key dropped); log in again for the key. */
export class StorageLockedError extends Error {
  constructor() {
    super("the device store is locked: its key was dropped; log in again to unlock it")
    this.name = "StorageLockedError"
  }
}

/** Imports a 32-byte device key as a non-extractable AES-GCM key and overwrites `raw`. */
export async function importDeviceKey(raw: Uint8Array): Promise<CryptoKey> {
  if (raw.length !== 32) throw new Error(`a device key is 32 bytes, not ${raw.length}`)
  try {
    return await crypto.subtle.importKey("raw", raw as Uint8Array<ArrayBuffer>, { name: "AES-GCM" }, false, [
      "encrypt",
      "decrypt",
    ])
  } finally {
    raw.fill(0)
  }
}

/** Decodes a base64 (standard alphabet) device key and imports it; see {@link importDeviceKey}. */
export async function importDeviceKeyBase64(b64: string): Promise<CryptoKey> {
  let bin: string
  try {
    bin = atob(b64)
  } catch {
    throw new Error("the device key is not base64")
  }
  const raw = new Uint8Array(bin.length)
  for (let i = 0; i < bin.length; i++) raw[i] = bin.charCodeAt(i)
  return importDeviceKey(raw)
}

function sameKey(a: StorageKey, b: StorageKey): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i])
}

/** The associated data of a value: the domain and its whole key path, JSON-encoded (an array of
 * strings, so no two paths encode alike). */
function associated(key: StorageKey): Uint8Array<ArrayBuffer> {
  return encoder.encode(DOMAIN + JSON.stringify(key))
}

/** A storage adapter that seals values into another (IndexedDB, files, …). */
export class SealedStorageAdapter implements StorageAdapterInterface {
  #inner: StorageAdapterInterface
  #key: CryptoKey | undefined

  /** `key`: from {@link importDeviceKey}; `inner`: where the sealed values go. */
  constructor(inner: StorageAdapterInterface, key: CryptoKey) {
    if (key.extractable) throw new Error("the device key must be imported non-extractable")
    this.#inner = inner
    this.#key = key
  }

  /** Whether the key has been dropped. */
  get locked(): boolean {
    return this.#key === undefined
  }

  /** Drops the key: every later load and save fails with {@link StorageLockedError}. */
  lock(): void {
    this.#key = undefined
  }

  #current(): CryptoKey {
    if (!this.#key) throw new StorageLockedError()
    return this.#key
  }

  async #seal(key: StorageKey, data: Uint8Array): Promise<Uint8Array> {
    const nonce = crypto.getRandomValues(new Uint8Array(NONCE_BYTES))
    const sealed = await crypto.subtle.encrypt(
      { name: "AES-GCM", iv: nonce, additionalData: associated(key), tagLength: TAG_BYTES * 8 },
      this.#current(),
      data as Uint8Array<ArrayBuffer>,
    )
    const out = new Uint8Array(1 + NONCE_BYTES + sealed.byteLength)
    out[0] = VERSION
    out.set(nonce, 1)
    out.set(new Uint8Array(sealed), 1 + NONCE_BYTES)
    return out
  }

  async #open(key: StorageKey, stored: Uint8Array): Promise<Uint8Array> {
    const cryptoKey = this.#current()
    if (stored.length < 1 + NONCE_BYTES + TAG_BYTES || stored[0] !== VERSION) throw new SealedBlockError(key)
    try {
      const plain = await crypto.subtle.decrypt(
        {
          name: "AES-GCM",
          iv: stored.slice(1, 1 + NONCE_BYTES),
          additionalData: associated(key),
          tagLength: TAG_BYTES * 8,
        },
        cryptoKey,
        stored.slice(1 + NONCE_BYTES),
      )
      return new Uint8Array(plain)
    } catch {
      throw new SealedBlockError(key)
    }
  }

  async load(key: StorageKey): Promise<Uint8Array | undefined> {
    this.#current()
    const stored = await this.#inner.load(key)
    if (stored === undefined || sameKey(key, STORAGE_ID_KEY)) return stored
    return this.#open(key, stored)
  }

  async save(key: StorageKey, data: Uint8Array): Promise<void> {
    this.#current()
    const value = sameKey(key, STORAGE_ID_KEY) ? data : await this.#seal(key, data)
    await this.#inner.save(key, value)
  }

  async remove(key: StorageKey): Promise<void> {
    // Removing reveals nothing and needs no key: a purge still runs while locked.
    await this.#inner.remove(key)
  }

  async loadRange(prefix: StorageKey): Promise<Chunk[]> {
    this.#current()
    const chunks = await this.#inner.loadRange(prefix)
    return Promise.all(
      chunks.map(async c => ({
        key: c.key,
        data: c.data === undefined || sameKey(c.key, STORAGE_ID_KEY) ? c.data : await this.#open(c.key, c.data),
      })),
    )
  }

  async removeRange(prefix: StorageKey): Promise<void> {
    await this.#inner.removeRange(prefix)
  }
}

/** The device's storage id as automerge-repo keeps it in `storage` (made and saved when there
 * is none yet): read before the key is known, since the key is asked for by this id. */
export async function deviceStorageId(storage: StorageAdapterInterface): Promise<string> {
  const stored = await storage.load(STORAGE_ID_KEY)
  if (stored) {
    const id = new TextDecoder().decode(stored)
    // A UUID is what automerge-repo writes; anything else was not written by it.
    if (/^[0-9a-f-]{36}$/i.test(id)) return id
  }
  const id = crypto.randomUUID()
  await storage.save(STORAGE_ID_KEY, encoder.encode(id))
  return id
}
