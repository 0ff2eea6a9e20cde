// A hostile resident's device: an unmodified automerge-repo 2.x client (no storage, one WebSocket
// to the server under test) that writes a field reserved to workers. It knows nothing of Regie's
// `rejected` message, so it never learns that its change was refused. Driven by
// tests/it/validated.rs, which reads the marker lines on stdout.
//
// Usage: node hostile.mjs <ws-url-with-token> <plan automerge: url> <goal id> <goal title>
//
// Prints, one per line and in this order:
//   PLAN_OK            the plan synced
//   HOSTILE_PUSHED     pushed a goal { id, title, owner: "worker" } onto the plan's goals
//                      (`owner` is reserved to workers: the server must reject the whole change)
//   LOCAL_GOALS <ids>  once stdin closes: the goal ids in this client's own copy, comma-separated
//                      (its copy keeps the refused goal; nothing tells an unmodified client)
// then shuts the repo down and exits 0. The test closes stdin when it has checked everything, so
// the client stays connected while the other peers keep syncing. Failures are reported on stderr
// with a non-zero exit; the whole run is bounded at 45 s.
import { Repo } from "@automerge/automerge-repo"
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket"

const [wsUrl, planUrl, goalId, goalTitle] = process.argv.slice(2)
if (!goalTitle) {
  console.error("usage: node hostile.mjs <ws-url> <plan-url> <goal-id> <goal-title>")
  process.exit(64)
}

const t0 = Date.now()
const log = (s) => console.error(`[hostile +${String(Date.now() - t0).padStart(5)}ms] ${s}`)
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
  log("TIMEOUT: hostile client did not finish within 45 s")
  process.exit(2)
}, 45_000).unref()

// Start listening for stdin's end at once, so an early close is not missed.
const stdinClosed = new Promise((resolve) => {
  process.stdin.on("end", resolve)
  process.stdin.on("close", resolve)
  process.stdin.resume()
})

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
if (!Array.isArray(plan.doc()?.goals)) fail(`the plan has no goals list: ${JSON.stringify(plan.doc())}`)
say("PLAN_OK")

// 2. The forbidden write: a goal owned by a worker. automerge-repo sends it as it would any edit.
plan.change((d) => {
  d.goals.push({ id: goalId, title: goalTitle, owner: "worker" })
})
say("HOSTILE_PUSHED")

// 3. Stay connected until the test is done with the other peers.
await stdinClosed
const ids = (plan.doc()?.goals ?? []).map((g) => String(g.id))
say(`LOCAL_GOALS ${ids.join(",")}`)

await repo.shutdown()
log("done")
process.exit(0)
