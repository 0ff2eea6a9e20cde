// Rebase after `rejected` (I2), as regie-client's `rebase.rs` does it: the server refused a batch
// whole and refuses every later change built on it, so the device takes the server's version
// (the last heads the server announced), and replays the local diff since then as new changes
// from a fresh actor, patch by patch, dropping each patch the write rules refuse. The new changes
// never collide with the quarantined ones.

import * as A from "@automerge/automerge"

import { patchPath, refusedEdits, type RefusedEdit, type WriteRules } from "./rules.js"

/** The outcome of replaying a local diff onto the server's version. */
export interface Replay {
  /** The server's version of the document (at its heads). */
  server: A.Doc<unknown>
  /** The changes that redo the permitted local edits on top of `server` (maybe none). */
  changes: Uint8Array[]
  /** Patches replayed. */
  replayed: number
  /** Patches dropped, with why. */
  dropped: RefusedEdit[]
}

type Obj = Record<string | number, unknown>

/** The object at `path` inside a change callback's draft. */
function locate(draft: unknown, path: readonly A.Prop[]): unknown {
  let here: unknown = draft
  for (const p of path) {
    if (here === null || typeof here !== "object") return undefined
    here = (here as Obj)[p]
  }
  return here
}

function applyPatch(draft: A.Doc<any>, patch: A.Patch): boolean {
  const parentPath = patch.path.slice(0, -1)
  const last = patch.path[patch.path.length - 1]
  const parent = locate(draft, parentPath)
  switch (patch.action) {
    case "put": {
      if (parent === null || typeof parent !== "object") return false
      ;(parent as Obj)[last as string | number] = patch.value as unknown
      return true
    }
    case "insert": {
      if (!Array.isArray(parent)) return false
      A.insertAt(parent, last as number, ...(patch.values as unknown[]))
      return true
    }
    case "splice": {
      if (typeof parent !== "string") return false
      A.splice(draft, parentPath, last as number, 0, patch.value)
      return true
    }
    case "del": {
      if (typeof parent === "string") {
        A.splice(draft, parentPath, last as number, patch.length ?? 1)
      } else if (Array.isArray(parent)) {
        A.deleteAt(parent, last as number, patch.length ?? 1)
      } else if (parent !== null && typeof parent === "object") {
        delete (parent as Obj)[last as string]
      } else {
        return false
      }
      return true
    }
    case "inc": {
      const counter = (parent as Obj | undefined)?.[last as string | number]
      if (counter instanceof A.Counter) {
        counter.increment(patch.value)
        return true
      }
      return false
    }
    default:
      return true
  }
}

/** Whether `doc` holds every change of `heads` (hex hashes). */
export function hasHeads(doc: A.Doc<unknown>, heads: readonly string[]): boolean {
  return heads.length > 0 && A.hasHeads(doc, [...heads])
}

/** Replays `local`'s edits since `serverHeads` onto the server's version, keeping only what
 * `rules` permit. */
export function replay(
  local: A.Doc<unknown>,
  serverHeads: readonly string[],
  rules: WriteRules | undefined,
): Replay {
  const heads = [...serverHeads]
  const server = A.clone(A.view(local, heads))
  const patches = A.diff(local, heads, A.getHeads(local))
  const dropped: RefusedEdit[] = []
  const keep: A.Patch[] = []
  for (const patch of patches) {
    const path = patchPath(patch)
    if (!path) continue
    const refused = rules
      ? refusedEdits(rules, [patch])
      : [{ path: path.join("/"), reason: "rules_unknown" }]
    if (refused.length === 0) keep.push(patch)
    for (const r of refused) {
      if (!dropped.some(d => d.path === r.path && d.reason === r.reason)) dropped.push(r)
    }
  }
  if (keep.length === 0) return { server, changes: [], replayed: 0, dropped }
  // A fresh actor: the replayed changes must never collide with the quarantined ones.
  let replayed = 0
  const rebased = A.change<any>(A.clone<any>(server, { actor: randomActor() }), draft => {
    for (const patch of keep) {
      try {
        if (applyPatch(draft, patch)) replayed += 1
        else dropped.push({ path: (patchPath(patch) ?? []).join("/"), reason: "object_dropped" })
      } catch {
        dropped.push({ path: (patchPath(patch) ?? []).join("/"), reason: "does_not_apply" })
      }
    }
  })
  return { server, changes: A.getChanges(server, rebased), replayed, dropped }
}

function randomActor(): string {
  const bytes = new Uint8Array(16)
  globalThis.crypto.getRandomValues(bytes)
  return Array.from(bytes, b => b.toString(16).padStart(2, "0")).join("")
}
