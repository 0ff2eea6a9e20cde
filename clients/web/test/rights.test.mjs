// Resident rights in the web app against a real `regie-server demo` (issue 16): the resident
// files a request on their phone and sees its status and one-month deadline; the worker sees
// it in the dossier's requests and refuses it with its legal ground; the resident then reads
// the refusal and its ground. Accessible: axe-core finds nothing serious on either screen.
import assert from "node:assert/strict"
import { readFileSync } from "node:fs"
import { createRequire } from "node:module"
import { after, before, test } from "node:test"

import { PHONE, TABLET, browser, chromiumPath, login, openFirstDossier, page, startServer, waitFor } from "./support.mjs"

const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8")

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

async function noSeriousViolations(p, name) {
  await p.addScriptTag({ content: axeSource })
  const serious = await p.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ["violations"] })
    return r.violations.filter(v => v.impact === "serious" || v.impact === "critical").map(v => v.id)
  })
  assert.deepEqual(serious, [], `${name}: axe-core found serious violations`)
}

test("a resident files an erasure request and reads the worker's refusal with its legal ground", async () => {
  const resident = await page(b, PHONE, { bypassCSP: true })
  const worker = await page(b, TABLET, { bypassCSP: true })
  try {
    await login(resident, server, "resident")
    await resident.getByRole("button", { name: "Mijn verzoeken" }).click()
    await resident.locator("#rights-kind").selectOption("erasure")
    await resident.locator("#rights-details").fill("Verwijder de notities over mijn schulden")
    await resident.getByRole("button", { name: "Verzoek indienen" }).click()
    await resident.getByRole("status").filter({ hasText: "Uw verzoek is ontvangen." }).waitFor({ timeout: 20_000 })
    const mine = resident.getByTestId("rights-request").first()
    await mine.waitFor({ timeout: 20_000 })
    assert.match(await mine.textContent(), /verwijdering/)
    assert.match(await mine.textContent(), /antwoord uiterlijk \d{4}-\d{2}-\d{2}/)
    assert.match(await mine.getByTestId("rights-status").textContent(), /ontvangen, in behandeling/)
    await noSeriousViolations(resident, "resident-requests")

    await login(worker, server, "worker")
    await openFirstDossier(worker)
    await worker.getByRole("tab", { name: "Verzoeken" }).click()
    const request = worker.getByTestId("rights-request").filter({ hasText: "Verwijder de notities" })
    await request.waitFor({ timeout: 20_000 })
    await noSeriousViolations(worker, "worker-requests")
    await request.getByLabel("Afwijzen").check()
    await request.getByLabel("Wettelijke grond").selectOption("retention_duty")
    await request.getByLabel("Motivering").fill("De Jeugdwet verplicht ons dit dossier twintig jaar te bewaren.")
    await request.getByRole("button", { name: "Besluit opslaan" }).click()
    await waitFor("the refusal in the worker's list", async () =>
      /afgewezen/.test((await request.getByTestId("rights-status").textContent()) ?? ""),
    )

    // A reload locks the app (the key is in memory only): the resident logs in again.
    await login(resident, server, "resident")
    await resident.getByRole("button", { name: "Mijn verzoeken" }).click()
    const decided = resident.getByTestId("rights-request").first()
    await waitFor("the refusal on the resident's phone", async () =>
      /afgewezen; u kunt bezwaar maken/.test((await decided.getByTestId("rights-status").textContent()) ?? ""),
    )
    assert.match(await decided.textContent(), /wettelijke bewaarplicht/)
    assert.match(await decided.textContent(), /twintig jaar/)
  } finally {
    await resident.context().close()
    await worker.context().close()
  }
})
