// A resident's device as an unmodified automerge-repo 2.x client (no storage, one WebSocket to the
// server under test). Driven by tests/it/interop.rs, which reads the marker lines on stdout.
//
// Usage: node resident.mjs <ws-url-with-token> <plan automerge: url> <record automerge: url>
//                          <marker the worker writes into hulpvraag> <title of the goal to add>
//
// Prints, one per line and in this order:
//   PLAN_OK            the plan synced
//   SAW_WORKER_EDIT    the plan's hulpvraag contains the marker (a worker's edit reached us)
//   RECORD_UNAVAILABLE repo.find(record) failed: the server refused the record
//                      (RECORD_LEAKED instead, exit 1, if the record's content ever arrives)
//   RESIDENT_EDITED    pushed a goal { id, title } onto the plan's goals
// then lingers 500 ms so the edit goes out, shuts the repo down and exits 0. Failures are
// reported on stderr with a non-zero exit; the whole run is bounded at 45 s.
import { Repo } from "@automerge/automerge-repo"
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket"

const [wsUrl, planUrl, recordUrl, marker, goalTitle] = process.argv.slice(2)
if (!goalTitle) {
  console.error("usage: node resident.mjs <ws-url> <plan-url> <record-url> <marker> <goal-title>")
  process.exit(64)
}

const t0 = Date.now()
const log = (s) => console.error(`[resident +${String(Date.now() - t0).padStart(5)}ms] ${s}`)
const say = (line) => {
  log(line)
  console.log(line)
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const fail = (why) => {
  log(`FAIL: ${why}`)
  process.exit(1)
}
/** Rejects with `what` if `promise` takes longer than `ms`. */
const within = (ms, what, promise) =>
  Promise.race([
    promise,
    new Promise((_, reject) => setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms).unref()),
  ])

setTimeout(() => {
  log("TIMEOUT: resident did not finish within 45 s")
  process.exit(2)
}, 45_000).unref()

const repo = new Repo({ network: [new WebSocketClientAdapter(wsUrl)] })

// 1. The plan. repo.find() rejects when the document is unavailable (e.g. asked before the socket
//    was up); retry a few times.
let plan
for (let attempt = 1; !plan; attempt++) {
  try {
    plan = await within(10_000, "find(plan)", repo.find(planUrl))
  } catch (e) {
    log(`find(plan) attempt ${attempt}: ${e.message}`)
    if (attempt >= 20) fail("the plan never became available")
    await sleep(200)
  }
}
say("PLAN_OK")

// 2. Wait for the worker's edit to hulpvraag (Text; reads as a JS string).
await within(
  20_000,
  "waiting for the worker's hulpvraag edit",
  new Promise((resolve) => {
    const check = () => {
      if (String(plan.doc()?.hulpvraag ?? "").includes(marker)) {
        plan.off("change", check)
        resolve()
      }
    }
    plan.on("change", check)
    check()
  }),
).catch((e) => fail(e.message))
say("SAW_WORKER_EDIT")

// 3. The record is outside a resident's audience: find must fail, and no content may arrive.
try {
  const record = await within(10_000, "find(record)", repo.find(recordUrl))
  log(`record content: ${JSON.stringify(record.doc())}`)
  say("RECORD_LEAKED")
  process.exit(1)
} catch (e) {
  log(`find(record): ${e.message}`)
  if (!/unavailable/.test(e.message)) fail(`find(record) failed in an unexpected way: ${e.message}`)
}
say("RECORD_UNAVAILABLE")

// 4. A resident may add a goal (id + title; owner is reserved for workers).
plan.change((d) => {
  d.goals.push({ id: "g-resident-js", title: goalTitle })
})
say("RESIDENT_EDITED")

await sleep(500)
await repo.shutdown()
log("done")
process.exit(0)
