// The worker's tablet: the caseload (district, team, status), a dossier (plan, record entries,
// triage, consents, shares through the API) and break-the-glass.
import { useState } from "preact/hooks"
import type { CaseloadEntry, MetaDocument, RecordDocument } from "@regie/client/browser"

import { t, type MessageKey } from "./i18n"
import { PlanEditor } from "./plan"
import { DossierRequests } from "./rights"
import type { Sync } from "./session"
import { Field, attempt, newId, useDoc, useSync } from "./ui"

/** The caseload's dossiers, each with its documents. */
export function dossiersOf(entries: CaseloadEntry[]): Map<string, CaseloadEntry[]> {
  const out = new Map<string, CaseloadEntry[]>()
  for (const e of entries) out.set(e.dossier, [...(out.get(e.dossier) ?? []), e])
  return out
}

function Household({ sync, meta }: { sync: Sync; meta: CaseloadEntry | undefined }) {
  const [, m] = useDoc<MetaDocument>(sync, meta)
  const names = m?.persons?.map(p => p.name).join(", ")
  return <>{names || "…"}</>
}

export function WorkerFace({ sync }: { sync: Sync }) {
  useSync(sync)
  const [open, setOpen] = useState<string | undefined>()
  const dossiers = dossiersOf(sync.caseload)
  if (open && dossiers.has(open)) {
    return <Dossier sync={sync} entries={dossiers.get(open)!} onBack={() => setOpen(undefined)} />
  }
  return (
    <>
      <section aria-labelledby="caseload-title">
        <h2 id="caseload-title">{t("caseload.title")}</h2>
        <button type="button" disabled={!sync.online} onClick={() => void sync.refresh()}>
          {t("caseload.refresh")}
        </button>
        {dossiers.size === 0 ? (
          <p>{t("caseload.empty")}</p>
        ) : (
          <table class="caseload" data-testid="caseload">
            <thead>
              <tr>
                <th scope="col">{t("caseload.household")}</th>
                <th scope="col">{t("caseload.district")}</th>
                <th scope="col">{t("caseload.team")}</th>
                <th scope="col">{t("caseload.status")}</th>
                <th scope="col">
                  <span class="sr-only">{t("caseload.open")}</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {[...dossiers].map(([id, entries]) => (
                <tr key={id} data-testid="caseload-row">
                  <td>
                    <Household sync={sync} meta={entries.find(e => e.key === "meta")} />
                  </td>
                  <td>{entries[0].district}</td>
                  <td>{entries[0].team}</td>
                  <td>{entries[0].closed ? t("caseload.closed") : t("caseload.openStatus")}</td>
                  <td>
                    <button type="button" onClick={() => setOpen(id)}>
                      {t("caseload.open")}
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      <BreakGlass sync={sync} />
    </>
  )
}

type Tab = "plan" | "record" | "triage" | "consents" | "shares" | "requests"
const TABS: Tab[] = ["plan", "record", "triage", "consents", "shares", "requests"]

function Dossier({ sync, entries, onBack }: { sync: Sync; entries: CaseloadEntry[]; onBack: () => void }) {
  const [tab, setTab] = useState<Tab>("plan")
  const by = (key: string) => entries.find(e => e.key === key)
  const [, meta] = useDoc<MetaDocument>(sync, by("meta"))
  const persons = meta?.persons ?? []
  return (
    <section aria-labelledby="dossier-title" class="dossier">
      <button type="button" class="link" onClick={onBack}>
        ← {t("back")}
      </button>
      <h2 id="dossier-title">{t("dossier.title", { name: persons.map(p => p.name).join(", ") || "…" })}</h2>
      <p class="meta">
        {t("caseload.district")}: {entries[0].district} · {t("caseload.team")}: {entries[0].team}
      </p>
      <div role="tablist" aria-label={t("dossier.title", { name: "" })} class="tabs">
        {TABS.map(k => (
          <button
            type="button"
            role="tab"
            id={`tab-${k}`}
            aria-selected={tab === k}
            aria-controls={`panel-${k}`}
            tabIndex={tab === k ? 0 : -1}
            onClick={() => setTab(k)}
            onKeyDown={e => {
              const i = TABS.indexOf(k)
              if (e.key === "ArrowRight") setTab(TABS[(i + 1) % TABS.length])
              if (e.key === "ArrowLeft") setTab(TABS[(i + TABS.length - 1) % TABS.length])
            }}
          >
            {t(`tab.${k}` as MessageKey)}
          </button>
        ))}
      </div>
      <div role="tabpanel" id={`panel-${tab}`} aria-labelledby={`tab-${tab}`}>
        {tab === "plan" && by("plan") && <PlanEditor sync={sync} entry={by("plan")!} />}
        {tab === "record" && by("record") && <Record sync={sync} entry={by("record")!} persons={persons} />}
        {tab === "triage" && by("record") && <Triage sync={sync} entry={by("record")!} />}
        {tab === "consents" && by("record") && <Consents sync={sync} entry={by("record")!} dossier={entries[0].dossier} />}
        {tab === "shares" && <Shares sync={sync} dossier={entries[0].dossier} persons={persons} />}
        {tab === "requests" && <DossierRequests sync={sync} dossier={entries[0].dossier} />}
      </div>
    </section>
  )
}

type Person = MetaDocument["persons"][number]

function Record({ sync, entry, persons }: { sync: Sync; entry: CaseloadEntry; persons: Person[] }) {
  const [doc, record] = useDoc<RecordDocument>(sync, entry)
  const [kind, setKind] = useState<"fact" | "opinion">("fact")
  const [category, setCategory] = useState<"analysis" | "conversation" | "work_note">("conversation")
  const [domain, setDomain] = useState("")
  const [subjects, setSubjects] = useState<string[]>([])
  const [text, setText] = useState("")
  const [error, setError] = useState<string>()
  if (!doc || !record) return <p>{t("caseload.loading")}</p>
  const name = (id: string) => persons.find(p => p.id === id)?.name ?? id
  const save = (e: Event) => {
    e.preventDefault()
    if (subjects.length === 0) return setError(t("record.needSubject"))
    setError(undefined)
    const ok = sync.change(doc, d => {
      d.entries.push({
        id: newId("e"),
        kind,
        category,
        ...(domain ? { life_domain: domain } : {}),
        subjects: [...subjects],
        text,
        author: sync.session.claims.sub,
        at: new Date().toISOString(),
      })
    })
    if (ok) setText("")
  }
  return (
    <section aria-labelledby="record-title">
      <h3 id="record-title">{t("record.title")}</h3>
      {record.entries.length === 0 ? (
        <p>{t("record.empty")}</p>
      ) : (
        <ul class="entries" data-testid="record-entries">
          {record.entries.map(en => (
            <li key={en.id} class="card">
              <p class="meta">
                <span class={`badge ${en.kind}`}>{t(`record.${en.kind}` as MessageKey)}</span> {t(`record.${en.category}` as MessageKey)}
                {en.life_domain ? ` · ${en.life_domain}` : ""} · {en.subjects.map(name).join(", ")}
              </p>
              <p class="text">{en.text}</p>
              {record.statements
                .filter(s => s.entry === en.id)
                .map(s => (
                  <blockquote key={s.id}>
                    <strong>{t("record.statements")}:</strong> {s.text}
                  </blockquote>
                ))}
            </li>
          ))}
        </ul>
      )}
      <form onSubmit={save} class="card" aria-labelledby="record-add">
        <h4 id="record-add">{t("record.add")}</h4>
        <div class="row">
          <Field label={t("record.kind")} id="entry-kind">
            <select id="entry-kind" value={kind} onChange={e => setKind((e.target as HTMLSelectElement).value as any)}>
              <option value="fact">{t("record.fact")}</option>
              <option value="opinion">{t("record.opinion")}</option>
            </select>
          </Field>
          <Field label={t("record.category")} id="entry-category">
            <select id="entry-category" value={category} onChange={e => setCategory((e.target as HTMLSelectElement).value as any)}>
              <option value="analysis">{t("record.analysis")}</option>
              <option value="conversation">{t("record.conversation")}</option>
              <option value="work_note">{t("record.work_note")}</option>
            </select>
          </Field>
          <Field label={t("record.lifeDomain")} id="entry-domain">
            <input id="entry-domain" value={domain} onInput={e => setDomain((e.target as HTMLInputElement).value)} />
          </Field>
        </div>
        <fieldset>
          <legend>{t("record.subjects")}</legend>
          {persons.map(p => (
            <label key={p.id} class="check">
              <input
                type="checkbox"
                checked={subjects.includes(p.id)}
                onChange={e =>
                  setSubjects(s => ((e.target as HTMLInputElement).checked ? [...s, p.id] : s.filter(x => x !== p.id)))
                }
              />{" "}
              {p.name}
            </label>
          ))}
        </fieldset>
        <Field label={t("record.text")} id="entry-text">
          <textarea id="entry-text" rows={4} required value={text} onInput={e => setText((e.target as HTMLTextAreaElement).value)} />
        </Field>
        {error && <p class="error" role="alert">{error}</p>}
        <button type="submit">{t("record.save")}</button>
      </form>
    </section>
  )
}

function Triage({ sync, entry }: { sync: Sync; entry: CaseloadEntry }) {
  const [doc, record] = useDoc<RecordDocument>(sync, entry)
  const empty = { purpose: "", items: "", recipient: "", doelbinding: "", proportionaliteit: "", subsidiariteit: "", decision: "" }
  const [form, setForm] = useState(empty)
  const [moment, setMoment] = useState<RecordDocument["triage"][number]["moment"]>("share")
  const [discussed, setDiscussed] = useState(true)
  if (!doc || !record) return <p>{t("caseload.loading")}</p>
  const input = (k: keyof typeof empty, label: MessageKey) => (
    <Field label={t(label)} id={`triage-${k}`}>
      <input id={`triage-${k}`} value={form[k]} required={k !== "recipient"} onInput={e => setForm({ ...form, [k]: (e.target as HTMLInputElement).value })} />
    </Field>
  )
  return (
    <section aria-labelledby="triage-title">
      <h3 id="triage-title">{t("triage.title")}</h3>
      {record.triage.length === 0 ? (
        <p>{t("triage.empty")}</p>
      ) : (
        <ul>
          {record.triage.map(tr => (
            <li key={tr.id} class="card">
              <strong>{tr.id}</strong> · {tr.moment} · {tr.recipient ?? "—"} · {tr.purpose} ({tr.items.join(", ")}) — {tr.decision}
            </li>
          ))}
        </ul>
      )}
      <form
        class="card"
        onSubmit={e => {
          e.preventDefault()
          const ok = sync.change(doc, d => {
            d.triage.push({
              id: newId("t"),
              moment,
              purpose: form.purpose,
              items: form.items.split(",").map(s => s.trim()).filter(Boolean),
              doelbinding: form.doelbinding,
              proportionaliteit: form.proportionaliteit,
              subsidiariteit: form.subsidiariteit,
              decision: form.decision,
              discussed_with_resident: discussed,
              ...(form.recipient ? { recipient: form.recipient } : {}),
              author: sync.session.claims.sub,
              at: new Date().toISOString(),
            })
          })
          if (ok) setForm(empty)
        }}
      >
        <h4>{t("triage.add")}</h4>
        <Field label={t("triage.moment")} id="triage-moment">
          <select id="triage-moment" value={moment} onChange={e => setMoment((e.target as HTMLSelectElement).value as any)}>
            {["aanmelding", "vraagverheldering", "plan", "evaluatie", "afsluiting", "overdracht", "share"].map(m => (
              <option key={m} value={m}>
                {m}
              </option>
            ))}
          </select>
        </Field>
        {input("purpose", "triage.purpose")}
        {input("items", "triage.items")}
        {input("recipient", "triage.recipient")}
        {input("doelbinding", "triage.doelbinding")}
        {input("proportionaliteit", "triage.proportionaliteit")}
        {input("subsidiariteit", "triage.subsidiariteit")}
        {input("decision", "triage.decision")}
        <label class="check">
          <input type="checkbox" checked={discussed} onChange={e => setDiscussed((e.target as HTMLInputElement).checked)} /> {t("triage.discussed")}
        </label>
        <button type="submit">{t("triage.save")}</button>
      </form>
    </section>
  )
}

function Consents({ sync, entry, dossier }: { sync: Sync; entry: CaseloadEntry; dossier: string }) {
  const [, record] = useDoc<RecordDocument>(sync, entry)
  const [error, setError] = useState<string>()
  const [done, setDone] = useState(false)
  if (!record) return <p>{t("caseload.loading")}</p>
  return (
    <section aria-labelledby="consents-title">
      <h3 id="consents-title">{t("consent.title")}</h3>
      {record.consents.length === 0 && <p>{t("consent.empty")}</p>}
      <ul>
        {record.consents.map(c => (
          <li key={c.id} class="card">
            {t("consent.line", { subject: c.subject, recipient: c.recipient, purpose: c.purpose, given: c.given_on })}
            {c.withdrawn_on ? (
              <> — {t("consent.withdrawn", { date: c.withdrawn_on })}</>
            ) : (
              <button
                type="button"
                onClick={async () => {
                  const r = await attempt(sync, setError, () =>
                    sync.api("POST", `/api/v1/dossiers/${dossier}/consents/${encodeURIComponent(c.id)}/withdraw`, {}),
                  )
                  if (r !== undefined) setDone(true)
                }}
              >
                {t("consent.withdraw")}
              </button>
            )}
          </li>
        ))}
      </ul>
      {done && <p role="status">{t("consent.withdrawDone")}</p>}
      {error && <p class="error" role="alert">{error}</p>}
    </section>
  )
}

function Shares({ sync, dossier, persons }: { sync: Sync; dossier: string; persons: Person[] }) {
  const [error, setError] = useState<string>()
  const [done, setDone] = useState(false)
  const [p, setP] = useState({ org: "", triage: "", purpose: "", contact: sync.session.claims.sub, phone: "", action: "" })
  const [m, setM] = useState({ triage: "", applicant: persons[0]?.id ?? "", requested: "", need: "", voorziening: "" })
  const submit = async (path: string, body: unknown) => {
    setDone(false)
    const r = await attempt(sync, setError, () => sync.api("POST", `/api/v1/dossiers/${dossier}/${path}`, body))
    if (r !== undefined) setDone(true)
  }
  const field = (state: any, set: (v: any) => void, k: string, label: MessageKey, prefix: string) => (
    <Field label={t(label)} id={`${prefix}-${k}`}>
      <input id={`${prefix}-${k}`} value={state[k]} onInput={e => set({ ...state, [k]: (e.target as HTMLInputElement).value })} />
    </Field>
  )
  return (
    <section aria-labelledby="shares-title">
      <h3 id="shares-title">{t("share.title")}</h3>
      {!sync.online && <p class="warn">{t("share.onlineOnly")}</p>}
      <form
        class="card"
        onSubmit={e => {
          e.preventDefault()
          void submit("partners", {
            org: p.org,
            triage: p.triage,
            purpose: p.purpose,
            subjects: persons.map(x => x.id).slice(0, 1),
            ground: "consent",
            contact: { name: p.contact, phone: p.phone },
            actions: p.action ? [{ id: newId("a"), description: p.action }] : [],
          })
        }}
      >
        <h4>{t("share.partner")}</h4>
        {field(p, setP, "org", "share.org", "partner")}
        {field(p, setP, "triage", "share.triage", "partner")}
        {field(p, setP, "purpose", "triage.purpose", "partner")}
        {field(p, setP, "contact", "share.contact", "partner")}
        {field(p, setP, "phone", "share.phone", "partner")}
        {field(p, setP, "action", "share.actionText", "partner")}
        <button type="submit" disabled={!sync.online}>
          {t("share.partnerSubmit")}
        </button>
      </form>
      <form
        class="card"
        onSubmit={e => {
          e.preventDefault()
          void submit("maatwerk", {
            triage: m.triage,
            applicant: m.applicant,
            requested: m.requested,
            assessed_need: m.need,
            proposed_voorziening: m.voorziening,
          })
        }}
      >
        <h4>{t("share.maatwerk")}</h4>
        {field(m, setM, "triage", "share.triage", "maatwerk")}
        <Field label={t("share.applicant")} id="maatwerk-applicant">
          <select id="maatwerk-applicant" value={m.applicant} onChange={e => setM({ ...m, applicant: (e.target as HTMLSelectElement).value })}>
            {persons.map(x => (
              <option key={x.id} value={x.id}>
                {x.name}
              </option>
            ))}
          </select>
        </Field>
        {field(m, setM, "requested", "share.requested", "maatwerk")}
        {field(m, setM, "need", "share.need", "maatwerk")}
        {field(m, setM, "voorziening", "share.voorziening", "maatwerk")}
        <button type="submit" disabled={!sync.online}>
          {t("share.maatwerkSubmit")}
        </button>
      </form>
      {done && <p role="status">{t("share.done")}</p>}
      {error && <p class="error" role="alert">{error}</p>}
    </section>
  )
}

function BreakGlass({ sync }: { sync: Sync }) {
  const [dossier, setDossier] = useState("")
  const [category, setCategory] = useState("crisis")
  const [reason, setReason] = useState("")
  const [warning, setWarning] = useState<{ warning: string; confirmation: string } | undefined>()
  const [granted, setGranted] = useState(false)
  const [error, setError] = useState<string>()
  const path = () => `/api/v1/dossiers/${encodeURIComponent(dossier.trim())}/break-glass`
  return (
    <section aria-labelledby="bg-title" class="card breakglass">
      <h2 id="bg-title">{t("bg.title")}</h2>
      <p>{t("bg.intro")}</p>
      {!warning ? (
        <form
          onSubmit={async e => {
            e.preventDefault()
            setGranted(false)
            const r = await attempt(sync, setError, () => sync.api("POST", path(), { reason, category }))
            if (r) setWarning(r)
          }}
        >
          <Field label={t("bg.dossier")} id="bg-dossier">
            <input id="bg-dossier" value={dossier} required autoComplete="off" onInput={e => setDossier((e.target as HTMLInputElement).value)} />
          </Field>
          <Field label={t("bg.category")} id="bg-category">
            <select id="bg-category" value={category} onChange={e => setCategory((e.target as HTMLSelectElement).value)}>
              {(["crisis", "safety", "continuity", "other"] as const).map(c => (
                <option key={c} value={c}>
                  {t(`bg.${c}`)}
                </option>
              ))}
            </select>
          </Field>
          <Field label={t("bg.reason")} id="bg-reason">
            <textarea id="bg-reason" rows={2} required value={reason} onInput={e => setReason((e.target as HTMLTextAreaElement).value)} />
          </Field>
          <button type="submit">{t("bg.request")}</button>
        </form>
      ) : (
        <div role="alertdialog" aria-labelledby="bg-warning-title" aria-describedby="bg-warning-text" class="warning">
          <h3 id="bg-warning-title">{t("bg.warning")}</h3>
          <p id="bg-warning-text">{warning.warning}</p>
          <button
            type="button"
            class="danger"
            onClick={async () => {
              const r = await attempt(sync, setError, () => sync.api("POST", path(), { confirmation: warning.confirmation }))
              setWarning(undefined)
              if (r) {
                setGranted(true)
                setReason("")
                await sync.refresh()
              }
            }}
          >
            {t("bg.confirm")}
          </button>{" "}
          <button type="button" onClick={() => setWarning(undefined)}>
            {t("bg.cancel")}
          </button>
        </div>
      )}
      {granted && <p role="status">{t("bg.granted")}</p>}
      {error && <p class="error" role="alert">{error}</p>}
    </section>
  )
}

