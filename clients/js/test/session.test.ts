// The connection over time: a token that expires mid-session is replaced through the callback and
// the client reconnects without losing an edit; two clients co-editing the plan with presence
// stay connected and converge.

import assert from "node:assert/strict"
import { after, before, test } from "node:test"

import * as A from "@automerge/automerge"
import { Presence } from "@automerge/automerge-repo"

import type { PlanDocument } from "../src/schema.generated.js"
import type { TokenReason } from "../src/index.js"
import { client, connected, sleep, startServer, waitFor, type Server } from "./support.js"

let server: Server
before(async () => {
  server = await startServer()
})
after(async () => {
  await server?.stop()
})

const planUrl = (s: Server) => s.roles.worker.documents.find(d => d.key === "plan")!.url

test("a token that expires mid-session is renewed through the callback and no edit is lost", async () => {
  const reasons: TokenReason[] = []
  const claims = { sub: "anna.visser", role: "worker", district: "noord", team: "wijkteam-noord" }
  const { client: anna } = await client(server, async reason => {
    reasons.push(reason)
    return server.mint(claims, 3)
  })
  const { client: bram } = await client(server, server.roles.worker2.token)
  try {
    await Promise.all([connected(anna), connected(bram)])
    const plan = await anna.open<PlanDocument>(planUrl(server))
    const seen = await bram.open<PlanDocument>(planUrl(server))
    await waitFor("the plan", () => Array.isArray(plan.doc()?.agreements))
    // Edits every 150 ms across the expiry (3 s tokens): before, around and after it.
    const ids: string[] = []
    const deadline = Date.now() + 7_000
    for (let i = 0; Date.now() < deadline; i++) {
      const id = `a-${i}`
      plan.change(d => {
        d.agreements.push({ id, text: `afspraak ${i}` })
      })
      ids.push(id)
      await sleep(150)
    }
    assert.ok(reasons.includes("expired"), `token reasons: ${reasons}`)
    assert.ok(anna.network.connections >= 2, `connections: ${anna.network.connections}`)
    await waitFor(
      "every edit at the other device",
      () => ids.every(id => (seen.doc()?.agreements ?? []).some(a => a.id === id)),
      20_000,
    )
  } finally {
    await Promise.all([anna.close(), bram.close()])
  }
})

test("two clients taking turns on the plan with presence stay connected and converge", async () => {
  const { client: anna } = await client(server, server.roles.worker.token)
  const { client: sanne } = await client(server, server.roles.resident.token)
  try {
    await Promise.all([connected(anna), connected(sanne)])
    const a = await anna.open<PlanDocument>(planUrl(server))
    const s = await sanne.open<PlanDocument>(planUrl(server))
    await waitFor("both plans", () => !!a.doc()?.goals && !!s.doc()?.goals)
    const pa = new Presence<{ name: string }>({ handle: a.handle })
    const ps = new Presence<{ name: string }>({ handle: s.handle })
    pa.start({ initialState: { name: "Anna" }, heartbeatMs: 200 })
    ps.start({ initialState: { name: "Sanne" }, heartbeatMs: 200 })
    try {
      await waitFor("each sees the other's presence", () => {
        const seenByA = Object.values(pa.getPeerStates().value).map((p: any) => p.value?.name)
        const seenByS = Object.values(ps.getPeerStates().value).map((p: any) => p.value?.name)
        return seenByA.includes("Sanne") && seenByS.includes("Anna")
      })
      for (let i = 0; i < 5; i++) {
        a.change(d => {
          A.splice(d, ["hulpvraag"], 0, 0, `T${i} `)
        })
        await waitFor(`sanne sees turn ${i}`, () => s.doc()!.hulpvraag.includes(`T${i} `))
        s.change(d => {
          d.goals.push({ id: `g-turn-${i}`, title: `beurt ${i}` })
        })
        await waitFor(`anna sees turn ${i}`, () => a.doc()!.goals.some(g => g.id === `g-turn-${i}`))
      }
      await waitFor("convergence", () =>
        A.getHeads(a.doc()!).sort().join() === A.getHeads(s.doc()!).sort().join(),
      )
      assert.deepEqual(A.toJS(a.doc()!), A.toJS(s.doc()!))
      assert.equal(anna.network.connections, 1, "anna stayed connected")
      assert.equal(sanne.network.connections, 1, "sanne stayed connected")
    } finally {
      pa.stop()
      ps.stop()
    }
  } finally {
    await Promise.all([anna.close(), sanne.close()])
  }
})

// Fully concurrent edits: the hub now and then livelocks one device's sync exchange (README,
// "Known issues"); the client breaks the livelock by reconnecting, so the test requires
// convergence and allows reconnections only as livelock breaks, each one logged.
test("two clients co-editing the plan concurrently with presence converge", async () => {
  const { client: anna } = await client(server, server.roles.worker.token)
  const { client: sanne } = await client(server, server.roles.resident.token)
  try {
    await Promise.all([connected(anna), connected(sanne)])
    const a = await anna.open<PlanDocument>(planUrl(server))
    const s = await sanne.open<PlanDocument>(planUrl(server))
    await waitFor("both plans", () => !!a.doc()?.goals && !!s.doc()?.goals)
    const pa = new Presence<{ name: string; field: string }>({ handle: a.handle })
    const ps = new Presence<{ name: string; field: string }>({ handle: s.handle })
    pa.start({ initialState: { name: "Anna", field: "hulpvraag" }, heartbeatMs: 200 })
    ps.start({ initialState: { name: "Sanne", field: "goals" }, heartbeatMs: 200 })
    try {
      await waitFor("each sees the other's presence", () => {
        const seenByA = Object.values(pa.getPeerStates().value).map((p: any) => p.value?.name)
        const seenByS = Object.values(ps.getPeerStates().value).map((p: any) => p.value?.name)
        return seenByA.includes("Sanne") && seenByS.includes("Anna")
      })
      for (let i = 0; i < 20; i++) {
        a.change(d => {
          A.splice(d, ["hulpvraag"], 0, 0, `A${i} `)
        })
        s.change(d => {
          d.goals.push({ id: `g-s-${i}`, title: `doel ${i}` })
        })
        await sleep(20)
      }
      const state = () =>
        JSON.stringify({
          anna: { goals: a.doc()!.goals.length, hulpvraag: a.doc()!.hulpvraag.length, heads: A.getHeads(a.doc()!) },
          sanne: { goals: s.doc()!.goals.length, hulpvraag: s.doc()!.hulpvraag.length, heads: A.getHeads(s.doc()!) },
        })
      await waitFor("convergence", () =>
        A.getHeads(a.doc()!).sort().join() === A.getHeads(s.doc()!).sort().join(),
      ).catch(async e => {
        const { client: third } = await client(server, server.roles.worker2.token)
        await connected(third)
        const t = await third.open<PlanDocument>(planUrl(server))
        await sleep(2000)
        const serverHeads = A.getHeads(t.doc()!)
        await third.close()
        const diag = {
          anna: { connections: anna.network.connections, online: anna.online, counts: anna.network.counts },
          sanne: { connections: sanne.network.connections, online: sanne.online, counts: sanne.network.counts },
        }
        throw new Error(
          `${e.message}: ${state()} server: ${JSON.stringify(serverHeads)} ${JSON.stringify(diag)}`,
        )
      })
      assert.deepEqual(A.toJS(a.doc()!), A.toJS(s.doc()!))
      assert.equal(a.doc()!.goals.filter(g => g.id.startsWith("g-s-")).length, 20)
      assert.equal(anna.network.connections, 1 + anna.stormsBroken, "anna reconnected only to break a livelock")
      assert.equal(sanne.network.connections, 1 + sanne.stormsBroken, "sanne reconnected only to break a livelock")
      if (anna.stormsBroken + sanne.stormsBroken > 0) {
        console.error(`sync livelocks broken by reconnecting: ${anna.stormsBroken + sanne.stormsBroken}`)
      }
      assert.ok(anna.online && sanne.online)
    } finally {
      pa.stop()
      ps.stop()
    }
  } finally {
    await Promise.all([anna.close(), sanne.close()])
  }
})
