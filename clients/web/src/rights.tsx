// Resident rights (R19–R22) in the app: the resident files a request (access, rectification,
// erasure, restriction, objection) and reads its status and deadline; the worker lists a
// dossier's requests and decides them — a refusal with its legal ground, an erasure with its
// scope, a rectification with the corrected text, an objection on a recorded weighing. The
// server decides who may do what (the one policy); the app only shows its answers.
import type { ComponentChildren } from "preact"
import { useEffect, useState } from "preact/hooks"

import { t, type MessageKey } from "./i18n"
import type { Sync } from "./session"
import { Field, attempt } from "./ui"

const KINDS = ["access", "rectification", "erasure", "restriction", "objection"] as const
type Kind = (typeof KINDS)[number]

/** The grounds on which each kind can be refused, as `regie_core::rights::RefusalGround::allowed_for`. */
const GROUNDS: Record<Kind, string[]> = {
  access: ["others_interest", "unfounded"],
  rectification: ["opinion", "accurate", "unfounded"],
  erasure: ["retention_duty", "others_interest", "legal_claims", "unfounded"],
  restriction: ["legal_claims", "unfounded"],
  objection: ["compelling_grounds", "unfounded"],
}

interface Ruling {
  verdict: "granted" | "refused"
  reasons: string
  on: string
  ground_label?: string
  outcome?: string
  weighing?: string
}

interface Request {
  id: string
  dossier: string
  subject: string
  kind: Kind
  kind_label: string
  details: string
  received_on: string
  deadline: string
  status: string
  status_label: string
  overdue: boolean
  decision?: Ruling | null
}

function RequestList({ requests, children }: { requests: Request[]; children?: (r: Request) => ComponentChildren }) {
  if (requests.length === 0) return <p>{t("rights.none")}</p>
  return (
    <ul class="entries" data-testid="rights-requests">
      {requests.map(r => (
        <li key={r.id} class="card" data-testid="rights-request">
          <p class="meta">
            <strong>{r.kind_label}</strong> · {t("rights.received", { date: r.received_on })} ·{" "}
            {t("rights.deadline", { date: r.deadline })}
            {r.overdue ? ` · ${t("rights.overdue")}` : ""}
          </p>
          {r.details && <p class="text">{r.details}</p>}
          <p data-testid="rights-status">
            {t("rights.status")}: {r.status_label}
          </p>
          {r.decision && (
            <p>
              {r.decision.reasons}
              {r.decision.ground_label ? ` (${t("rights.ground")}: ${r.decision.ground_label})` : ""}
            </p>
          )}
          {children?.(r)}
        </li>
      ))}
    </ul>
  )
}

/** The resident: file a request for their dossier and follow its status. */
export function MyRequests({ sync, dossier }: { sync: Sync; dossier: string | undefined }) {
  const [requests, setRequests] = useState<Request[]>()
  const [kind, setKind] = useState<Kind>("access")
  const [details, setDetails] = useState("")
  const [error, setError] = useState<string>()
  const [done, setDone] = useState(false)
  const load = async () => {
    const r = await attempt(sync, setError, () => sync.api<Request[]>("GET", "/api/v1/me/requests"))
    if (r) setRequests(r)
  }
  useEffect(() => {
    if (sync.online) void load()
  }, [sync, sync.online])
  return (
    <section aria-labelledby="rights-title">
      <h2 id="rights-title">{t("rights.mine")}</h2>
      <p>{t("rights.intro")}</p>
      {dossier && (
        <form
          onSubmit={async e => {
            e.preventDefault()
            setDone(false)
            const r = await attempt(sync, setError, () => sync.api("POST", "/api/v1/me/requests", { dossier, kind, details }))
            if (r !== undefined) {
              setDetails("")
              setDone(true)
              await load()
            }
          }}
        >
          <Field label={t("rights.kind")} id="rights-kind">
            <select id="rights-kind" value={kind} onChange={e => setKind((e.target as HTMLSelectElement).value as Kind)}>
              {KINDS.map(k => (
                <option key={k} value={k}>
                  {t(`rights.kind.${k}` as MessageKey)}
                </option>
              ))}
            </select>
          </Field>
          <Field label={t("rights.details")} id="rights-details">
            <textarea
              id="rights-details"
              rows={3}
              value={details}
              onInput={e => setDetails((e.target as HTMLTextAreaElement).value)}
            />
          </Field>
          <button type="submit">{t("rights.file")}</button>
        </form>
      )}
      {done && <p role="status">{t("rights.filed")}</p>}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {requests && <RequestList requests={requests} />}
    </section>
  )
}

/** The worker: a dossier's requests, and a decision for each one still open. */
export function DossierRequests({ sync, dossier }: { sync: Sync; dossier: string }) {
  const [requests, setRequests] = useState<Request[]>()
  const [error, setError] = useState<string>()
  const load = async () => {
    const r = await attempt(sync, setError, () => sync.api<Request[]>("GET", `/api/v1/dossiers/${dossier}/requests`))
    if (r) setRequests(r)
  }
  useEffect(() => {
    if (sync.online) void load()
  }, [sync, dossier, sync.online])
  return (
    <section aria-labelledby="requests-title">
      <h3 id="requests-title">{t("rights.ofDossier")}</h3>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {requests && (
        <RequestList requests={requests}>
          {r => (r.status === "received" || r.status === "extended" ? <Decide sync={sync} request={r} onDone={load} /> : null)}
        </RequestList>
      )}
    </section>
  )
}

function Decide({ sync, request, onDone }: { sync: Sync; request: Request; onDone: () => Promise<void> }) {
  const id = request.id
  const [verdict, setVerdict] = useState<"granted" | "refused">("granted")
  const [reasons, setReasons] = useState("")
  const [ground, setGround] = useState(GROUNDS[request.kind][0])
  const [scope, setScope] = useState("items")
  const [weighing, setWeighing] = useState("")
  const [entry, setEntry] = useState("")
  const [corrected, setCorrected] = useState("")
  const [error, setError] = useState<string>()
  const refused = verdict === "refused"
  return (
    <form
      class="decide"
      onSubmit={async e => {
        e.preventDefault()
        const body: Record<string, unknown> = { verdict, reasons }
        if (refused) body.ground = ground
        if (!refused && request.kind === "erasure") body.scope = scope
        if (!refused && request.kind === "rectification") body.corrections = [{ entry, text: corrected }]
        if (request.kind === "objection") body.weighing = weighing
        const r = await attempt(sync, setError, () => sync.api("POST", `/api/v1/requests/${id}/decision`, body))
        if (r !== undefined) await onDone()
      }}
    >
      <fieldset>
        <legend>{t("rights.decide")}</legend>
        <label>
          <input type="radio" name={`verdict-${id}`} value="granted" checked={!refused} onChange={() => setVerdict("granted")} />{" "}
          {t("rights.grant")}
        </label>
        <label>
          <input type="radio" name={`verdict-${id}`} value="refused" checked={refused} onChange={() => setVerdict("refused")} />{" "}
          {t("rights.refuse")}
        </label>
      </fieldset>
      {refused && (
        <Field label={t("rights.ground")} id={`ground-${id}`}>
          <select id={`ground-${id}`} value={ground} onChange={e => setGround((e.target as HTMLSelectElement).value)}>
            {GROUNDS[request.kind].map(g => (
              <option key={g} value={g}>
                {t(`rights.ground.${g}` as MessageKey)}
              </option>
            ))}
          </select>
        </Field>
      )}
      {!refused && request.kind === "erasure" && (
        <Field label={t("rights.scope")} id={`scope-${id}`}>
          <select id={`scope-${id}`} value={scope} onChange={e => setScope((e.target as HTMLSelectElement).value)}>
            <option value="items">{t("rights.scope.items")}</option>
            <option value="dossier">{t("rights.scope.dossier")}</option>
          </select>
        </Field>
      )}
      {!refused && request.kind === "rectification" && (
        <>
          <Field label={t("rights.entry")} id={`entry-${id}`}>
            <input id={`entry-${id}`} required value={entry} onInput={e => setEntry((e.target as HTMLInputElement).value)} />
          </Field>
          <Field label={t("rights.corrected")} id={`corrected-${id}`}>
            <textarea id={`corrected-${id}`} rows={2} required value={corrected} onInput={e => setCorrected((e.target as HTMLTextAreaElement).value)} />
          </Field>
        </>
      )}
      {request.kind === "objection" && (
        <Field label={t("rights.weighing")} id={`weighing-${id}`}>
          <textarea id={`weighing-${id}`} rows={2} required value={weighing} onInput={e => setWeighing((e.target as HTMLTextAreaElement).value)} />
        </Field>
      )}
      <Field label={t("rights.reasons")} id={`reasons-${id}`}>
        <textarea id={`reasons-${id}`} rows={2} required={refused} value={reasons} onInput={e => setReasons((e.target as HTMLTextAreaElement).value)} />
      </Field>
      <button type="submit">{t("rights.save")}</button>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </form>
  )
}
