// R28 and I6 on the device: after `revoked` (a worker unassigned) and after `replaced` (an entry
// leaves the resident's view, so the server rebuilds the view under a new id), no byte of the
// old document remains in the client's storage files — checked by planting a sentinel and
// scanning decoded operations and materialized documents, not compressed bytes — and a
// `replaced` handle moves to the new document.

import assert from "node:assert/strict"
import { after, before, test } from "node:test"

import * as A from "@automerge/automerge"

import type { RecordDocument, ViewDocument } from "../src/schema.generated.js"
import type { PurgedEvent, ReplacedEvent, RevokedEvent } from "../src/index.js"
import {
  client,
  connected,
  scanStorage,
  startServer,
  storedFilesOf,
  uniqueSentinel,
  waitFor,
  type Server,
} from "./support.js"

let server: Server
before(async () => {
  server = await startServer()
})
after(async () => {
  await server?.stop()
})

const urlOf = (s: Server, role: string, key: string) =>
  s.roles[role].documents.find(d => d.key === key)!.url

test("revoked: an unassigned worker's device keeps no byte of the dossier", async () => {
  const sentinel = uniqueSentinel("revoked")
  const { client: anna } = await client(server, server.roles.worker.token)
  const { client: bram, dir: bramDir } = await client(server, server.roles.worker2.token)
  try {
    await Promise.all([connected(anna), connected(bram)])
    const record = await anna.open<RecordDocument>(urlOf(server, "worker", "record"))
    await waitFor("anna's record", () => Array.isArray(record.doc()?.entries))
    record.change(d => {
      d.entries.push({
        id: "e-revoke",
        kind: "fact",
        category: "work_note",
        subjects: ["p-daan"],
        text: sentinel,
      })
    })
    const bramRecord = await bram.open<RecordDocument>(urlOf(server, "worker2", "record"))
    await waitFor("the sentinel on bram's device", () =>
      (bramRecord.doc()?.entries ?? []).some(e => e.text === sentinel),
    )
    await bram.repo.flush()
    await waitFor("the sentinel in bram's files", () => scanStorage(bramDir, sentinel).length > 0)

    const revoked: RevokedEvent[] = []
    const purged: PurgedEvent[] = []
    bram.on("revoked", e => revoked.push(e))
    bram.on("purged", e => purged.push(e))
    const held = server.roles.worker2.documents.map(d => d.url.replace("automerge:", ""))
    const res = await server.api(
      server.roles.manager.token,
      "DELETE",
      `/api/v1/dossiers/${server.dossier}/assignments/bram.dekker`,
    )
    assert.equal(res.status, 204, JSON.stringify(res.body))

    await waitFor("every document of the dossier purged", () =>
      held.every(id => purged.some(p => p.documentId === id)),
    )
    assert.ok(revoked.length > 0, "the server sent revoked")
    assert.equal(bramRecord.purged !== undefined, true)
    assert.equal(bramRecord.doc(), undefined)
    await new Promise(r => setTimeout(r, 500))
    assert.deepEqual(scanStorage(bramDir, sentinel), [], "no byte of the revoked record remains")
    for (const id of held) assert.deepEqual(storedFilesOf(bramDir, id), [], `files of ${id}`)
    assert.equal(bram.caseload.length, 0)
  } finally {
    await Promise.all([anna.close(), bram.close()])
  }
})

test("replaced: the resident's view moves to its new id and the old one leaves no byte behind", async () => {
  const sentinel = uniqueSentinel("replaced")
  const { client: anna } = await client(server, server.roles.worker.token)
  const { client: sanne, dir: sanneDir } = await client(server, server.roles.resident.token)
  try {
    await Promise.all([connected(anna), connected(sanne)])
    const record = await anna.open<RecordDocument>(urlOf(server, "worker", "record"))
    await waitFor("anna's record", () => Array.isArray(record.doc()?.entries))
    record.change(d => {
      d.entries.push({
        id: "e-replace",
        kind: "fact",
        category: "conversation",
        subjects: ["p-sanne"],
        text: sentinel,
      })
    })
    const viewUrl = sanne.caseload.find(e => e.key === "view/p-sanne")!.url
    const view = await sanne.open<ViewDocument>(viewUrl)
    await waitFor("the entry in sanne's view", () =>
      (view.doc()?.entries ?? []).some(e => e.text === sentinel),
    )
    await sanne.repo.flush()
    await waitFor("the sentinel in sanne's files", () => scanStorage(sanneDir, sentinel).length > 0)

    const replaced: ReplacedEvent[] = []
    sanne.on("replaced", e => replaced.push(e))
    const oldId = view.documentId
    // The entry stops concerning Sanne: her view must lose it, so the server replaces the view.
    record.change(d => {
      const i = d.entries.findIndex(e => e.id === "e-replace")
      d.entries.splice(i, 1)
    })
    await waitFor("replaced", () => replaced.length > 0)
    assert.equal(replaced[0].documentId, oldId)
    await waitFor("the handle moved to the new view", () =>
      view.documentId === replaced[0].newDocumentId && view.doc()?.person !== undefined,
    )
    assert.ok(!(view.doc()!.entries ?? []).some(e => e.text === sentinel))
    assert.ok(sanne.caseload.some(e => e.url === `automerge:${replaced[0].newDocumentId}`))
    assert.ok(!sanne.caseload.some(e => e.url === viewUrl))
    await new Promise(r => setTimeout(r, 500))
    assert.deepEqual(scanStorage(sanneDir, sentinel), [], "no byte of the old view remains")
    assert.deepEqual(storedFilesOf(sanneDir, oldId), [])
    assert.ok(A.getHeads(view.doc()!).length > 0)
  } finally {
    await Promise.all([anna.close(), sanne.close()])
  }
})
