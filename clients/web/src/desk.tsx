// The back office's desk (maatwerk extracts: only the decision is written) and the read-only
// reports of the manager and the privacy officer (two tiers).
import { useState } from "preact/hooks"
import type { CaseloadEntry, MaatwerkDocument } from "@regie/client/browser"

import { t, type MessageKey } from "./i18n"
import { setText } from "./plan"
import type { Sync } from "./session"
import { Field, attempt, useDoc, useSync } from "./ui"

export function BackofficeFace({ sync }: { sync: Sync }) {
  useSync(sync)
  const extracts = sync.caseload.filter(e => e.key.startsWith("maatwerk/"))
  return (
    <section aria-labelledby="maatwerk-title">
      <h2 id="maatwerk-title">{t("maatwerk.title")}</h2>
      {extracts.length === 0 && <p>{t("maatwerk.empty")}</p>}
      {extracts.map(e => (
        <Extract key={e.url} sync={sync} entry={e} />
      ))}
    </section>
  )
}

function Extract({ sync, entry }: { sync: Sync; entry: CaseloadEntry }) {
  const [doc, m] = useDoc<MaatwerkDocument>(sync, entry)
  const [saved, setSaved] = useState(false)
  if (!doc || !m) return <p>{t("caseload.loading")}</p>
  const id = entry.url.slice(-8)
  const r = m.request
  return (
    <article class="card" data-testid="extract">
      <h3>{r.proposed_voorziening ?? entry.key}</h3>
      <dl>
        <dt>{t("maatwerk.requested")}</dt>
        <dd>{r.requested ?? "—"}</dd>
        <dt>{t("maatwerk.need")}</dt>
        <dd>{r.assessed_need ?? "—"}</dd>
        <dt>{t("maatwerk.voorziening")}</dt>
        <dd>{r.proposed_voorziening ?? "—"}</dd>
        <dt>{t("maatwerk.facts")}</dt>
        <dd>
          {(r.supporting_facts ?? []).length === 0 ? "—" : (
            <ul>
              {r.supporting_facts!.map(f => (
                <li key={f.entry}>{f.text}</li>
              ))}
            </ul>
          )}
        </dd>
      </dl>
      <form
        onSubmit={e => {
          e.preventDefault()
          const form = e.target as HTMLFormElement
          const outcome = (form.elements.namedItem("outcome") as HTMLSelectElement).value
          const motivation = (form.elements.namedItem("motivation") as HTMLTextAreaElement).value
          const ok = sync.change(doc, d => {
            if (outcome) d.decision.outcome = outcome as any
            setText(d, ["decision", "motivation"], motivation)
            d.decision.decided_on = new Date().toISOString().slice(0, 10)
            d.decision.decided_by = sync.session.claims.sub
          })
          setSaved(ok)
        }}
      >
        <h4>{t("maatwerk.decision")}</h4>
        <Field label={t("maatwerk.outcome")} id={`outcome-${id}`}>
          <select id={`outcome-${id}`} name="outcome" defaultValue={m.decision.outcome ?? ""}>
            <option value="">{t("maatwerk.undecided")}</option>
            {(["granted", "partially_granted", "refused"] as const).map(o => (
              <option key={o} value={o}>
                {t(`maatwerk.${o}` as MessageKey)}
              </option>
            ))}
          </select>
        </Field>
        <Field label={t("maatwerk.motivation")} id={`motivation-${id}`}>
          <textarea id={`motivation-${id}`} name="motivation" rows={3} defaultValue={m.decision.motivation ?? ""} />
        </Field>
        {m.decision.decided_on && (
          <p class="meta">
            {t("maatwerk.decidedOn")}: {m.decision.decided_on}
          </p>
        )}
        <button type="submit">{t("maatwerk.save")}</button>
        {saved && <p role="status">{t("maatwerk.saved")}</p>}
      </form>
    </article>
  )
}

function lastMonth(): string {
  const d = new Date()
  d.setDate(1)
  d.setMonth(d.getMonth() - 1)
  return d.toISOString().slice(0, 7)
}

/** A report's JSON as a definition list / table, generically (the reports hold no content). */
function Show({ value }: { value: unknown }) {
  if (value === null || value === undefined) return <>—</>
  if (Array.isArray(value)) {
    if (value.length === 0) return <>{t("reports.empty")}</>
    if (value.every(v => v && typeof v === "object" && !Array.isArray(v))) {
      const cols = [...new Set(value.flatMap(v => Object.keys(v as object)))]
      return (
        <table>
          <thead>
            <tr>
              {cols.map(c => (
                <th scope="col" key={c}>
                  {c}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {value.map((row, i) => (
              <tr key={i}>
                {cols.map(c => (
                  <td key={c}>
                    <Show value={(row as any)[c]} />
                  </td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      )
    }
    return <>{value.map(String).join(", ")}</>
  }
  if (typeof value === "object") {
    return (
      <dl>
        {Object.entries(value as object).map(([k, v]) => (
          <div key={k}>
            <dt>{k}</dt>
            <dd>
              <Show value={v} />
            </dd>
          </div>
        ))}
      </dl>
    )
  }
  return <>{String(value)}</>
}

function Report({ sync, title, path }: { sync: Sync; title: MessageKey; path: string }) {
  const [data, setData] = useState<unknown>()
  const [error, setError] = useState<string>()
  const slug = title.replace(/\W/g, "-")
  return (
    <section class="card" aria-labelledby={slug} data-testid="report">
      <h3 id={slug}>{t(title)}</h3>
      <button
        type="button"
        onClick={async () => {
          const r = await attempt(sync, setError, () => sync.api("GET", path))
          if (r !== undefined) setData(r)
        }}
      >
        {t("reports.load")}
      </button>
      {data !== undefined && (
        // Focusable, so a keyboard can scroll a wide report.
        <div class="report-body" tabIndex={0} role="region" aria-label={t("reports.data", { title: t(title) })}>
          <Show value={data} />
        </div>
      )}
      {error && <p class="error" role="alert">{error}</p>}
    </section>
  )
}

export function ReportsFace({ sync }: { sync: Sync }) {
  const claims = sync.session.claims
  const [month, setMonth] = useState(lastMonth())
  const [team, setTeam] = useState(claims.team ?? "wijkteam-noord")
  const [tier, setTier] = useState<"summary" | "detail">(claims.role === "privacy_officer" ? "detail" : "summary")
  const officer = claims.role === "privacy_officer"
  const q = `month=${encodeURIComponent(month)}`
  return (
    <section aria-labelledby="reports-title">
      <h2 id="reports-title">{t("reports.title")}</h2>
      <p>{t("reports.intro")}</p>
      <div class="row">
        <Field label={t("reports.month")} id="report-month">
          <input id="report-month" type="month" value={month} onChange={e => setMonth((e.target as HTMLInputElement).value)} />
        </Field>
        <Field label={t("reports.team")} id="report-team">
          <input id="report-team" value={team} readOnly={!officer} onInput={e => setTeam((e.target as HTMLInputElement).value)} />
        </Field>
        {officer && (
          <Field label={t("reports.tier")} id="report-tier">
            <select id="report-tier" value={tier} onChange={e => setTier((e.target as HTMLSelectElement).value as any)}>
              <option value="summary">{t("reports.summary")}</option>
              <option value="detail">{t("reports.detail")}</option>
            </select>
          </Field>
        )}
      </div>
      <Report
        key={`bg-${team}-${month}-${tier}`}
        sync={sync}
        title="reports.breakGlass"
        path={`/api/v1/teams/${encodeURIComponent(team)}/break-glass-report?${q}${officer ? `&tier=${tier}` : ""}`}
      />
      {!officer && (
        <Report key={`review-${team}`} sync={sync} title="reports.review" path={`/api/v1/teams/${encodeURIComponent(team)}/access-review`} />
      )}
      {officer && <Report key={`unusual-${month}`} sync={sync} title="reports.unusual" path={`/api/v1/reports/unusual-access?${q}`} />}
      {officer && <Report key="verify" sync={sync} title="reports.verify" path="/api/v1/audit/verify" />}
    </section>
  )
}
