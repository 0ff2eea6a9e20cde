// The pure parts, without a server: edits are located the way the server's `check_batch`
// locates operations (map keys in the path, list and text positions ending it), and a replay
// onto the server's heads keeps exactly the permitted edits, from a fresh actor.

import assert from "node:assert/strict"
import { test } from "node:test"

import * as A from "@automerge/automerge"

import { replay } from "../src/rebase.js"
import { patchPath, pattern, refusedEdits, type WriteRules } from "../src/rules.js"

/** A resident's plan rules in the server's shape (a subset of its paths). */
const rules: WriteRules = {
  document: "automerge:x",
  dossier: "d",
  key: "plan",
  writable: true,
  paths: [
    { path: "hulpvraag", allowed: true },
    { path: "goals", allowed: true },
    { path: "goals/*", allowed: true },
    { path: "goals/*/id", allowed: true },
    { path: "goals/*/title", allowed: true },
    { path: "goals/*/owner", allowed: false, reason: "path_reserved" },
    { path: "evaluations", allowed: false, reason: "path_reserved" },
    { path: "evaluations/*", allowed: false, reason: "path_reserved" },
    { path: "evaluations/*/id", allowed: false, reason: "path_reserved" },
    { path: "evaluations/*/date", allowed: false, reason: "path_reserved" },
  ],
}

const skeleton = () =>
  A.change(A.init<any>(), d => {
    d.hulpvraag = "Hulp bij de post"
    d.goals = []
    d.evaluations = []
  })

function patchesOf(doc: A.Doc<any>, fn: A.ChangeFn<any>): A.Patch[] {
  let patches: A.Patch[] = []
  A.change(A.clone(doc), { patchCallback: p => (patches = p) }, fn)
  return patches
}

test("edits are located as the server locates operations", () => {
  const doc = skeleton()
  const paths = patchesOf(doc, d => {
    d.goals.push({ id: "g1", title: "t" })
    A.splice(d, ["hulpvraag"], 0, 0, "x")
    d.evaluations.push({ id: "e", date: "" })
  }).map(p => patchPath(p)!.join("/"))
  assert.ok(paths.includes("goals"), "an insert ends at the list")
  assert.ok(paths.includes("goals/0/title"), "a map key stays")
  assert.ok(paths.includes("hulpvraag"), "a text splice ends at the text")
  assert.ok(paths.includes("evaluations"))
  assert.equal(pattern(["goals", 3, "owner"]), "goals/*/owner")
})

test("refused edits are named once with the policy's reason; unknown paths are not in the schema", () => {
  const doc = skeleton()
  const refused = refusedEdits(
    rules,
    patchesOf(doc, d => {
      d.goals.push({ id: "g1", title: "t", owner: "worker" })
      d.evaluations.push({ id: "e", date: "" })
      d.secret = "x"
    }),
  )
  assert.deepEqual(
    refused.sort((a, b) => a.path.localeCompare(b.path)),
    [
      { path: "evaluations", reason: "path_reserved" },
      { path: "evaluations/0/date", reason: "path_reserved" },
      { path: "evaluations/0/id", reason: "path_reserved" },
      { path: "goals/0/owner", reason: "path_reserved" },
      { path: "secret", reason: "not_in_schema" },
    ],
  )
  assert.deepEqual(
    refusedEdits({ ...rules, writable: false, reason: "dossier_closed" }, patchesOf(doc, d => {
      A.splice(d, ["hulpvraag"], 0, 0, "x")
    })),
    [{ path: "hulpvraag", reason: "dossier_closed" }],
  )
})

test("a replay keeps the permitted edits, drops the refused ones, and uses a fresh actor", () => {
  const server = skeleton()
  const local = A.change(A.clone(server), d => {
    d.goals.push({ id: "g1", title: "Zelf bellen", owner: "worker" })
    A.splice(d, ["hulpvraag"], 0, 0, "Nu: ")
    d.evaluations.push({ id: "e", date: "2026-12-01" })
  })
  const r = replay(local, A.getHeads(server), rules)
  assert.deepEqual(
    r.dropped.map(d => d.path).sort(),
    ["evaluations", "evaluations/0/date", "evaluations/0/id", "goals/0/owner"],
  )
  const rebased = A.applyChanges(A.clone(server), r.changes)[0]
  assert.deepEqual(A.toJS(rebased), {
    hulpvraag: "Nu: Hulp bij de post",
    goals: [{ id: "g1", title: "Zelf bellen" }],
    evaluations: [],
  })
  const actors = r.changes.map(c => A.decodeChange(c).actor)
  assert.ok(!actors.includes(A.getActorId(local)), "the replay comes from a fresh actor")
  assert.deepEqual(A.getHeads(r.server), A.getHeads(server))
})
