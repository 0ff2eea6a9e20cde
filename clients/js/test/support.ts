// Test support: a real `regie-server demo` process on 127.0.0.1:0 in a temporary directory (its
// demo household, cast and tokens from regie-demo.json), tokens minted with the demo store's own
// HS256 secret (for short-lived and extra tokens), clients over files, bounded waiting, and the
// leak scan over a client's storage files: decoded Automerge operations and materialized
// documents, not compressed bytes.

import { spawn, type ChildProcess, execFileSync } from "node:child_process"
import { createHmac, randomUUID } from "node:crypto"
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"

import * as A from "@automerge/automerge"

import { startNodeClient, type RegieClient, type RegieClientOptions, type TokenReason } from "../src/node.js"

/** What regie-demo.json says about one role. */
export interface DemoRole {
  user: string
  role: string
  token: string
  documents: { dossier: string; key: string; url: string; access: string }[]
}

/** A running demo server. */
export interface Server {
  base: string
  dir: string
  roles: Record<string, DemoRole>
  /** The demo household's dossier id. */
  dossier: string
  secret: string
  /** A token for `claims` (sub, role, …) valid for `ttlSeconds`. */
  mint(claims: Record<string, unknown>, ttlSeconds: number): string
  /** Calls the HTTP API; returns status and JSON body (null when empty). */
  api(token: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>
  /** Counts rows of the server's audit log with this action (read with the sqlite3 CLI). */
  auditCount(action: string, actor: string): number
  stop(): Promise<void>
}

const repoRoot = resolve(import.meta.dirname, "../../../..")

/** The regie-server binary: $REGIE_SERVER_BIN, else the cargo target directory's debug build. */
export function serverBin(): string {
  const candidates = [
    process.env.REGIE_SERVER_BIN,
    process.env.CARGO_TARGET_DIR && join(process.env.CARGO_TARGET_DIR, "debug/regie-server"),
    join(repoRoot, "target/debug/regie-server"),
  ].filter((p): p is string => !!p)
  const found = candidates.find(p => existsSync(p))
  if (!found) {
    throw new Error(
      `no regie-server binary (tried ${candidates.join(", ")}); run \`cargo build -p regie-server\` or set REGIE_SERVER_BIN`,
    )
  }
  return found
}

export const sleep = (ms: number) => new Promise<void>(r => setTimeout(r, ms))

/** Polls `cond` every 25 ms until it holds; fails after `ms` naming `what`. */
export async function waitFor(what: string, cond: () => boolean | Promise<boolean>, ms = 15_000) {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (await cond()) return
    await sleep(25)
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`)
}

const b64url = (s: string | Buffer) => Buffer.from(s).toString("base64url")

/** Starts `regie-server demo --listen 127.0.0.1:0` in a fresh directory. */
export async function startServer(): Promise<Server> {
  const dir = mkdtempSync(join(tmpdir(), "regie-js-server-"))
  const child: ChildProcess = spawn(serverBin(), ["demo", "--listen", "127.0.0.1:0"], {
    cwd: dir,
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? "warn" },
    stdio: ["ignore", "ignore", "inherit"],
  })
  const demoFile = join(dir, "regie-demo.json")
  let exited = false
  child.on("exit", () => (exited = true))
  // A test process that dies takes its server with it.
  const reap = () => {
    if (!exited) child.kill("SIGKILL")
  }
  process.on("exit", reap)
  await waitFor("regie-demo.json", () => {
    if (exited) throw new Error("regie-server demo exited early")
    return existsSync(demoFile)
  }, 60_000)
  // The file is written whole before the server starts listening; give the listener a moment.
  let demo: any
  await waitFor("a complete regie-demo.json", () => {
    try {
      demo = JSON.parse(readFileSync(demoFile, "utf8"))
      return true
    } catch {
      return false
    }
  })
  const base: string = demo.server
  await waitFor("the server's health endpoint", async () => {
    try {
      return (await fetch(`${base}/api/v1/health`)).ok
    } catch {
      return false
    }
  })
  const secret = readFileSync(join(dir, "regie-data/demo-secret"), "utf8").trim()
  const roles: Record<string, DemoRole> = demo.roles
  const dossier = roles.worker.documents[0].dossier
  return {
    base,
    dir,
    roles,
    dossier,
    secret,
    mint(claims, ttlSeconds) {
      const now = Math.floor(Date.now() / 1000)
      const header = b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }))
      const body = b64url(
        JSON.stringify({ iss: "regie-demo", aud: "regie", iat: now, nbf: now - 5, exp: now + ttlSeconds, ...claims }),
      )
      const sig = createHmac("sha256", secret).update(`${header}.${body}`).digest("base64url")
      return `${header}.${body}.${sig}`
    },
    async api(token, method, path, body) {
      const res = await fetch(base + path, {
        method,
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      })
      const text = await res.text()
      return { status: res.status, body: text ? JSON.parse(text) : null }
    },
    auditCount(action, actor) {
      const out = execFileSync("sqlite3", [
        "-readonly",
        join(dir, "regie-data/regie.sqlite3"),
        `SELECT count(*) FROM audit WHERE action = '${action}' AND actor = '${actor}'`,
      ])
      return Number(out.toString().trim())
    },
    async stop() {
      if (!exited) {
        child.kill("SIGTERM")
        const deadline = Date.now() + 10_000
        while (!exited && Date.now() < deadline) await sleep(25)
        if (!exited) child.kill("SIGKILL")
      }
      process.off("exit", reap)
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** A client for `token` over files in a fresh (or the given) directory. */
export async function client(
  server: Pick<Server, "base">,
  token: string | ((reason: TokenReason) => Promise<string>),
  opts: Partial<RegieClientOptions> & { dir?: string } = {},
): Promise<{ client: RegieClient; dir: string }> {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), "regie-js-device-"))
  const c = await startNodeClient({
    server: server.base,
    token: typeof token === "string" ? async () => token : token,
    backoff: { initialMs: 100, maxMs: 1_000 },
    log: process.env.REGIE_CLIENT_LOG ? line => console.error(`[client] ${line}`) : undefined,
    ...opts,
    dir,
  })
  return { client: c, dir }
}

/** Waits until the client is connected and its caseload lists `n` documents (or any, if n is
 * undefined). */
export async function connected(c: RegieClient, n?: number): Promise<void> {
  await waitFor("the client to connect", () => c.online && (n === undefined || c.caseload.length === n))
}

function files(dir: string): string[] {
  if (!existsSync(dir)) return []
  return readdirSync(dir).flatMap(name => {
    const p = join(dir, name)
    return statSync(p).isDirectory() ? files(p) : [p]
  })
}

/** Where `needle` occurs in a client's storage directory: in raw bytes, in the decoded
 * operations of every change, or in the materialized document of every file that loads. */
export function scanStorage(dir: string, needle: string): string[] {
  const hits: string[] = []
  const raw = Buffer.from(needle, "utf8")
  for (const file of files(dir)) {
    const bytes = readFileSync(file)
    if (bytes.includes(raw)) hits.push(`${file}: raw bytes`)
    let doc: A.Doc<unknown>
    try {
      doc = A.loadIncremental(A.init(), new Uint8Array(bytes))
    } catch {
      continue
    }
    if (JSON.stringify(A.toJS(doc)).includes(needle)) hits.push(`${file}: materialized document`)
    for (const change of A.getAllChanges(doc)) {
      if (JSON.stringify(A.decodeChange(change).ops).includes(needle)) {
        hits.push(`${file}: decoded operations`)
        break
      }
    }
  }
  return hits
}

/** Every stored file whose path names the document id. */
export function storedFilesOf(dir: string, documentId: string): string[] {
  return files(dir).filter(f => f.includes(documentId))
}

export const uniqueSentinel = (label: string) => `SENTINEL-${label}-${randomUUID().slice(0, 8)}`
