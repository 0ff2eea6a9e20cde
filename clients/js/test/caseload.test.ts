// Each demo role syncs exactly its documents (I1, R1–R7): the caseload is the server's listing,
// every listed document arrives, nothing else is opened, and another role's document is refused
// like an unknown one. The token travels in Sec-WebSocket-Protocol (the client offers no
// Authorization header and no ?token=).

import assert from "node:assert/strict"
import { after, before, test } from "node:test"

import * as A from "@automerge/automerge"

import { client, connected, startServer, waitFor, type Server } from "./support.js"

let server: Server
before(async () => {
  server = await startServer()
})
after(async () => {
  await server?.stop()
})

test("each demo role syncs exactly the documents the server lists for it", async () => {
  const everyUrl = new Set(Object.values(server.roles).flatMap(r => r.documents.map(d => d.url)))
  for (const [label, role] of Object.entries(server.roles)) {
    const { client: c } = await client(server, role.token)
    try {
      await connected(c, role.documents.length)
      assert.deepEqual(
        c.caseload.map(e => e.url).sort(),
        role.documents.map(d => d.url).sort(),
        `${label}: the caseload is the listing`,
      )
      for (const d of role.documents) {
        const doc = await c.open(d.url)
        await waitFor(`${label}: ${d.key} has content`, () => Object.keys(doc.doc() ?? {}).length > 0)
        assert.equal(doc.key, d.key)
      }
      // Everything else is not theirs: refused by the client, and by the server like an unknown id.
      const others = [...everyUrl].filter(u => !role.documents.some(d => d.url === u))
      for (const url of others) {
        await assert.rejects(c.open(url), /not in the caseload/, `${label} opened ${url}`)
      }
      if (others.length > 0) {
        await assert.rejects(
          c.repo.find(others[0] as any),
          /unavailable/,
          `${label}: the server handed over another role's document`,
        )
      }
      // Nothing but the listed documents entered the repo with content.
      for (const [id, handle] of Object.entries(c.repo.handles)) {
        if (handle.isReady() && A.getHeads(handle.doc()).length > 0) {
          assert.ok(
            role.documents.some(d => d.url.endsWith(id)),
            `${label} holds ${id}, which is not in its listing`,
          )
        }
      }
    } finally {
      await c.close()
    }
  }
  assert.equal(server.roles.manager.documents.length, 0, "a manager syncs no dossier content")
  assert.ok(server.roles.worker.documents.some(d => d.key === "record"))
  assert.ok(!server.roles.resident.documents.some(d => d.key === "record"))
})
