// Encryption at rest in the web app (R29, issue 18), in headless Chromium against a real
// `regie-server demo`: a record entry the worker writes is shown by the app and found nowhere in
// the browser's profile directory once the browser is closed (raw bytes of every file: IndexedDB,
// its logs, Local Storage, caches), while the same scan finds a control that the page put into
// IndexedDB and localStorage itself, and neither the files nor the console hold the device key;
// after the server's idle time the app drops its key, shows
// the lock screen and opens again after a new login; a device reported lost is refused its key,
// and the app says so and erases its store.
import assert from "node:assert/strict"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { after, before, test } from "node:test"

import * as A from "@automerge/automerge"

import {
  TABLET,
  browser,
  chromiumPath,
  deviceStorageId,
  login,
  openFirstDossier,
  page,
  persistentPage,
  scanFiles,
  scanIndexedDB,
  settled,
  startServer,
  uniqueSentinel,
  unsealedValues,
  waitFor,
} from "./support.mjs"

/** The idle time of the second server, in seconds: short, so the lock comes within the test. */
const IDLE_SECONDS = 8

let server
let idleServer
let b
const dirs = []
before(async () => {
  b = await browser()
  if (!b) throw new Error(`no Chromium at ${chromiumPath()}`)
  server = await startServer()
  idleServer = await startServer({ env: { REGIE_DEVICE_IDLE_LOCK_SECONDS: String(IDLE_SECONDS) } })
})
after(async () => {
  await b?.close()
  await server?.close()
  await idleServer?.close()
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

/** Writes a record entry about Sanne Bakker in the open dossier and waits until it shows. */
async function writeEntry(p, text) {
  await p.getByRole("tab", { name: "Verslaglegging" }).click()
  await p.locator("#entry-text").waitFor()
  await p.getByRole("checkbox", { name: "Sanne Bakker" }).check()
  await p.locator("#entry-text").fill(text)
  await p.getByRole("button", { name: "Notitie opslaan" }).click()
  await p.getByText(text).waitFor({ timeout: 10_000 })
}

test("a record entry the app shows is in no file of the browser's profile, which the same scan would find it in", async () => {
  const profile = mkdtempSync(join(tmpdir(), "regie-web-profile-"))
  dirs.push(profile)
  const sentinel = uniqueSentinel("at-rest-entry")
  const controls = { indexeddb: uniqueSentinel("control-indexeddb"), localStorage: uniqueSentinel("control-localstorage") }
  const { context, page: p } = await persistentPage(profile)
  const printed = []
  p.on("console", m => printed.push(m.text()))
  let device
  try {
    await login(p, server, "worker")
    await openFirstDossier(p)
    await writeEntry(p, `Huisbezoek, ${sentinel}`)
    await settled(p)
    assert.ok(await p.getByText(sentinel).isVisible(), "the app shows the entry")

    // In the store: every value sealed, the sentinel in no key or value.
    await waitFor("the store to hold sealed values", async () => (await unsealedValues(p)).sealed > 0)
    const { unsealed } = await unsealedValues(p)
    assert.deepEqual(unsealed, [], "every stored value is sealed")
    assert.deepEqual(await scanIndexedDB(p, [sentinel]), [])
    device = await deviceStorageId(p)

    // The controls, stored unsealed by the page itself: an Automerge document holding a text (as
    // the app's store held it before R29) in an IndexedDB database of its own, and a string in
    // localStorage. Closing the browser must leave both findable by the scan below.
    const plain = A.save(A.from({ entries: [{ text: `Huisbezoek, ${controls.indexeddb}` }] }))
    assert.ok(Buffer.from(plain).includes(Buffer.from(controls.indexeddb)), "Automerge keeps a short text uncompressed")
    await p.evaluate(
      async ([bytes, text]) => {
        localStorage.setItem("regie.test-control", text)
        const db = await new Promise((res, rej) => {
          const r = indexedDB.open("regie-test-control", 1)
          r.onupgradeneeded = () => r.result.createObjectStore("documents")
          r.onsuccess = () => res(r.result)
          r.onerror = () => rej(r.error)
        })
        await new Promise((res, rej) => {
          const tx = db.transaction("documents", "readwrite")
          tx.objectStore("documents").put({ key: ["control"], binary: new Uint8Array(bytes) }, ["control"])
          tx.oncomplete = res
          tx.onerror = () => rej(tx.error)
        })
        db.close()
      },
      [[...plain], controls.localStorage],
    )
  } finally {
    await context.close()
  }

  const hits = scanFiles(profile, [sentinel, controls.indexeddb, controls.localStorage])
  assert.ok(hits.some(h => h.endsWith(controls.indexeddb)), `the scan finds the IndexedDB control: ${hits.join("\n")}`)
  assert.ok(hits.some(h => h.endsWith(controls.localStorage)), `the scan finds the localStorage control: ${hits.join("\n")}`)
  assert.deepEqual(hits.filter(h => h.endsWith(sentinel)), [], "no file of the profile holds the entry")

  // Nor the key (the server releases the same key again for this user and device), in base64 or
  // raw, and the page never printed it.
  const released = await server.api(server.roles.worker.token, "POST", "/api/v1/me/device-key", { device })
  assert.equal(released.status, 200, JSON.stringify(released.body?.error))
  const key = released.body.key
  assert.deepEqual(scanFiles(profile, [key, Buffer.from(key, "base64")]), [], "no file of the profile holds the key")
  assert.ok(!printed.some(line => line.includes(key)), "the console never showed the key")
})

test("after the idle time the app drops its key and shows the lock screen; a new login opens the store again", async () => {
  const p = await page(b, TABLET)
  try {
    const sentinel = uniqueSentinel("before-lock")
    await login(p, idleServer, "worker")
    await openFirstDossier(p)
    await writeEntry(p, sentinel)
    await settled(p)

    // No input for the server's idle time: locked, and nothing of the dossier is on the screen.
    const lock = p.getByTestId("lock-screen")
    await lock.waitFor({ timeout: (IDLE_SECONDS + 10) * 1000 })
    assert.equal(await lock.getAttribute("data-lock"), "idle")
    assert.match((await lock.textContent()) ?? "", /^Vergrendeld — u was 8 seconden niet actief\. Log opnieuw in/)
    assert.equal(await p.getByRole("heading", { name: "Vergrendeld" }).count(), 1)
    assert.equal(await p.getByText(sentinel).count(), 0, "the entry left the screen")
    assert.equal(await p.locator("#hulpvraag").count(), 0)
    assert.deepEqual((await unsealedValues(p)).unsealed, [])

    // Logging in again unlocks: the caseload and the entry are back.
    await p.locator(`button[data-login="worker"]`).click({ timeout: 20_000 })
    await openFirstDossier(p)
    await p.getByRole("tab", { name: "Verslaglegging" }).click()
    await p.getByText(sentinel).waitFor({ timeout: 10_000 })
  } finally {
    await p.context().close()
  }
})

test("a device reported lost is refused its key: the app says so and erases its store", async () => {
  const p = await page(b, TABLET)
  try {
    await login(p, server, "worker")
    await openFirstDossier(p)
    await settled(p)
    // The device's storage id, as the worker would read it off the tablet for the report.
    const device = await deviceStorageId(p)
    assert.match(device, /^[0-9a-f-]{36}$/)
    const reported = await server.api(server.roles.privacy_officer.token, "POST", "/api/v1/breaches", {
      what: "Tablet verloren in de trein",
      source: { kind: "lost_device", user: server.roles.worker.user, device },
      risk: "high",
      measures: "apparaat op afstand ingetrokken",
    })
    assert.equal(reported.status, 201, JSON.stringify(reported.body))

    // The next start asks for the key again, is refused, and erases the store.
    await p.goto(server.base + "/")
    await p.locator(`button[data-login="worker"]`).click({ timeout: 20_000 })
    const lost = p.getByTestId("device-lost")
    await lost.waitFor({ timeout: 20_000 })
    assert.match((await lost.textContent()) ?? "", /gemeld als verloren of gestolen.*gegevens op dit apparaat zijn gewist/)
    await waitFor("the store to be erased", async () =>
      (await p.evaluate(async () => (await indexedDB.databases()).map(d => d.name))).every(n => !n?.startsWith("regie-sealed-")),
    )
    assert.equal(await p.evaluate(() => localStorage.getItem("regie.session")), null)
    assert.equal(await p.getByTestId("caseload-row").count(), 0)
    // And a direct request for the key is refused too.
    const again = await server.api(server.roles.worker.token, "POST", "/api/v1/me/device-key", { device })
    assert.equal(again.status, 403)
    assert.equal(again.body.error.code, "device_revoked")
  } finally {
    await p.context().close()
  }
})
