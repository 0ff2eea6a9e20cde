// I3 on the device: documents opened while offline are logged locally and uploaded on the next
// connection, and logged by the server exactly once even when the answer to the first upload is
// lost on the way back (the request reached the real server; only its answer is dropped).

import assert from "node:assert/strict"
import { createServer } from "node:net"
import { after, before, test } from "node:test"

import type { PlanDocument } from "../src/schema.generated.js"
import { client, connected, sleep, startServer, waitFor, type Server } from "./support.js"

let server: Server
before(async () => {
  server = await startServer()
})
after(async () => {
  await server?.stop()
})

/** A loopback URL where nothing listens. */
async function deadBase(): Promise<string> {
  const s = createServer()
  await new Promise<void>(r => s.listen(0, "127.0.0.1", () => r()))
  const port = (s.address() as { port: number }).port
  await new Promise<void>(r => s.close(() => r()))
  return `http://127.0.0.1:${port}`
}

test("offline reads are uploaded once, even when the answer to the upload is lost", async () => {
  const role = server.roles.worker
  const url = (key: string) => role.documents.find(d => d.key === key)!.url

  // 1. Online: the caseload comes onto the device.
  const first = await client(server, role.token)
  await connected(first.client, role.documents.length)
  for (const key of ["plan", "record"]) {
    const d = await first.client.open(url(key))
    await waitFor(`${key} on the device`, () => Object.keys(d.doc() ?? {}).length > 0)
  }
  await first.client.close()
  const before = server.auditCount("offline_read", role.user)

  // 2. Offline (the server cannot be reached): two documents opened, from the device's files.
  const offline = await client({ base: await deadBase() }, role.token, { dir: first.dir })
  const plan = await offline.client.open<PlanDocument>(url("plan"))
  assert.ok(Array.isArray(plan.doc()?.goals), "the plan opens offline")
  await offline.client.open(url("record"))
  assert.equal(offline.client.online, false)
  await offline.client.close()

  // 3. Online again; the first upload reaches the server but its answer is lost.
  const uploads: string[][] = []
  let dropped = 0
  const lossyFetch: typeof fetch = async (input, init) => {
    const res = await fetch(input, init)
    if (String(input).endsWith("/api/v1/audit/offline-reads")) {
      uploads.push(JSON.parse(String(init?.body)).events.map((e: { id: string }) => e.id))
      if (dropped === 0) {
        dropped += 1
        await res.arrayBuffer()
        throw new TypeError("fetch failed: connection reset before the answer arrived")
      }
    }
    return res
  }
  const back = await client(server, role.token, { dir: first.dir, fetch: lossyFetch })
  try {
    await connected(back.client)
    await waitFor("a second upload after the lost answer", () => uploads.length >= 2)
    await waitFor("the reads logged", () => server.auditCount("offline_read", role.user) >= before + 2)
    assert.equal(uploads[0].length, 2)
    assert.deepEqual(uploads[1].sort(), uploads[0].sort(), "the same read ids go again")

    // Reconnecting uploads nothing more: the device forgot them once the server said so.
    back.client.network.dropConnection()
    await waitFor("a reconnection", () => back.client.network.connections >= 2 && back.client.online)
    await sleep(500)
    assert.equal(uploads.length, 2, "nothing uploaded after the answer arrived")
    assert.equal(
      server.auditCount("offline_read", role.user),
      before + 2,
      "each offline read is in the audit log exactly once",
    )
  } finally {
    await back.client.close()
  }
})
