// The resident's phone: their plan (co-edited live), what is recorded about them (their view:
// facts and opinions marked, an eigen verklaring per entry), who looked at their dossier, and
// their maatwerk decisions.
import { useState } from "preact/hooks"
import type { CaseloadEntry, MaatwerkDocument, ViewDocument } from "@regie/client/browser"

import { t, type MessageKey } from "./i18n"
import { PlanEditor } from "./plan"
import { MyRequests } from "./rights"
import type { Sync } from "./session"
import { attempt, useDoc, useSync } from "./ui"

type Tab = "plan" | "recorded" | "looked" | "decisions" | "requests"
const TABS: [Tab, MessageKey][] = [
  ["plan", "resident.title"],
  ["recorded", "resident.recorded"],
  ["looked", "resident.looked"],
  ["decisions", "resident.decisions"],
  ["requests", "resident.requests"],
]

export function ResidentFace({ sync }: { sync: Sync }) {
  useSync(sync)
  const [tab, setTab] = useState<Tab>("plan")
  const plan = sync.caseload.find(e => e.key === "plan")
  const view = sync.caseload.find(e => e.key.startsWith("view/"))
  const maatwerk = sync.caseload.filter(e => e.key.startsWith("maatwerk/"))
  return (
    <>
      <nav aria-label={t("resident.title")} class="tabs">
        {TABS.map(([k, label]) => (
          <button type="button" key={k} aria-current={tab === k ? "page" : undefined} onClick={() => setTab(k)}>
            {t(label)}
          </button>
        ))}
      </nav>
      {tab === "plan" && (plan ? <PlanEditor sync={sync} entry={plan} /> : <p>{t("caseload.empty")}</p>)}
      {tab === "recorded" && (view ? <Recorded sync={sync} entry={view} /> : <p>{t("resident.noEntries")}</p>)}
      {tab === "looked" && <Looked sync={sync} />}
      {tab === "decisions" && <Decisions sync={sync} entries={maatwerk} />}
      {tab === "requests" && <MyRequests sync={sync} dossier={(plan ?? view)?.dossier} />}
    </>
  )
}

function Recorded({ sync, entry }: { sync: Sync; entry: CaseloadEntry }) {
  const [, view] = useDoc<ViewDocument>(sync, entry)
  const [drafts, setDrafts] = useState<Record<string, string>>({})
  const [error, setError] = useState<string>()
  const [done, setDone] = useState(false)
  if (!view) return <p>{t("caseload.loading")}</p>
  return (
    <section aria-labelledby="recorded-title">
      <h2 id="recorded-title">{t("resident.recorded")}</h2>
      <p>{t("resident.recordedIntro")}</p>
      {view.entries.length === 0 && <p>{t("resident.noEntries")}</p>}
      <ul class="entries" data-testid="view-entries">
        {view.entries.map(en => (
          <li key={en.id} class="card">
            <p class="meta">
              <span class={`badge ${en.kind}`}>{t(`record.${en.kind}` as MessageKey)}</span> {t(`record.${en.category}` as MessageKey)}
              {en.at ? ` · ${en.at.slice(0, 10)}` : ""}
            </p>
            <p class="text">{en.text}</p>
            {(en.statements ?? []).map((s, i) => (
              <blockquote key={i}>
                <strong>{t("resident.statement")}:</strong> {s}
              </blockquote>
            ))}
            <form
              onSubmit={async e => {
                e.preventDefault()
                setDone(false)
                const r = await attempt(sync, setError, () =>
                  sync.api("POST", `/api/v1/dossiers/${entry.dossier}/statements`, { entry: en.id, text: drafts[en.id] ?? "" }),
                )
                if (r !== undefined) {
                  setDrafts({ ...drafts, [en.id]: "" })
                  setDone(true)
                }
              }}
            >
              <label for={`statement-${en.id}`}>{t("resident.statement")}</label>
              <textarea
                id={`statement-${en.id}`}
                rows={2}
                required
                value={drafts[en.id] ?? ""}
                onInput={e => setDrafts({ ...drafts, [en.id]: (e.target as HTMLTextAreaElement).value })}
              />
              <button type="submit">{t("resident.addStatement")}</button>
            </form>
          </li>
        ))}
      </ul>
      {done && <p role="status">{t("resident.statementDone")}</p>}
      {error && <p class="error" role="alert">{error}</p>}
    </section>
  )
}

interface Access {
  at: string
  date: string
  organisation: string
  role: string
  action: string
  emergency: boolean
  worker?: string
}

function Looked({ sync }: { sync: Sync }) {
  const [rows, setRows] = useState<Access[] | undefined>()
  const [error, setError] = useState<string>()
  return (
    <section aria-labelledby="looked-title">
      <h2 id="looked-title">{t("resident.looked")}</h2>
      <button
        type="button"
        onClick={async () => {
          const r = await attempt(sync, setError, () => sync.api<{ accesses: Access[] }>("GET", "/api/v1/me/access-log"))
          if (r) setRows(r.accesses)
        }}
      >
        {t("resident.lookedLoad")}
      </button>
      {rows && rows.length === 0 && <p>{t("resident.noAccess")}</p>}
      {rows && rows.length > 0 && (
        <table data-testid="access-log">
          <thead>
            <tr>
              <th scope="col">{t("access.date")}</th>
              <th scope="col">{t("access.org")}</th>
              <th scope="col">{t("access.role")}</th>
              <th scope="col">{t("access.action")}</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((a, i) => (
              <tr key={i}>
                <td>{a.date}</td>
                <td>{a.organisation}{a.worker ? ` (${a.worker})` : ""}</td>
                <td>{a.role}</td>
                <td>
                  {a.action}
                  {a.emergency ? ` — ${t("resident.emergency")}` : ""}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {error && <p class="error" role="alert">{error}</p>}
    </section>
  )
}

function Decisions({ sync, entries }: { sync: Sync; entries: CaseloadEntry[] }) {
  return (
    <section aria-labelledby="decisions-title">
      <h2 id="decisions-title">{t("resident.decisions")}</h2>
      {entries.length === 0 && <p>{t("resident.noDecisions")}</p>}
      {entries.map(e => (
        <Decision key={e.url} sync={sync} entry={e} />
      ))}
    </section>
  )
}

function Decision({ sync, entry }: { sync: Sync; entry: CaseloadEntry }) {
  const [, m] = useDoc<MaatwerkDocument>(sync, entry)
  if (!m) return <p>{t("caseload.loading")}</p>
  return (
    <article class="card">
      <h3>{m.request.proposed_voorziening || m.request.requested || entry.key}</h3>
      <p>
        {t("maatwerk.requested")}: {m.request.requested ?? "—"}
      </p>
      <p>
        {t("maatwerk.decision")}:{" "}
        <strong>{m.decision.outcome ? t(`maatwerk.${m.decision.outcome}` as MessageKey) : t("maatwerk.undecided")}</strong>
        {m.decision.decided_on ? ` (${m.decision.decided_on})` : ""}
      </p>
      {m.decision.motivation && <p>{m.decision.motivation}</p>}
    </article>
  )
}
