// The plan, co-edited live by the worker and the resident: hulpvraag, goals with actions,
// agreements, evaluation moments. Presence (automerge-repo ephemeral messages, relayed by the
// server under an alias) shows who else has the plan open and which field they are editing.
// An edit the write rules refuse is not made and shows in the refusals.
import { useEffect, useState } from "preact/hooks"
import * as A from "@automerge/automerge"
import type { CaseloadEntry, PlanDocument, RegieDocument } from "@regie/client/browser"

import { t, type MessageKey } from "./i18n"
import type { Sync } from "./session"
import { newId, useDoc } from "./ui"

interface Peer {
  who: string
  role: string
  field?: string
  at: number
}

const FIELD_NAMES: Record<string, MessageKey> = {
  hulpvraag: "plan.hulpvraag",
  goals: "plan.goals",
  agreements: "plan.agreements",
  evaluations: "plan.evaluations",
}

function usePresence(sync: Sync, doc: RegieDocument<PlanDocument> | undefined) {
  const [peers, setPeers] = useState<Record<string, Peer>>({})
  const [field, setField] = useState<string | undefined>()
  const handle = doc?.handle
  useEffect(() => {
    if (!handle) return
    const onMessage = (p: { senderId: string; message: unknown }) => {
      const m = p.message as Partial<Peer> & { type?: string }
      if (m?.type !== "regie-presence" || typeof m.who !== "string") return
      setPeers(prev => ({ ...prev, [p.senderId]: { who: m.who!, role: String(m.role ?? ""), field: m.field, at: Date.now() } }))
    }
    handle.on("ephemeral-message", onMessage as any)
    const send = () =>
      handle.broadcast({ type: "regie-presence", who: sync.session.claims.sub, role: sync.session.claims.role, field })
    send()
    const beat = setInterval(() => {
      send()
      // Someone not heard of for 6 s has left.
      setPeers(prev => Object.fromEntries(Object.entries(prev).filter(([, v]) => Date.now() - v.at < 6_000)))
    }, 2_000)
    return () => {
      clearInterval(beat)
      handle.off("ephemeral-message", onMessage as any)
    }
  }, [handle, field])
  return { peers: Object.values(peers), setField }
}

/** Writes a text field as a diff of the text (so concurrent edits merge), or puts it when new. */
export function setText(d: any, path: (string | number)[], value: string): void {
  let parent = d
  for (const p of path.slice(0, -1)) parent = parent[p]
  const last = path[path.length - 1]
  if (typeof parent[last] === "string") A.updateText(d, path as A.Prop[], value)
  else parent[last] = value
}

export function PlanEditor({ sync, entry }: { sync: Sync; entry: CaseloadEntry }) {
  const [doc, plan] = useDoc<PlanDocument>(sync, entry)
  const { peers, setField } = usePresence(sync, doc)
  if (!doc || !plan) return <p>{t("caseload.loading")}</p>
  const rules = doc.rules()
  const reserved = (pattern: string) => rules?.paths.some(p => p.path === pattern && !p.allowed) ?? false
  const change = (fn: A.ChangeFn<PlanDocument>) => sync.change(doc, fn)
  const focus = (f: string) => ({ onFocus: () => setField(f), onBlur: () => setField(undefined) })
  const text = (path: (string | number)[]) => (e: Event) => {
    const value = (e.target as HTMLInputElement).value
    change(d => setText(d, path, value))
  }
  return (
    <section class="plan" aria-labelledby="plan-title">
      <h2 id="plan-title">{t("plan.title")}</h2>
      <aside class="presence" aria-label={t("presence.title")} aria-live="polite" data-testid="presence">
        {peers.length === 0
          ? t("presence.none")
          : peers.map(p => (
              <p key={p.who}>
                {p.field
                  ? t("presence.editing", { who: p.who, field: t(FIELD_NAMES[p.field] ?? "plan.title") })
                  : t("presence.here", { who: p.who })}
              </p>
            ))}
      </aside>
      <div class="field">
        <label for="hulpvraag">{t("plan.hulpvraag")}</label>
        <textarea id="hulpvraag" rows={4} value={plan.hulpvraag} onInput={text(["hulpvraag"])} {...focus("hulpvraag")} />
      </div>

      <h3>{t("plan.goals")}</h3>
      <ol class="goals">
        {plan.goals.map((g, gi) => (
          <li key={g.id} class="card">
            <div class="field">
              <label for={`goal-${g.id}`}>{t("plan.goalTitle")}</label>
              <input id={`goal-${g.id}`} value={g.title} onInput={text(["goals", gi, "title"])} {...focus("goals")} />
            </div>
            <div class="row">
              <div class="field">
                <label for={`goal-owner-${g.id}`}>
                  {t("plan.owner")}
                  {reserved("goals/*/owner") && <span class="lock"> ({t("plan.reserved")})</span>}
                </label>
                <select
                  id={`goal-owner-${g.id}`}
                  value={g.owner ?? ""}
                  onChange={e => {
                    const v = (e.target as HTMLSelectElement).value
                    if (!change(d => { d.goals[gi].owner = (v || undefined) as any }))
                      (e.target as HTMLSelectElement).value = g.owner ?? ""
                  }}
                >
                  <option value="">{t("owner.none")}</option>
                  <option value="resident">{t("owner.resident")}</option>
                  <option value="network">{t("owner.network")}</option>
                  <option value="worker">{t("owner.worker")}</option>
                </select>
              </div>
              <div class="field">
                <label for={`goal-status-${g.id}`}>{t("plan.status")}</label>
                <select
                  id={`goal-status-${g.id}`}
                  value={g.status ?? "open"}
                  onChange={e => {
                    const v = (e.target as HTMLSelectElement).value as "open"
                    if (!change(d => { d.goals[gi].status = v }))
                      (e.target as HTMLSelectElement).value = g.status ?? "open"
                  }}
                >
                  <option value="open">{t("status.open")}</option>
                  <option value="achieved">{t("status.achieved")}</option>
                  <option value="dropped">{t("status.dropped")}</option>
                </select>
              </div>
            </div>
            <h4>{t("plan.actions")}</h4>
            <ul class="actions">
              {(g.actions ?? []).map((a, ai) => (
                <li key={a.id} class="row">
                  <div class="field grow">
                    <label for={`action-${a.id}`}>{t("plan.action")}</label>
                    <input id={`action-${a.id}`} value={a.description} onInput={text(["goals", gi, "actions", ai, "description"])} {...focus("goals")} />
                  </div>
                  <div class="field">
                    <label for={`action-due-${a.id}`}>{t("plan.due")}</label>
                    <input
                      id={`action-due-${a.id}`}
                      type="date"
                      value={a.due ?? ""}
                      onChange={e => change(d => { d.goals[gi].actions![ai].due = (e.target as HTMLInputElement).value })}
                    />
                  </div>
                  <div class="field check">
                    <input
                      id={`action-done-${a.id}`}
                      type="checkbox"
                      checked={!!a.done}
                      onChange={e => change(d => { d.goals[gi].actions![ai].done = (e.target as HTMLInputElement).checked })}
                    />
                    <label for={`action-done-${a.id}`}>{t("plan.done")}</label>
                  </div>
                </li>
              ))}
            </ul>
            <button
              type="button"
              onClick={() =>
                change(d => {
                  const goal = d.goals[gi]
                  if (!goal.actions) goal.actions = []
                  goal.actions.push({ id: newId("a"), description: "" })
                })
              }
            >
              {t("plan.addAction")}
            </button>
          </li>
        ))}
      </ol>
      <button type="button" onClick={() => change(d => { d.goals.push({ id: newId("g"), title: "" }) })}>
        {t("plan.addGoal")}
      </button>

      <h3>{t("plan.agreements")}</h3>
      <ul class="agreements">
        {plan.agreements.map((a, i) => (
          <li key={a.id} class="card">
            <div class="field">
              <label for={`agreement-${a.id}`}>{t("plan.agreement")}</label>
              <textarea id={`agreement-${a.id}`} rows={2} value={a.text} onInput={text(["agreements", i, "text"])} {...focus("agreements")} />
            </div>
            <p class="meta">
              {t("plan.madeOn")}: {a.made_on || "—"}
            </p>
          </li>
        ))}
      </ul>
      <button type="button" onClick={() => change(d => { d.agreements.push({ id: newId("ag"), text: "", made_on: new Date().toISOString().slice(0, 10) }) })}>
        {t("plan.addAgreement")}
      </button>

      <h3>{t("plan.evaluations")}</h3>
      <ul class="evaluations">
        {plan.evaluations.map((ev, i) => (
          <li key={ev.id} class="card row">
            <div class="field">
              <label for={`eval-date-${ev.id}`}>{t("plan.evalDate")}</label>
              <input
                id={`eval-date-${ev.id}`}
                type="date"
                value={ev.date}
                onChange={e => change(d => { d.evaluations[i].date = (e.target as HTMLInputElement).value })}
              />
            </div>
            <div class="field grow">
              <label for={`eval-summary-${ev.id}`}>{t("plan.evalSummary")}</label>
              <input id={`eval-summary-${ev.id}`} value={ev.summary ?? ""} onInput={text(["evaluations", i, "summary"])} {...focus("evaluations")} />
            </div>
          </li>
        ))}
      </ul>
      <button type="button" onClick={() => change(d => { d.evaluations.push({ id: newId("ev"), date: "" }) })}>
        {t("plan.addEvaluation")}
      </button>
    </section>
  )
}
