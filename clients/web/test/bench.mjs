// Benchmark (not a test): a worker's tablet with a caseload of 40 dossiers.
//  1. first render after unlocking: the page reloads (which locks it: the device key is in
//     memory only, R29) and the worker logs in again; from the click on the login button to all
//     40 caseload rows showing their household's names (the key fetched, the sealed store
//     opened), measured in the page (performance.now()).
//  2. time to first sync after reconnect: with an offline plan edit and record entry waiting,
//     the server starts again; measured from the server answering its health check to the app
//     showing "Verbonden" (connected: bounded by the client's reconnect backoff, 250 ms doubling
//     to 3 s) and to "Alles verstuurd" (the edits acknowledged).
// Three rounds; medians. `npm run bench -w @regie/web` (REGIE_SERVER_BIN, CHROMIUM_BIN as for
// the tests). Numbers go to BENCHMARKS.md by hand.
import { TABLET, browser, login, page, settled, shellCached, startServer, syncText, uniqueSentinel, waitFor } from "./support.mjs"

const DOSSIERS = 40
const ROUNDS = Number(process.env.ROUNDS ?? 3)
const median = xs => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

const b = await browser()
if (!b) throw new Error("no Chromium")
const server = await startServer()
try {
  const worker = server.roles.worker.token
  const today = new Date().toISOString().slice(0, 10)
  for (let i = 1; i < DOSSIERS; i++) {
    const res = await server.api(worker, "POST", "/api/v1/dossiers", {
      district: server.roles.worker.documents[0].district,
      team: server.roles.worker.documents[0].team,
      assigned: [server.roles.worker.user],
      persons: [
        { id: `p-${i}-a`, name: `Bewoner ${i}`, birth_date: "1980-01-01" },
        { id: `p-${i}-b`, name: `Kind ${i}`, birth_date: "2012-01-01" },
      ],
      resident_agreed: true,
      agreed_on: today,
    })
    if (res.status !== 201 && res.status !== 200) throw new Error(`create dossier: ${res.status} ${JSON.stringify(res.body)}`)
  }
  const p = await page(b, TABLET)
  await login(p, server, "worker")
  await shellCached(p)
  const allNamed = () =>
    p.waitForFunction(
      n => {
        const rows = document.querySelectorAll("[data-testid=caseload-row]")
        return rows.length === n && [...rows].every(r => !r.textContent?.includes("…")) ? performance.now() : false
      },
      DOSSIERS,
      { polling: "raf", timeout: 60_000 },
    )
  await allNamed()
  await settled(p, 60_000)
  const render = []
  const connected = []
  const acknowledged = []
  for (let round = 0; round < ROUNDS; round++) {
    await p.reload()
    const button = p.locator(`button[data-login="worker"]`)
    await button.waitFor({ timeout: 20_000 })
    const clicked = await p.evaluate(() => performance.now())
    await button.click()
    render.push((await (await allNamed()).jsonValue()) - clicked)
    await settled(p, 60_000)
    await server.stop()
    await waitFor("offline", async () => (await syncText(p, "sync-online")).startsWith("Geen verbinding"))
    // An offline edit in one dossier: plan and record.
    await p.getByTestId("caseload-row").first().getByRole("button", { name: "Openen" }).click()
    await p.locator("#hulpvraag").fill(`Offline ${uniqueSentinel("bench")}`)
    await p.getByRole("tab", { name: "Verslaglegging" }).click()
    await p.getByRole("checkbox").first().check()
    await p.locator("#entry-text").fill(`Notitie ${round}`)
    await p.getByRole("button", { name: "Notitie opslaan" }).click()
    await p.getByText(`Notitie ${round}`).waitFor().catch(async e => {
      await p.screenshot({ path: "/tmp/bench-fail.png", fullPage: true })
      throw e
    })
    if (process.env.BENCH_DEBUG) {
      console.log(await syncText(p, "sync-pending"), await p.evaluate(() => Object.keys(JSON.parse(localStorage.getItem("regie.sync") ?? "{}").heads ?? {}).length))
      await p.screenshot({ path: "/tmp/bench.png" })
    }
    await waitFor("pending", async () => /nog niet verstuurd/.test(await syncText(p, "sync-pending")))
    await server.start()
    const t0 = Date.now()
    await waitFor("online", async () => (await syncText(p, "sync-online")) === "Verbonden", 60_000)
    connected.push(Date.now() - t0)
    await settled(p, 60_000)
    acknowledged.push(Date.now() - t0)
    await p.getByRole("button", { name: /Terug naar de caseload/ }).click()
  }
  const fmt = xs => `${xs.map(x => Math.round(x)).join(", ")} ms (median ${Math.round(median(xs))} ms)`
  console.log(`caseload: ${DOSSIERS} dossiers, ${ROUNDS} rounds`)
  console.log(`first render after unlocking (login click → 40 named rows): ${fmt(render)}`)
  console.log(`reconnect: server healthy → connected: ${fmt(connected)}`)
  console.log(`reconnect: server healthy → edits acknowledged: ${fmt(acknowledged)}`)
} finally {
  await b.close()
  await server.close()
}
