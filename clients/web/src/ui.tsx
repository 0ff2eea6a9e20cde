// Small shared pieces: hooks over the Sync object and documents, the sync bar, refusals.
import { useEffect, useState } from "preact/hooks"
import type { ComponentChildren } from "preact"
import * as A from "@automerge/automerge"
import type { CaseloadEntry, RegieDocument } from "@regie/client/browser"

import { reasonText, t } from "./i18n"
import type { Sync } from "./session"

/** Re-renders on every change the Sync object reports. */
export function useSync(sync: Sync): number {
  const [n, setN] = useState(0)
  useEffect(() => sync.subscribe(() => setN(x => x + 1)), [sync])
  return n
}

const plainCache = new WeakMap<object, unknown>()

/** The document as plain data for rendering: Automerge 3 reads scalar strings (those the server
 * writes with `put`) as `ImmutableString`; the app shows and compares plain strings. */
export function plain<T>(doc: A.Doc<T>): T {
  const hit = plainCache.get(doc as object)
  if (hit) return hit as T
  const walk = (v: unknown): unknown => {
    if (A.isImmutableString(v)) return v.toString()
    if (Array.isArray(v)) return v.map(walk)
    if (v && typeof v === "object" && !(v instanceof Date) && !(v instanceof Uint8Array)) {
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]))
    }
    return v
  }
  const out = walk(doc) as T
  plainCache.set(doc as object, out)
  return out
}

/** Opens a caseload document; `[doc, content]`, both undefined while loading. */
export function useDoc<T>(sync: Sync, entry: CaseloadEntry | undefined): [RegieDocument<T> | undefined, A.Doc<T> | undefined] {
  const [doc, setDoc] = useState<RegieDocument<T>>()
  const [, setN] = useState(0)
  useEffect(() => {
    if (!entry) return
    let live = true
    let off = () => {}
    sync.open<T>(entry).then(
      d => {
        if (!live) return
        setDoc(d)
        const bump = () => setN(x => x + 1)
        d.on("change", bump)
        d.on("moved", bump)
        d.on("purged", bump)
        off = () => {
          d.off("change", bump)
          d.off("moved", bump)
          d.off("purged", bump)
        }
      },
      () => {},
    )
    return () => {
      live = false
      off()
    }
  }, [sync, entry?.url])
  const content = doc?.doc()
  return [doc, content ? (plain(content) as A.Doc<T>) : undefined]
}

export function newId(prefix: string): string {
  return `${prefix}-${crypto.randomUUID().slice(0, 8)}`
}

export function today(): string {
  return new Date().toISOString().slice(0, 10)
}

export function SyncBar({ sync }: { sync: Sync }) {
  useSync(sync)
  const pending = sync.pending()
  const last = sync.lastSync
  return (
    <section class={`syncbar ${sync.online ? "on" : "off"}`} aria-label={t("sync.status")} role="status" aria-live="polite">
      <span class="dot" aria-hidden="true" />
      <span data-testid="sync-online">{sync.online ? t("sync.online") : t("sync.offline")}</span>
      <span data-testid="sync-pending">{pending > 0 ? t("sync.pending", { n: pending }) : t("sync.noPending")}</span>
      <span data-testid="sync-last">
        {last ? t("sync.last", { time: new Date(last).toLocaleTimeString("nl-NL") }) : t("sync.never")}
      </span>
    </section>
  )
}

export function Refusals({ sync }: { sync: Sync }) {
  useSync(sync)
  if (sync.refusals.length === 0 && sync.notices.length === 0) return null
  return (
    <section class="refusals" aria-labelledby="refusals-title" role="alert">
      <h2 id="refusals-title">{t("refused.title")}</h2>
      <ul>
        {sync.refusals.map(r => (
          <li key={r.id} data-testid="refusal">
            {r.local
              ? r.dropped.map(d => t("refused.local", { path: d.path, reason: reasonText(d.reason) })).join("; ")
              : t("refused.server", {
                  key: r.key,
                  reason: reasonText(r.reason),
                  replayed: r.replayed,
                  dropped: r.dropped.map(d => `${d.path} (${reasonText(d.reason)})`).join(", ") || "—",
                })}{" "}
            {t("refused.kept")}{" "}
            <button type="button" onClick={() => sync.dismiss(r.id)}>
              {t("refused.dismiss")}
            </button>
          </li>
        ))}
        {sync.notices.map((n, i) => (
          <li key={`n${i}`} data-testid="revoked-notice">
            {t("revoked.notice", { reason: reasonText(n) })}{" "}
            <button type="button" onClick={() => sync.dismissNotices()}>
              {t("refused.dismiss")}
            </button>
          </li>
        ))}
      </ul>
    </section>
  )
}

export function Field(props: { label: string; id: string; children: ComponentChildren; hint?: string }) {
  return (
    <div class="field">
      <label for={props.id}>{props.label}</label>
      {props.children}
      {props.hint && (
        <small id={`${props.id}-hint`} class="hint">
          {props.hint}
        </small>
      )}
    </div>
  )
}

/** Runs an API call, showing its error in words; undefined on failure. */
export async function attempt<R>(sync: Sync, setError: (e: string | undefined) => void, fn: () => Promise<R>): Promise<R | undefined> {
  if (!sync.online) {
    setError(t("error.offline"))
    return undefined
  }
  try {
    setError(undefined)
    return await fn()
  } catch (e) {
    setError(t("error.api", { message: (e as Error).message }))
    return undefined
  }
}
