// I2 and "what may I write?": a resident's edit outside the write rules is refused by the client
// before it becomes a change; a forbidden edit made by hand on the raw automerge-repo handle is
// rejected whole by the server, the client resets to the server's heads and replays the
// permitted edits of that batch as new changes, the app gets an event naming the refused edit
// and the reason code, and another device never sees the refused change.

import assert from "node:assert/strict"
import { after, before, test } from "node:test"

import * as A from "@automerge/automerge"

import { WriteRefusedError, type RejectedEvent } from "../src/index.js"
import type { PlanDocument } from "../src/schema.generated.js"
import { client, connected, startServer, uniqueSentinel, waitFor, type Server } from "./support.js"

let server: Server
before(async () => {
  server = await startServer()
})
after(async () => {
  await server?.stop()
})

const planUrl = (s: Server, role: string) => s.roles[role].documents.find(d => d.key === "plan")!.url

test("the write rules come from the server's policy, and a local edit outside them never becomes a change", async () => {
  const { client: sanne } = await client(server, server.roles.resident.token)
  try {
    await connected(sanne)
    const plan = await sanne.open<PlanDocument>(planUrl(server, "resident"))
    const rules = plan.rules()
    assert.ok(rules?.writable)
    const denied = rules!.paths.filter(r => !r.allowed).map(r => r.path)
    assert.ok(denied.includes("goals/*/owner"), `denied: ${denied}`)
    assert.ok(denied.includes("evaluations"), `denied: ${denied}`)
    assert.ok(rules!.paths.find(r => r.path === "goals/*/title")?.allowed)

    await waitFor("the plan", () => Array.isArray(plan.doc()?.goals))
    const heads = A.getHeads(plan.doc()!)
    assert.throws(
      () =>
        plan.change(d => {
          d.goals.push({ id: "g-x", title: "Zelf doen", owner: "worker" })
        }),
      (e: unknown) =>
        e instanceof WriteRefusedError &&
        e.refused.some(r => r.path.endsWith("/owner") && r.reason === "path_reserved"),
    )
    assert.deepEqual(A.getHeads(plan.doc()!), heads, "a refused edit made no change")

    // A permitted edit goes through.
    plan.change(d => {
      d.goals.push({ id: "g-ok", title: "Zelf de post openen" })
    })
    assert.ok(plan.doc()!.goals.some(g => g.id === "g-ok"))
  } finally {
    await sanne.close()
  }
})

test("a forbidden edit made by hand is rejected, rolled back, its permitted edits replayed, and never seen elsewhere", async () => {
  const { client: anna } = await client(server, server.roles.worker.token)
  const { client: sanne } = await client(server, server.roles.resident.token)
  try {
    await Promise.all([connected(anna), connected(sanne)])
    const workerPlan = await anna.open<PlanDocument>(planUrl(server, "worker"))
    const plan = await sanne.open<PlanDocument>(planUrl(server, "resident"))
    await waitFor("both have the plan", () => !!plan.doc()?.goals && !!workerPlan.doc()?.goals)
    const rejected: RejectedEvent[] = []
    sanne.on("rejected", e => rejected.push(e))

    // By hand, past the client's check: one change with a reserved field next to permitted ones.
    const permitted = uniqueSentinel("permitted")
    plan.handle.change(d => {
      d.goals.push({ id: "g-hand", title: "Schulden op een rij", owner: "worker" })
      A.splice(d, ["hulpvraag"], 0, 0, permitted)
    })
    const refusedHash = A.getHeads(plan.handle.doc())[0]

    await waitFor("the rejected event", () => rejected.length > 0)
    const ev = rejected[0]
    assert.equal(ev.reason, "path_reserved")
    assert.ok(ev.changes.includes(refusedHash), `${ev.changes} names the refused change`)
    assert.ok(
      ev.dropped.some(d => /^goals\/\d+\/owner$/.test(d.path) && d.reason === "path_reserved"),
      `dropped: ${JSON.stringify(ev.dropped)}`,
    )
    assert.ok(ev.replayed > 0)

    // The resident's device: rolled back (no refused change, no owner) and replayed.
    const mine = () => plan.doc()!
    assert.ok(!A.hasHeads(mine(), [refusedHash]), "the refused change is gone from the device")
    await waitFor("the replay on the device", () =>
      mine().hulpvraag.includes(permitted) && mine().goals.some(g => g.id === "g-hand"),
    )
    assert.equal(mine().goals.find(g => g.id === "g-hand")?.owner, undefined)

    // The worker's device: gets the replayed edits, never the refused change.
    await waitFor("the replay at the worker", () =>
      workerPlan.doc()!.hulpvraag.includes(permitted) &&
      workerPlan.doc()!.goals.some(g => g.id === "g-hand"),
    )
    const theirs = workerPlan.doc()!
    assert.ok(!A.hasHeads(theirs, [refusedHash]), "the refused change reached another device")
    assert.equal(theirs.goals.find(g => g.id === "g-hand")?.owner, undefined)

    // Both devices go on: a later edit of the resident arrives, and they converge.
    plan.change(d => {
      A.splice(d, ["hulpvraag"], 0, 0, "daarna ")
    })
    await waitFor("convergence", () =>
      A.getHeads(workerPlan.doc()!).sort().join() === A.getHeads(plan.doc()!).sort().join(),
    )
    assert.equal(rejected.length, 1, "the replay was accepted")
  } finally {
    await Promise.all([anna.close(), sanne.close()])
  }
})
