// Repeats the co-editing scenario of test/session.test.ts (a worker splicing hulpvraag, a
// resident adding agreements, presence on both) against a fresh `regie-server demo`, and writes
// per round "ok" or "STALL" with both heads and message counts to /tmp/stress.out. Used to
// chase a rare sync livelock with the hub (see the README). Run after `npm run build`:
//   REGIE_SERVER_BIN=…/regie-server node scripts/stress-converge.mjs
import { appendFileSync } from "node:fs"
import * as A from "@automerge/automerge"
import { Presence } from "@automerge/automerge-repo"
import { client, connected, sleep, startServer, waitFor } from "../dist/test/support.js"
const out = (s) => appendFileSync("/tmp/stress.out", s + "\n")
process.on("uncaughtException", e => { out("UNCAUGHT " + e.stack); process.exit(3) })
const server = await startServer()
const planUrl = server.roles.worker.documents.find(d => d.key === "plan").url
for (let round = 0; round < 12; round++) {
  const { client: anna } = await client(server, server.roles.worker.token, { log: l => out("anna: " + l) })
  const { client: sanne } = await client(server, server.roles.resident.token, { log: l => out("sanne: " + l) })
  anna.on("rejected", e => out("anna rejected " + JSON.stringify(e)))
  sanne.on("rejected", e => out("sanne rejected " + JSON.stringify(e)))
  await Promise.all([connected(anna), connected(sanne)])
  const a = await anna.open(planUrl), s = await sanne.open(planUrl)
  await waitFor("both", () => !!a.doc()?.agreements && !!s.doc()?.agreements)
  const pa = new Presence({ handle: a.handle }), ps = new Presence({ handle: s.handle })
  if (!process.env.NO_PRESENCE) { pa.start({ initialState: { n: "A" }, heartbeatMs: 200 }); ps.start({ initialState: { n: "S" }, heartbeatMs: 200 }) }
  for (let i = 0; i < 20; i++) {
    ;(process.env.RAW ? a.handle : a).change(d => { A.splice(d, ["hulpvraag"], 0, 0, `A${round}.${i} `) })
    ;(process.env.RAW ? s.handle : s).change(d => { d.agreements.push({ id: `a-${round}-${i}`, text: `afspraak ${i}` }) })
    await sleep(20)
  }
  try {
    await waitFor("conv", () => A.getHeads(a.doc()).sort().join() === A.getHeads(s.doc()).sort().join(), 8000)
    out(`round ${round} ok (storms broken: ${anna.stormsBroken + sanne.stormsBroken})`)
  } catch {
    if (process.env.RECONNECT_ON_STALL) {
      anna.network.dropConnection(); sanne.network.dropConnection()
      const healed = await waitFor("conv", () => A.getHeads(a.doc()).sort().join() === A.getHeads(s.doc()).sort().join(), 8000).then(() => true, () => false)
      out(`round ${round} after reconnect: ${healed ? "converged" : "still stalled"}`)
    }
    out(`round ${round} STALL ` + JSON.stringify({a: A.getHeads(a.doc()), s: A.getHeads(s.doc()), ac: anna.network.counts, sc: sanne.network.counts, conn: [anna.network.connections, sanne.network.connections]}))
  }
  pa.stop(); ps.stop()
  await Promise.all([anna.close(), sanne.close()])
}
out("done")
await server.stop()
process.exit(0)
