// Two unmodified automerge-repo 2.x clients (a worker and a resident) co-editing the plan with
// presence: each broadcasts an ephemeral message every 100 ms for the given number of seconds.
// Driven by tests/it/bounds.rs. automerge-repo passes every ephemeral message it receives on
// to its other peers, keeping the original sender id: the server must neither close on that
// nor relay it again.
//
// Usage: node presence.mjs <worker ws-url> <resident ws-url> <plan automerge: url> <seconds>
//
// Prints one JSON line: { workerHeard, residentHeard, disconnects, converged }, exit 0; failures
// on stderr with a non-zero exit. Bounded at <seconds> + 40 s.
import { Repo } from "@automerge/automerge-repo"
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket"

const [workerUrl, residentUrl, planUrl, secondsArg] = process.argv.slice(2)
const seconds = Number(secondsArg)
if (!planUrl || !(seconds > 0)) {
  console.error("usage: node presence.mjs <worker-ws-url> <resident-ws-url> <plan-url> <seconds>")
  process.exit(64)
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
setTimeout(() => {
  console.error(`TIMEOUT: presence run did not finish within ${seconds + 40} s`)
  process.exit(2)
}, (seconds + 40) * 1000).unref()

async function open(url, name) {
  const repo = new Repo({ network: [new WebSocketClientAdapter(url)] })
  const state = { repo, heard: 0, disconnects: 0, name }
  repo.networkSubsystem.on("peer-disconnected", () => state.disconnects++)
  for (let attempt = 1; !state.plan; attempt++) {
    try {
      state.plan = await repo.find(planUrl)
    } catch (e) {
      if (attempt >= 50) throw new Error(`${name}: the plan never became available: ${e.message}`)
      await sleep(200)
    }
  }
  state.plan.on("ephemeral-message", () => state.heard++)
  return state
}

const worker = await open(workerUrl, "worker")
const resident = await open(residentUrl, "resident")

const until = Date.now() + seconds * 1000
let n = 0
while (Date.now() < until) {
  n++
  worker.plan.broadcast({ cursor: n, who: "worker" })
  resident.plan.broadcast({ cursor: n, who: "resident" })
  if (n % 50 === 0) {
    worker.plan.change((d) => {
      d.hulpvraag = `bijgewerkt ${n}`
    })
  }
  await sleep(100)
}
const last = `bijgewerkt ${n - (n % 50)}`
let converged = false
for (let i = 0; i < 100 && !converged; i++) {
  converged = resident.plan.doc()?.hulpvraag === last && worker.plan.doc()?.hulpvraag === last
  if (!converged) await sleep(100)
}
console.log(
  JSON.stringify({
    workerHeard: worker.heard,
    residentHeard: resident.heard,
    disconnects: worker.disconnects + resident.disconnects,
    converged,
    sent: n,
  }),
)
await worker.repo.shutdown()
await resident.repo.shutdown()
process.exit(0)
