// Browser test support: a real `regie-server demo` on 127.0.0.1 (a port chosen up front, so the
// server can be stopped and started again at the same origin, in its own temporary directory),
// headless Chromium from Debian's `chromium` package through playwright-core (no browser
// download), login as a demo user, bounded waits, and the IndexedDB scan: every record of every
// database of a page, raw and decoded as Automerge (materialized documents and operations).

import { spawn } from "node:child_process"
import { randomUUID } from "node:crypto"
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"

import * as A from "@automerge/automerge"
import { chromium } from "playwright-core"

const repoRoot = resolve(import.meta.dirname, "../../..")

export const sleep = ms => new Promise(r => setTimeout(r, ms))

/** Polls `cond` until it holds; fails after `ms` naming `what`. */
export async function waitFor(what, cond, ms = 20_000) {
  const deadline = Date.now() + ms
  let last
  while (Date.now() < deadline) {
    try {
      if (await cond()) return
    } catch (e) {
      last = e
    }
    await sleep(50)
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? ` (last error: ${last.message})` : ""}`)
}

export function serverBin() {
  const candidates = [
    process.env.REGIE_SERVER_BIN,
    process.env.CARGO_TARGET_DIR && join(process.env.CARGO_TARGET_DIR, "debug/regie-server"),
    join(repoRoot, "target/debug/regie-server"),
  ].filter(Boolean)
  const found = candidates.find(p => existsSync(p))
  if (!found) throw new Error(`no regie-server binary (tried ${candidates.join(", ")}); set REGIE_SERVER_BIN`)
  return found
}

export function chromiumPath() {
  return process.env.CHROMIUM_BIN ?? "/usr/bin/chromium"
}

function freePort() {
  return new Promise((res, rej) => {
    const s = createServer()
    s.once("error", rej)
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address()
      s.close(() => res(port))
    })
  })
}

/** A demo server that can be stopped and started again on the same port and store; `env` adds
 * to its environment (e.g. `REGIE_DEVICE_IDLE_LOCK_SECONDS`). */
export async function startServer({ env = {} } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "regie-web-server-"))
  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  let child
  let exited = true
  const up = async () => {
    rmSync(join(dir, "regie-demo.json"), { force: true })
    child = spawn(serverBin(), ["demo", "--listen", `127.0.0.1:${port}`], {
      cwd: dir,
      env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? "warn", ...env },
      stdio: ["ignore", "ignore", "inherit"],
    })
    exited = false
    child.on("exit", () => (exited = true))
    await waitFor("regie-demo.json", () => {
      if (exited) throw new Error("regie-server demo exited early")
      return existsSync(join(dir, "regie-demo.json"))
    }, 60_000)
    await waitFor("the server's health endpoint", async () => (await fetch(`${base}/api/v1/health`)).ok)
  }
  const down = async () => {
    if (exited) return
    child.kill("SIGTERM")
    const deadline = Date.now() + 10_000
    while (!exited && Date.now() < deadline) await sleep(25)
    if (!exited) child.kill("SIGKILL")
    await waitFor("the server to exit", () => exited, 5_000)
  }
  const reap = () => child && !exited && child.kill("SIGKILL")
  process.on("exit", reap)
  await up()
  const demo = JSON.parse(readFileSync(join(dir, "regie-demo.json"), "utf8"))
  const roles = demo.roles
  return {
    base,
    dir,
    roles,
    dossier: roles.worker.documents[0].dossier,
    async api(token, method, path, body) {
      const res = await fetch(base + path, {
        method,
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      })
      const text = await res.text()
      return { status: res.status, body: text ? JSON.parse(text) : null }
    },
    stop: down,
    start: up,
    async close() {
      await down()
      process.off("exit", reap)
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** Headless Chromium, or undefined (with the reason) when it is not installed. */
export async function browser() {
  if (!existsSync(chromiumPath())) return undefined
  return chromium.launch({
    executablePath: chromiumPath(),
    headless: true,
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  })
}

/** Headless Chromium on a profile directory of its own, kept on disk (the other pages share
 * one browser with in-memory contexts), so a test can scan the files a browser leaves behind.
 * Returns the context and its first page; close the context to close the browser. */
export async function persistentPage(userDataDir, viewport = TABLET) {
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: chromiumPath(),
    headless: true,
    viewport,
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  })
  const p = context.pages()[0] ?? (await context.newPage())
  p.on("pageerror", e => console.error(`[page error] ${e.message}`))
  if (process.env.REGIE_WEB_LOG) p.on("console", m => console.error(`[page] ${m.text()}`))
  return { context, page: p }
}

/** Every file under `dir` whose raw bytes hold one of `needles` (a string as UTF-8 or as
 * UTF-16LE, the two ways Chromium writes strings; a Buffer as it is), as `path: needle` (a
 * Buffer named in hex). Files are read as they are on disk. */
export function scanFiles(dir, needles) {
  const hits = []
  const walk = d => {
    for (const name of readdirSync(d)) {
      const path = join(d, name)
      let st
      try {
        st = statSync(path)
      } catch {
        continue
      }
      if (st.isDirectory()) walk(path)
      else if (st.isFile()) {
        const bytes = readFileSync(path)
        for (const n of needles) {
          if (Buffer.isBuffer(n)) {
            if (bytes.includes(n)) hits.push(`${path}: ${n.toString("hex")}`)
          } else if (bytes.includes(Buffer.from(n, "utf8")) || bytes.includes(Buffer.from(n, "utf16le"))) {
            hits.push(`${path}: ${n}`)
          }
        }
      }
    }
  }
  walk(dir)
  return hits
}

export const TABLET = { width: 820, height: 1180 }
export const PHONE = { width: 390, height: 844 }

/** A page in its own browser context (its own IndexedDB, service worker and storage). */
export async function page(b, viewport = TABLET, opts = {}) {
  const context = await b.newContext({ viewport, ...opts })
  const p = await context.newPage()
  p.on("pageerror", e => console.error(`[page error] ${e.message}`))
  if (process.env.REGIE_WEB_LOG) p.on("console", m => console.error(`[page] ${m.text()}`))
  return p
}

/** Opens the app and logs in as the demo user `label` (worker, worker2, resident, …). */
export async function login(p, server, label) {
  await p.goto(server.base + "/")
  await p.locator(`button[data-login="${label}"]`).click({ timeout: 20_000 })
  await p.getByRole("status").filter({ hasText: /Verbonden|Geen verbinding/ }).first().waitFor({ timeout: 20_000 })
}

/** Waits until the service worker controls the page (the shell is cached). */
export async function shellCached(p) {
  await waitFor("the service worker to control the page", () =>
    p.evaluate(() => navigator.serviceWorker.controller !== null),
  )
}

export async function syncText(p, id) {
  return (await p.getByTestId(id).textContent()) ?? ""
}

/** Waits until the page is online with nothing pending. */
export async function settled(p, ms = 30_000) {
  await waitFor("the page to be online with nothing pending", async () =>
    (await syncText(p, "sync-online")) === "Verbonden" && (await syncText(p, "sync-pending")) === "Alles verstuurd",
  ms)
}

export async function openFirstDossier(p) {
  await p.getByTestId("caseload-row").first().getByRole("button", { name: "Openen" }).click({ timeout: 20_000 })
  await p.locator("#hulpvraag").waitFor({ timeout: 20_000 })
}

/** Every record of every IndexedDB database of the page's origin: database, store, key, value
 * (binary values as base64). */
export async function dumpIndexedDB(p) {
  return p.evaluate(async () => {
    const out = []
    const b64 = u8 => {
      let s = ""
      for (let i = 0; i < u8.length; i++) s += String.fromCharCode(u8[i])
      return btoa(s)
    }
    const plain = v => {
      if (v instanceof Uint8Array) return { $bytes: b64(v) }
      if (v instanceof ArrayBuffer) return { $bytes: b64(new Uint8Array(v)) }
      if (Array.isArray(v)) return v.map(plain)
      if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]))
      return v
    }
    for (const info of await indexedDB.databases()) {
      const db = await new Promise((res, rej) => {
        const r = indexedDB.open(info.name)
        r.onsuccess = () => res(r.result)
        r.onerror = () => rej(r.error)
      })
      for (const store of db.objectStoreNames) {
        const [keys, values] = await new Promise((res, rej) => {
          const tx = db.transaction(store, "readonly")
          const s = tx.objectStore(store)
          const k = s.getAllKeys()
          const v = s.getAll()
          tx.oncomplete = () => res([k.result, v.result])
          tx.onerror = () => rej(tx.error)
        })
        keys.forEach((key, i) => out.push({ db: info.name, store, key: plain(key), value: plain(values[i]) }))
      }
      db.close()
    }
    return out
  })
}

function binaries(v, out = []) {
  if (v && typeof v === "object") {
    if (typeof v.$bytes === "string") out.push(Buffer.from(v.$bytes, "base64"))
    else for (const x of Object.values(v)) binaries(x, out)
  }
  return out
}

/** The device's storage id, read from the page's sealed database, where it is kept in clear
 * (the device names it to be given its key). */
export async function deviceStorageId(p) {
  return p.evaluate(async () => {
    const name = (await indexedDB.databases()).map(d => d.name).find(n => n?.startsWith("regie-sealed-"))
    if (!name) throw new Error("no regie-sealed-* database")
    const db = await new Promise((res, rej) => {
      const r = indexedDB.open(name)
      r.onsuccess = () => res(r.result)
      r.onerror = () => rej(r.error)
    })
    try {
      const value = await new Promise((res, rej) => {
        const r = db.transaction("documents").objectStore("documents").get(["storage-adapter-id"])
        r.onsuccess = () => res(r.result)
        r.onerror = () => rej(r.error)
      })
      return new TextDecoder().decode(value.binary)
    } finally {
      db.close()
    }
  })
}

/** The first bytes of every Automerge chunk. */
const AUTOMERGE_MAGIC = Buffer.from([0x85, 0x6f, 0x4a, 0x83])

/** The records of the page's `regie-sealed-*` databases that are not sealed (R29): every value
 * but the storage id must be version 1 of the sealed format (nonce, ciphertext, tag), not an
 * Automerge chunk and not JSON. Also returns how many were sealed, so an empty store is seen. */
export async function unsealedValues(p) {
  const unsealed = []
  let sealed = 0
  for (const rec of await dumpIndexedDB(p)) {
    if (!rec.db.startsWith("regie-sealed-")) continue
    if (JSON.stringify(rec.key) === JSON.stringify(["storage-adapter-id"])) continue
    for (const bytes of binaries(rec.value)) {
      if (bytes[0] === 1 && bytes.length >= 29 && !bytes.subarray(0, 4).equals(AUTOMERGE_MAGIC)) sealed++
      else unsealed.push(`${rec.db}/${JSON.stringify(rec.key)}`)
    }
  }
  return { sealed, unsealed }
}

/** Where any of `needles` occurs in the page's IndexedDB: in keys and values as JSON, in raw
 * bytes, and — each document's chunks (snapshots, then incremental saves) loaded together, as
 * automerge-repo would — in the materialized Automerge document and the decoded operations. */
export async function scanIndexedDB(p, needles) {
  const hits = []
  const chunks = new Map()
  for (const rec of await dumpIndexedDB(p)) {
    const where = `${rec.db}/${rec.store}/${JSON.stringify(rec.key)}`
    const json = JSON.stringify([rec.key, rec.value])
    for (const n of needles) {
      if (json.includes(n)) hits.push(`${where}: ${n} in key or value`)
    }
    for (const bytes of binaries(rec.value)) {
      for (const n of needles) if (bytes.includes(Buffer.from(n))) hits.push(`${where}: ${n} in raw bytes`)
      if (Array.isArray(rec.key) && (rec.key[1] === "snapshot" || rec.key[1] === "incremental")) {
        // A sealed chunk cannot be decoded here (the key is in the app's memory only); its raw
        // bytes were scanned above, and `unsealedValues` checks that it is sealed.
        if (!bytes.subarray(0, 4).equals(AUTOMERGE_MAGIC)) continue
        const id = `${rec.db}/${rec.key[0]}`
        const list = chunks.get(id) ?? []
        list.push({ kind: rec.key[1], bytes })
        chunks.set(id, list)
      }
    }
  }
  for (const [id, list] of chunks) {
    list.sort((a, b) => (a.kind === b.kind ? 0 : a.kind === "snapshot" ? -1 : 1))
    let doc = A.init()
    for (const { bytes } of list) {
      try {
        doc = A.loadIncremental(doc, new Uint8Array(bytes))
      } catch {
        hits.push(`${id}: a chunk that does not load`)
      }
    }
    const materialized = JSON.stringify(A.toJS(doc))
    const ops = A.getAllChanges(doc).map(c => JSON.stringify(A.decodeChange(c).ops)).join("")
    for (const n of needles) {
      if (materialized.includes(n)) hits.push(`${id}: ${n} in the materialized document`)
      if (ops.includes(n)) hits.push(`${id}: ${n} in decoded operations`)
    }
  }
  return hits
}

export const uniqueSentinel = label => `SENTINEL-${label}-${randomUUID().slice(0, 8)}`

/** Where screenshots go: $REGIE_WEB_SCREENSHOTS, else target/web-screenshots. */
export function screenshotDir() {
  const dir =
    process.env.REGIE_WEB_SCREENSHOTS ??
    join(process.env.CARGO_TARGET_DIR ?? join(repoRoot, "target"), "web-screenshots")
  mkdirSync(dir, { recursive: true })
  return dir
}
