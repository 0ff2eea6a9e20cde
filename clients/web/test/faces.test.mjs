// Every face at tablet and phone width: a screenshot (kept as a CI artifact) and an axe-core
// audit that must find no serious or critical violation.
import assert from "node:assert/strict"
import { readFileSync } from "node:fs"
import { createRequire } from "node:module"
import { join } from "node:path"
import { after, before, test } from "node:test"

import { PHONE, TABLET, browser, chromiumPath, login, openFirstDossier, page, screenshotDir, startServer } from "./support.mjs"

const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8")

let server
let b
before(async () => {
  b = await browser()
  if (!b) throw new Error(`no Chromium at ${chromiumPath()}`)
  server = await startServer()
})
after(async () => {
  await b?.close()
  await server?.close()
})

async function audit(p, name) {
  await p.screenshot({ path: join(screenshotDir(), `${name}.png`), fullPage: true })
  // The page's CSP allows no injected script; the audit's context bypasses it (bypassCSP).
  await p.addScriptTag({ content: axeSource })
  const result = await p.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ["violations"] })
    return {
      passes: r.passes.length,
      violations: r.violations.map(v => ({ id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(" ")).slice(0, 5) })),
    }
  })
  assert.ok(result.passes > 10, `${name}: axe-core ran its rules (${result.passes} passed)`)
  const serious = result.violations.filter(v => v.impact === "serious" || v.impact === "critical")
  const minor = result.violations.filter(v => !serious.includes(v))
  if (minor.length > 0) console.error(`${name}: minor axe findings: ${JSON.stringify(minor)}`)
  assert.deepEqual(serious, [], `${name}: axe-core found serious violations: ${JSON.stringify(serious, null, 1)}`)
  return result
}

/** Loads every report of the page; each must answer (no error). */
async function loadReports(p) {
  // Reports need the connection; on a loaded machine the WebSocket may still be opening.
  await p.getByTestId("sync-online").filter({ hasText: /^Verbonden$/ }).waitFor({ timeout: 30_000 })
  const reports = await p.getByTestId("report").all()
  assert.ok(reports.length >= 2, "the face has reports")
  for (const r of reports) {
    await r.getByRole("button", { name: "Ophalen" }).click()
    await r.locator(".report-body, .error").first().waitFor({ timeout: 20_000 })
    const errors = await r.locator(".error").allTextContents()
    assert.deepEqual(errors, [], `a report answered with an error: ${errors.join("; ")}`)
  }
}

const faces = [
  {
    role: "worker",
    steps: [
      ["worker-caseload", async () => {}],
      ["worker-plan", async p => openFirstDossier(p)],
      ["worker-record", async p => {
        await p.getByRole("tab", { name: "Verslaglegging" }).click()
        await p.locator("#entry-text").waitFor()
      }],
      ["worker-triage", async p => {
        await p.getByRole("tab", { name: "Triage" }).click()
        await p.locator("#triage-purpose").waitFor()
      }],
      ["worker-consents", async p => {
        await p.getByRole("tab", { name: "Toestemmingen" }).click()
        await p.getByRole("button", { name: "Intrekken" }).first().waitFor()
      }],
      ["worker-shares", async p => {
        await p.getByRole("tab", { name: "Delen" }).click()
        await p.locator("#partner-org").waitFor()
      }],
    ],
  },
  {
    role: "resident",
    steps: [
      ["resident-plan", async p => p.locator("#hulpvraag").waitFor()],
      ["resident-recorded", async p => {
        await p.getByRole("button", { name: "Wat er over mij is vastgelegd" }).click()
        await p.locator("#recorded-title").waitFor()
      }],
      ["resident-looked", async p => {
        await p.getByRole("button", { name: "Wie keek in mijn dossier" }).click()
        await p.getByRole("button", { name: "Toon wie keek" }).click()
        await p.locator("table[data-testid=access-log], #looked-title ~ p").first().waitFor()
      }],
      ["resident-decisions", async p => {
        await p.getByRole("button", { name: "Mijn maatwerkbesluiten" }).click()
        await p.locator("#decisions-title ~ article").first().waitFor()
      }],
    ],
  },
  {
    role: "backoffice",
    steps: [["backoffice-extracts", async p => p.getByTestId("extract").first().locator("select").waitFor()]],
  },
  {
    role: "manager",
    steps: [["manager-reports", loadReports]],
  },
  {
    role: "privacy_officer",
    steps: [["privacy-officer-reports", loadReports]],
  },
]

for (const [width, viewport] of [["tablet", TABLET], ["phone", PHONE]]) {
  test(`login page at ${width} width`, async () => {
    const p = await page(b, viewport, { bypassCSP: true })
    try {
      await p.goto(server.base + "/")
      await p.locator("button[data-login]").first().waitFor()
      await audit(p, `login-${width}`)
    } finally {
      await p.context().close()
    }
  })
  test(`lock screen at ${width} width`, async () => {
    const p = await page(b, viewport, { bypassCSP: true })
    try {
      await login(p, server, "worker")
      // A reload drops the key and the token: the lock screen, which is the login again.
      await p.reload()
      await p.getByTestId("lock-screen").waitFor()
      await p.locator("button[data-login]").first().waitFor()
      await audit(p, `lock-${width}`)
    } finally {
      await p.context().close()
    }
  })
  for (const face of faces) {
    test(`${face.role} at ${width} width: screenshots and axe-core`, async () => {
      const p = await page(b, viewport, { bypassCSP: true })
      try {
        await login(p, server, face.role)
        for (const [name, step] of face.steps) {
          await step(p)
          await audit(p, `${name}-${width}`)
        }
      } finally {
        await p.context().close()
      }
    })
  }
}
