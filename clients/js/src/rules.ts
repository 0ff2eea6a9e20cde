// "What may I write?": the server's answer for one document (GET
// /api/v1/me/documents/{document}/write-rules, decided by regie-core's `decide` over the
// document's schema) and the check of a local edit's patches against it. No rule is written
// here: an edit is located the way the server's `check_batch` locates an operation (map keys are
// part of the path, a list or text position ends it at the list or text), list positions become
// `*`, and the server's table says yes or no.

import type { Patch } from "@automerge/automerge"

/** The policy's answer for one schema path. */
export interface PathRule {
  /** e.g. `goals/*\/owner` (`*` for any list position). */
  path: string
  allowed: boolean
  /** The policy's reason code when not allowed, e.g. `path_reserved`. */
  reason?: string
}

/** What the caller may write in one document, as the server answered. */
export interface WriteRules {
  /** The document's `automerge:` URL. */
  document: string
  dossier: string
  /** `plan`, `record`, `view/<person>`, `maatwerk/<n>`, `partner/<org>` or `meta`. */
  key: string
  /** Whether the caller may send changes to the document at all. */
  writable: boolean
  /** Why not, when not. */
  reason?: string | null
  paths: PathRule[]
}

/** One edit a rule refused. */
export interface RefusedEdit {
  /** The concrete path of the edit, e.g. `goals/2/owner`. */
  path: string
  /** The policy's reason code, or `not_in_schema` for a path the schema does not have. */
  reason: string
}

/** The path an Automerge patch writes, in the policy's terms; `undefined` for patches that
 * write nothing the policy rules on (marks, conflicts). */
export function patchPath(patch: Patch): (string | number)[] | undefined {
  const path = [...patch.path]
  switch (patch.action) {
    case "put":
    case "del":
    case "inc":
      // A map key stays; a list position ends the path at the list.
      if (typeof path[path.length - 1] === "number") path.pop()
      return path
    case "insert":
    case "splice":
      path.pop()
      return path
    default:
      return undefined
  }
}

/** `goals/2/owner` → `goals/*\/owner`. */
export function pattern(path: (string | number)[]): string {
  return path.map(s => (typeof s === "number" ? "*" : s)).join("/")
}

/** The edits among `patches` the rules refuse (empty: all permitted). */
export function refusedEdits(rules: WriteRules, patches: Patch[]): RefusedEdit[] {
  const table = new Map(rules.paths.map(r => [r.path, r]))
  const refused: RefusedEdit[] = []
  const seen = new Set<string>()
  const refuse = (r: RefusedEdit) => {
    // A new text field shows as a put and a splice at the same path: name it once.
    const k = `${r.path}\u0000${r.reason}`
    if (!seen.has(k)) refused.push(r)
    seen.add(k)
  }
  for (const patch of patches) {
    const path = patchPath(patch)
    if (!path) continue
    const concrete = path.join("/") || "/"
    if (!rules.writable) {
      refuse({ path: concrete, reason: rules.reason ?? "read_only_access" })
      continue
    }
    const rule = table.get(pattern(path))
    if (!rule) {
      refuse({ path: concrete, reason: "not_in_schema" })
    } else if (!rule.allowed) {
      refuse({ path: concrete, reason: rule.reason ?? "path_reserved" })
    }
  }
  return refused
}
