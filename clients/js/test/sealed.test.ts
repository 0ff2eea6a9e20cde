// The sealed storage adapter (R29, issue 18) over real files (automerge-repo's NodeFS adapter):
// a repo's documents round-trip and their files hold no plaintext (the same scan finds it in an
// unsealed store, so it can fail); a flipped byte, a block moved onto another key and a store
// opened with another key are refused, not served; a locked store refuses; the key cannot be
// exported and every value gets a fresh nonce. No server is needed.

import assert from "node:assert/strict"
import { randomBytes, randomUUID } from "node:crypto"
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { after, test } from "node:test"

import { Repo, type StorageAdapterInterface } from "@automerge/automerge-repo"
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs"

import {
  SealedBlockError,
  SealedStorageAdapter,
  StorageLockedError,
  deviceStorageId,
  importDeviceKey,
  importDeviceKeyBase64,
} from "../src/sealed.js"

const dirs: string[] = []
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "regie-sealed-"))
  dirs.push(d)
  return d
}

/** A fresh device key as the server would release it. */
async function freshKey(): Promise<CryptoKey> {
  return importDeviceKey(new Uint8Array(randomBytes(32)))
}

/** Every file under `dir` whose raw bytes contain `needle`. */
function filesHolding(dir: string, needle: string): string[] {
  const hits: string[] = []
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name)
      if (statSync(p).isDirectory()) walk(p)
      else if (readFileSync(p).includes(Buffer.from(needle))) hits.push(p)
    }
  }
  walk(dir)
  return hits
}

/** Writes a document holding `text` through a repo on `storage` and flushes it to disk. */
async function writeDocument(storage: StorageAdapterInterface, text: string): Promise<string> {
  const repo = new Repo({ storage, network: [] })
  const handle = repo.create<{ entry: string }>({ entry: text })
  await repo.flush()
  await repo.shutdown()
  return handle.url
}

const bytes = (s: string) => new TextEncoder().encode(s)
const text = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b))

test("a document sealed into files opens again with the key and its files hold no plaintext", async () => {
  const sentinel = `SENTINEL-sealed-${randomUUID()}`
  const key = await freshKey()

  // The control: the same scan finds the sentinel in an unsealed store.
  const plainDir = tempDir()
  await writeDocument(new NodeFSStorageAdapter(plainDir), sentinel)
  assert.ok(filesHolding(plainDir, sentinel).length > 0, "the scan finds plaintext where there is some")

  const dir = tempDir()
  const url = await writeDocument(new SealedStorageAdapter(new NodeFSStorageAdapter(dir), key), sentinel)
  assert.deepEqual(filesHolding(dir, sentinel), [], "no file holds the sentinel")

  const again = new Repo({ storage: new SealedStorageAdapter(new NodeFSStorageAdapter(dir), key), network: [] })
  const handle = await again.find<{ entry: string }>(url as any)
  assert.equal(handle.doc().entry, sentinel)
  await again.shutdown()
})

test("values and ranges round-trip and each value is sealed with a fresh nonce", async () => {
  const dir = tempDir()
  const inner = new NodeFSStorageAdapter(dir)
  const sealed = new SealedStorageAdapter(inner, await freshKey())
  await sealed.save(["doc-a", "incremental", "h1"], bytes("één"))
  await sealed.save(["doc-a", "incremental", "h2"], bytes("twee"))
  await sealed.save(["doc-b", "snapshot", "h3"], bytes("twee"))
  assert.equal(text(await sealed.load(["doc-a", "incremental", "h1"])), "één")
  assert.equal(await sealed.load(["doc-a", "incremental", "missing"]), undefined)
  const range = await sealed.loadRange(["doc-a"])
  assert.deepEqual(range.map(c => [c.key.join("/"), text(c.data)]).sort(), [
    ["doc-a/incremental/h1", "één"],
    ["doc-a/incremental/h2", "twee"],
  ])
  const twice = [await inner.load(["doc-a", "incremental", "h2"]), await inner.load(["doc-b", "snapshot", "h3"])]
  assert.notDeepEqual(twice[0], twice[1], "the same value is stored differently each time")
  assert.ok(!Buffer.from(twice[0]!).includes(Buffer.from("twee")))
  await sealed.removeRange(["doc-a"])
  assert.deepEqual(await sealed.loadRange(["doc-a"]), [])
})

test("a flipped byte in a stored block is refused, not served", async () => {
  const inner = new NodeFSStorageAdapter(tempDir())
  const sealed = new SealedStorageAdapter(inner, await freshKey())
  const key = ["doc-a", "snapshot", "h1"]
  await sealed.save(key, bytes("Sanne heeft schulden"))
  const stored = (await inner.load(key))!
  for (const at of [0, 5, stored.length - 20, stored.length - 1]) {
    const altered = stored.slice()
    altered[at] ^= 0x01
    await inner.save(key, altered)
    await assert.rejects(sealed.load(key), SealedBlockError, `byte ${at} flipped`)
    await assert.rejects(sealed.loadRange(["doc-a"]), SealedBlockError, `byte ${at} flipped, in a range`)
  }
  await inner.save(key, stored.slice(0, 20))
  await assert.rejects(sealed.load(key), SealedBlockError, "a truncated block")
  await inner.save(key, bytes("Sanne heeft schulden"))
  await assert.rejects(sealed.load(key), SealedBlockError, "a plaintext block put in its place")
  await inner.save(key, stored)
  assert.equal(text(await sealed.load(key)), "Sanne heeft schulden", "the original still opens")
})

test("a block moved onto another key does not open", async () => {
  const inner = new NodeFSStorageAdapter(tempDir())
  const sealed = new SealedStorageAdapter(inner, await freshKey())
  await sealed.save(["doc-a", "snapshot", "h1"], bytes("dossier A"))
  await sealed.save(["doc-b", "snapshot", "h2"], bytes("dossier B"))
  // Another document's chunk, and the same chunk under another kind or hash.
  for (const target of [["doc-b", "snapshot", "h2"], ["doc-a", "incremental", "h1"], ["doc-a", "snapshot", "h9"]]) {
    await inner.save(target, (await inner.load(["doc-a", "snapshot", "h1"]))!)
    await assert.rejects(sealed.load(target), SealedBlockError, target.join("/"))
  }
})

test("a store opened with another key serves nothing", async () => {
  const dir = tempDir()
  const url = await writeDocument(new SealedStorageAdapter(new NodeFSStorageAdapter(dir), await freshKey()), "x")
  const other = new SealedStorageAdapter(new NodeFSStorageAdapter(dir), await freshKey())
  const id = url.replace("automerge:", "")
  await assert.rejects(other.loadRange([id]), SealedBlockError)
})

test("a locked store refuses to load or save, and the storage id stays readable for the key request", async () => {
  const inner = new NodeFSStorageAdapter(tempDir())
  const id = await deviceStorageId(inner)
  assert.match(id, /^[0-9a-f-]{36}$/)
  assert.equal(await deviceStorageId(inner), id, "the same id on every start")
  const sealed = new SealedStorageAdapter(inner, await freshKey())
  assert.equal(text(await sealed.load(["storage-adapter-id"])), id, "automerge-repo reads the same id")
  await sealed.save(["regie", "caseload"], bytes("[]"))
  sealed.lock()
  assert.ok(sealed.locked)
  await assert.rejects(sealed.load(["regie", "caseload"]), StorageLockedError)
  await assert.rejects(sealed.loadRange(["regie"]), StorageLockedError)
  await assert.rejects(sealed.save(["regie", "caseload"], bytes("[1]")), StorageLockedError)
  // A purge needs no key.
  await sealed.remove(["regie", "caseload"])
  assert.equal(await inner.load(["regie", "caseload"]), undefined)
})

test("the device key cannot be exported and its raw bytes are overwritten", async () => {
  const raw = new Uint8Array(randomBytes(32))
  const key = await importDeviceKey(raw)
  assert.equal(key.extractable, false)
  await assert.rejects(crypto.subtle.exportKey("raw", key))
  assert.ok(raw.every(b => b === 0), "the buffer the key came in is zeroed")
  await assert.rejects(importDeviceKey(new Uint8Array(16)), /32 bytes/)
  await assert.rejects(importDeviceKeyBase64("not base64!"), /not base64/)
  const extractable = await crypto.subtle.importKey("raw", randomBytes(32), "AES-GCM", true, ["encrypt", "decrypt"])
  assert.throws(() => new SealedStorageAdapter(new NodeFSStorageAdapter(tempDir()), extractable), /non-extractable/)
})
