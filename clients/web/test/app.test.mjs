// The web app in headless Chromium against a real `regie-server demo` (issue 15): co-editing the
// plan live, working offline through a reload (locked until back online, R29) and reconciling, a refused edit that reaches no
// one, and a purge that leaves no byte of an unassigned dossier in IndexedDB.
import assert from "node:assert/strict"
import { after, before, test } from "node:test"

import {
  PHONE,
  TABLET,
  browser,
  chromiumPath,
  login,
  openFirstDossier,
  page,
  scanIndexedDB,
  settled,
  shellCached,
  startServer,
  syncText,
  uniqueSentinel,
  waitFor,
} from "./support.mjs"

let server
let b
before(async () => {
  b = await browser()
  if (!b) throw new Error(`no Chromium at ${chromiumPath()}`)
  server = await startServer()
})
after(async () => {
  await b?.close()
  await server?.close()
})

test("the resident and the worker co-edit the plan live, with presence", async () => {
  const worker = await page(b, TABLET)
  const resident = await page(b, PHONE)
  try {
    await login(worker, server, "worker")
    await login(resident, server, "resident")
    await openFirstDossier(worker)
    await resident.locator("#hulpvraag").waitFor({ timeout: 20_000 })

    const fromWorker = uniqueSentinel("worker-hulpvraag")
    await worker.locator("#hulpvraag").fill(`Sanne wil rust in huis. ${fromWorker}`)
    await waitFor("the worker's edit on the resident's phone", async () =>
      (await resident.locator("#hulpvraag").inputValue()).includes(fromWorker),
    )

    await worker.getByRole("button", { name: "Doel toevoegen" }).click()
    const goal = worker.locator("input[id^='goal-g-']").first()
    await goal.waitFor()
    await goal.fill("Zelf de post openen")
    const residentGoal = resident.locator("input[id^='goal-g-']").first()
    await waitFor("the worker's goal on the resident's phone", async () =>
      (await residentGoal.count()) > 0 && (await residentGoal.inputValue()) === "Zelf de post openen",
    )

    const fromResident = uniqueSentinel("resident-goal")
    await residentGoal.fill(`Zelf de post openen, elke maandag ${fromResident}`)
    await waitFor("the resident's edit on the worker's tablet", async () =>
      (await goal.inputValue()).includes(fromResident),
    )

    // Presence: each sees the other, and which field the other is in.
    await resident.locator("#hulpvraag").focus()
    await waitFor("the resident's presence on the worker's tablet", async () =>
      ((await worker.getByTestId("presence").textContent()) ?? "").includes(
        `${server.roles.resident.user} bewerkt nu: Hulpvraag`,
      ),
    )
    await waitFor("the worker's presence on the resident's phone", async () =>
      ((await resident.getByTestId("presence").textContent()) ?? "").includes(server.roles.worker.user),
    )
    await settled(worker)
    await settled(resident)
  } finally {
    await worker.context().close()
    await resident.context().close()
  }
})

test("a forbidden edit in the resident's browser is shown as refused and reaches no one", async () => {
  const worker = await page(b, TABLET)
  const resident = await page(b, PHONE)
  try {
    await login(worker, server, "worker")
    await login(resident, server, "resident")
    await openFirstDossier(worker)
    await worker.getByRole("button", { name: "Doel toevoegen" }).click()
    const goals = await worker.locator("select[id^='goal-owner-']").count()
    const owner = worker.locator("select[id^='goal-owner-']").nth(goals - 1)
    await owner.selectOption("worker")
    await settled(worker)
    const id = (await owner.getAttribute("id")) ?? ""
    const residentOwner = resident.locator(`#${id}`)
    await waitFor("the goal on the resident's phone", async () =>
      (await residentOwner.count()) > 0 && (await residentOwner.inputValue()) === "worker",
    )

    // goals/*/owner is reserved to workers: the client refuses before any change exists.
    await residentOwner.selectOption("resident")
    const refusal = resident.getByTestId("refusal").first()
    await refusal.waitFor({ timeout: 10_000 })
    assert.match((await refusal.textContent()) ?? "", /goals\/\d+\/owner — dit veld mag alleen de wijkwerker wijzigen/)
    assert.equal(await residentOwner.inputValue(), "worker", "the select shows what was kept")

    // A permitted edit after it travels; the refused one never does.
    const after = uniqueSentinel("after-refusal")
    await resident.locator("#hulpvraag").fill(`Na de weigering ${after}`)
    await waitFor("the resident's later edit on the worker's tablet", async () =>
      (await worker.locator("#hulpvraag").inputValue()).includes(after),
    )
    assert.equal(await owner.inputValue(), "worker", "the refused owner did not reach the worker")
    await settled(resident)
    assert.equal(await syncText(resident, "sync-pending"), "Alles verstuurd")
    // And a second device of a worker, fresh from the server, agrees.
    const second = await page(b, TABLET)
    try {
      await login(second, server, "worker2")
      await openFirstDossier(second)
      await waitFor("the goal on a fresh device", async () => (await second.locator(`#${id}`).count()) > 0)
      assert.equal(await second.locator(`#${id}`).inputValue(), "worker")
    } finally {
      await second.context().close()
    }
  } finally {
    await worker.context().close()
    await resident.context().close()
  }
})

test("offline: edits and record entries survive a reload without a server and reconcile", async () => {
  const worker = await page(b, TABLET)
  const other = await page(b, TABLET)
  let stopped = false
  try {
    await login(worker, server, "worker")
    await shellCached(worker)
    await openFirstDossier(worker)
    await settled(worker)
    // Open the record once online so it is on the device.
    await worker.getByRole("tab", { name: "Verslaglegging" }).click()
    await worker.locator("#entry-text").waitFor()
    await worker.getByRole("tab", { name: "Plan" }).click()

    // A second dossier, never opened on this tablet while online.
    const created = await server.api(server.roles.worker.token, "POST", "/api/v1/dossiers", {
      district: server.roles.worker.documents[0].district,
      team: server.roles.worker.documents[0].team,
      assigned: [server.roles.worker.user],
      persons: [{ id: "p-twee", name: "Bewoner Twee", birth_date: "1970-01-01" }],
      resident_agreed: true,
      agreed_on: new Date().toISOString().slice(0, 10),
    })
    assert.ok(created.status < 300, JSON.stringify(created.body))
    await worker.getByRole("button", { name: /Terug naar de caseload/ }).click()
    await worker.getByRole("button", { name: "Caseload vernieuwen" }).click()
    await waitFor("the new dossier in the caseload", async () => (await worker.getByTestId("caseload-row").count()) === 2)
    await worker.getByText("Bewoner Twee").waitFor()
    await settled(worker)

    await server.stop()
    stopped = true
    await waitFor("the app to notice it is offline", async () =>
      (await syncText(worker, "sync-online")).startsWith("Geen verbinding"),
    )
    const unopened = uniqueSentinel("never-opened-online")
    await worker.getByTestId("caseload-row").filter({ hasText: "Bewoner Twee" }).getByRole("button", { name: "Openen" }).click()
    await worker.locator("#hulpvraag").fill(unopened)
    assert.equal(await worker.getByTestId("refusal").count(), 0, "its write rules were on the tablet")
    await worker.getByRole("button", { name: /Terug naar de caseload/ }).click()
    await worker.getByTestId("caseload-row").filter({ hasText: "Sanne Bakker" }).getByRole("button", { name: "Openen" }).click()
    await worker.locator("#hulpvraag").waitFor()
    const plan = uniqueSentinel("offline-plan")
    await worker.locator("#hulpvraag").fill(`Offline bijgewerkt ${plan}`)
    await worker.getByRole("tab", { name: "Verslaglegging" }).click()
    const entries = [uniqueSentinel("offline-entry-1"), uniqueSentinel("offline-entry-2")]
    for (const [i, text] of entries.entries()) {
      await worker.locator("#entry-kind").selectOption(i === 0 ? "fact" : "opinion")
      await worker.getByRole("checkbox", { name: "Sanne Bakker" }).check()
      await worker.locator("#entry-text").fill(text)
      await worker.getByRole("button", { name: "Notitie opslaan" }).click()
      await worker.getByText(text).waitFor()
    }
    await waitFor("pending edits to show", async () => /nog niet verstuurd/.test(await syncText(worker, "sync-pending")))

    // Reload without a server: the shell comes from the service worker, but the store stays
    // sealed, since its key is released only by the server (R29): the lock screen says so.
    await worker.reload()
    await worker.getByTestId("lock-screen").waitFor({ timeout: 20_000 })
    await worker.locator("#token").fill(server.roles.worker.token)
    await worker.getByRole("button", { name: "Inloggen", exact: true }).click()
    await waitFor("the lock screen to say that unlocking needs a connection", async () =>
      (await worker.getByTestId("lock-screen").getAttribute("data-lock")) === "offline",
    )
    assert.match((await worker.getByTestId("lock-screen").textContent()) ?? "", /Ontgrendelen kan alleen met verbinding/)
    assert.equal(await worker.getByTestId("caseload-row").count(), 0)

    // Back online, a login unlocks the store: the edits made offline were kept in it, sealed,
    // and are shown and sent (the server never had them).
    await server.start()
    stopped = false
    await login(worker, server, "worker")
    await worker.getByTestId("caseload-row").filter({ hasText: "Sanne Bakker" }).getByRole("button", { name: "Openen" }).click({ timeout: 20_000 })
    await worker.locator("#hulpvraag").waitFor()
    assert.ok((await worker.locator("#hulpvraag").inputValue()).includes(plan), "the offline plan edit after reload")
    await worker.getByRole("tab", { name: "Verslaglegging" }).click()
    for (const text of entries) await worker.getByText(text).waitFor({ timeout: 10_000 })
    await settled(worker, 60_000)

    await login(other, server, "worker2")
    await openFirstDossier(other)
    await waitFor("the offline plan edit on the second worker's tablet", async () =>
      (await other.locator("#hulpvraag").inputValue()).includes(plan),
    )
    await other.getByRole("tab", { name: "Verslaglegging" }).click()
    for (const text of entries) await other.getByText(text).waitFor({ timeout: 20_000 })
    // The dossier edited offline without having been opened online reached the server too.
    const again = await page(b, TABLET)
    try {
      await login(again, server, "worker")
      await again.getByTestId("caseload-row").filter({ hasText: "Bewoner Twee" }).getByRole("button", { name: "Openen" }).click({ timeout: 20_000 })
      await waitFor("the never-opened dossier's offline edit on a fresh tablet", async () =>
        (await again.locator("#hulpvraag").inputValue()) === unopened,
      )
    } finally {
      await again.context().close()
    }
  } finally {
    if (stopped) await server.start()
    await worker.context().close()
    await other.context().close()
  }
})

test("after unassignment the worker's IndexedDB holds no byte of the dossier", async () => {
  const bram = await page(b, TABLET)
  try {
    await login(bram, server, "worker2")
    await openFirstDossier(bram)
    const sentinel = uniqueSentinel("purge")
    await bram.getByRole("tab", { name: "Verslaglegging" }).click()
    await bram.getByRole("checkbox", { name: "Daan Bakker" }).check()
    await bram.locator("#entry-text").fill(`Werkaantekening ${sentinel}`)
    await bram.getByRole("button", { name: "Notitie opslaan" }).click()
    await settled(bram)
    const ids = server.roles.worker2.documents.map(d => d.url.replace("automerge:", ""))
    const needles = [sentinel, server.dossier, ...ids]
    // The scan finds what is there: the dossier's documents are on the device now (their
    // content sealed, so the sentinel is in no raw byte even before the purge).
    await waitFor("the dossier's documents in IndexedDB", async () => (await scanIndexedDB(bram, ids)).length > 0)
    assert.deepEqual(await scanIndexedDB(bram, [sentinel]), [])

    const res = await server.api(
      server.roles.manager.token,
      "DELETE",
      `/api/v1/dossiers/${server.dossier}/assignments/bram.dekker`,
    )
    assert.equal(res.status, 204, JSON.stringify(res.body))
    await bram.getByTestId("revoked-notice").first().waitFor({ timeout: 20_000 })
    await waitFor("the caseload to empty", async () => (await bram.getByText("Geen dossiers op dit apparaat.").count()) > 0)
    await waitFor("no byte of the dossier in IndexedDB", async () => (await scanIndexedDB(bram, needles)).length === 0, 10_000)
    // And it stays so after a reload and a new login (nothing comes back from a cache).
    await login(bram, server, "worker2")
    await bram.getByText("Geen dossiers op dit apparaat.").waitFor({ timeout: 20_000 })
    assert.deepEqual(await scanIndexedDB(bram, needles), [])
  } finally {
    await bram.context().close()
  }
})

test("logout deletes the IndexedDB database", async () => {
  const p = await page(b, TABLET)
  try {
    await login(p, server, "worker")
    await openFirstDossier(p)
    await settled(p)
    const before = await p.evaluate(async () => (await indexedDB.databases()).map(d => d.name))
    assert.ok(before.some(n => n?.startsWith("regie-")), `a regie database exists: ${before}`)
    p.once("dialog", d => d.accept())
    await p.getByRole("button", { name: "Uitloggen" }).click()
    await p.locator("button[data-login]").first().waitFor()
    const dbs = await p.evaluate(async () => (await indexedDB.databases()).map(d => d.name))
    assert.deepEqual(dbs.filter(n => n?.startsWith("regie-")), [])
    assert.deepEqual(await p.evaluate(() => Object.keys(localStorage)), [])
  } finally {
    await p.context().close()
  }
})
