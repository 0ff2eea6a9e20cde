// The shell: login (demo users in `regie-server demo`, otherwise a pasted token), then the face
// of the logged-in role, with the sync state and refused edits above it. Logging in unlocks the
// device's sealed store with the key the server releases (R29); after the server's idle time
// without input the app drops the key and the token and shows the lock screen, which is the login
// again. A device reported lost gets no key: the app says so and erases what it holds.
import { DeviceRevokedError, KeyUnreachableError } from "@regie/client/browser"
import { useEffect, useRef, useState } from "preact/hooks"

import { BackofficeFace, ReportsFace } from "./desk"
import { currentLang, setLang, t, type MessageKey } from "./i18n"
import { ResidentFace } from "./resident"
import { Sync, logout, newSession, storedAccount, wipe, type Account, type Session } from "./session"
import { Refusals, SyncBar } from "./ui"
import { WorkerFace } from "./worker"

interface DemoLogin {
  label: string
  user: string
  role: string
  token: string
}

function Login({ onLogin }: { onLogin: (s: Session) => void }) {
  const [demo, setDemo] = useState<DemoLogin[]>([])
  const [token, setToken] = useState("")
  const [error, setError] = useState<string>()
  useEffect(() => {
    fetch("/demo/logins")
      .then(r => (r.ok ? r.json() : []))
      .then(setDemo, () => setDemo([]))
  }, [])
  const login = async (tok: string) => {
    const s = await newSession(tok)
    if (!s) return setError(t("login.badToken"))
    onLogin(s)
  }
  return (
    <section aria-labelledby="login-title" class="login">
      <h2 id="login-title">{t("login.title")}</h2>
      {demo.length > 0 && (
        <div class="card">
          <h3>{t("login.demo")}</h3>
          <p class="hint">{t("login.demoHint")}</p>
          <ul class="demo-users">
            {demo.map(d => (
              <li key={d.label}>
                <button type="button" data-login={d.label} onClick={() => login(d.token)}>
                  {t("login.as", { user: d.user, role: t(`role.${d.role}` as MessageKey) })}
                </button>
              </li>
            ))}
          </ul>
        </div>
      )}
      <form
        class="card"
        onSubmit={e => {
          e.preventDefault()
          void login(token)
        }}
      >
        <div class="field">
          <label for="token">{t("login.token")}</label>
          <textarea id="token" rows={3} autoComplete="off" spellcheck={false} aria-describedby="token-hint" value={token} onInput={e => setToken((e.target as HTMLTextAreaElement).value)} />
          <small id="token-hint" class="hint">
            {t("login.tokenHint")}
          </small>
        </div>
        {error && <p class="error" role="alert">{error}</p>}
        <button type="submit">{t("login.submit")}</button>
      </form>
    </section>
  )
}

/** Why the app is locked: just opened, idle, no connection to fetch the key, or it failed. */
type Lock =
  | { kind: "start" }
  | { kind: "idle"; seconds: number }
  | { kind: "offline" }
  | { kind: "error"; detail: string }
  | { kind: "lost" }

/** Input that counts as use of the app (not sync traffic, not a pointer merely passing by). */
const ACTIVITY = ["pointerdown", "keydown", "input", "wheel", "touchstart"] as const

/** Calls `onIdle` once `seconds` pass without input. Checks the clock rather than trusting one
 * long timer, which a sleeping tablet or a background tab delays. */
function useIdle(seconds: number | undefined, onIdle: () => void): void {
  const idle = useRef(onIdle)
  idle.current = onIdle
  useEffect(() => {
    if (seconds === undefined) return
    let last = Date.now()
    const touch = () => (last = Date.now())
    for (const e of ACTIVITY) window.addEventListener(e, touch, { capture: true, passive: true })
    const check = () => {
      if (Date.now() - last >= seconds * 1000) idle.current()
    }
    const timer = setInterval(check, Math.min(5_000, Math.max(250, seconds * 250)))
    document.addEventListener("visibilitychange", check)
    return () => {
      for (const e of ACTIVITY) window.removeEventListener(e, touch, { capture: true })
      clearInterval(timer)
      document.removeEventListener("visibilitychange", check)
    }
  }, [seconds])
}

function duration(seconds: number): string {
  return seconds >= 120 && seconds % 60 === 0 ? t("lock.minutes", { n: seconds / 60 }) : t("lock.seconds", { n: seconds })
}

/** The lock screen: why it is locked, whose dossiers are here, and the login that unlocks. */
function LockScreen({ lock, account, onLogin }: { lock: Lock; account: Account; onLogin: (s: Session) => void }) {
  const text =
    lock.kind === "idle"
      ? t("lock.idle", { minutes: duration(lock.seconds) })
      : lock.kind === "offline"
        ? t("lock.offline")
        : lock.kind === "error"
          ? t("lock.error", { detail: lock.detail })
          : t("lock.start")
  return (
    <>
      <section aria-labelledby="lock-title">
        <h2 id="lock-title">{t("lock.title")}</h2>
        <div class="card" role={lock.kind === "start" ? undefined : "alert"} data-testid="lock-screen" data-lock={lock.kind}>
          <p>{text}</p>
          <p class="hint">{t("lock.who", { user: account.claims.sub })}</p>
        </div>
      </section>
      <Login onLogin={onLogin} />
    </>
  )
}

export function App() {
  const [account, setAccount] = useState<Account | undefined>(storedAccount())
  const [session, setSession] = useState<Session>()
  const [sync, setSync] = useState<Sync>()
  const [lock, setLock] = useState<Lock>({ kind: "start" })
  const [, setLangTick] = useState(0)
  useEffect(() => {
    if (!session) return
    let live = true
    let started: Sync | undefined
    Sync.start(session).then(
      s => {
        started = s
        if (live) setSync(s)
        else void s.closeDatabase()
      },
      async (e: unknown) => {
        if (!live) return
        // The token goes with the failed attempt: the next try is a new login.
        setSession(undefined)
        if (e instanceof DeviceRevokedError) {
          await wipe(session)
          setAccount(undefined)
          setLock({ kind: "lost" })
        } else if (e instanceof KeyUnreachableError) {
          setLock({ kind: "offline" })
        } else {
          setLock({ kind: "error", detail: e instanceof Error ? e.message : String(e) })
        }
      },
    )
    return () => {
      live = false
      void started?.closeDatabase()
    }
  }, [session])
  useIdle(sync?.idleSeconds, () => {
    if (!sync) return
    // Dropping the session closes the client (the effect's cleanup), which saves what is
    // unsaved, then drops the key.
    setSync(undefined)
    setSession(undefined)
    setLock({ kind: "idle", seconds: sync.idleSeconds })
  })
  const login = (s: Session) => {
    setAccount(s)
    setSession(s)
  }
  const role = session?.claims.role
  return (
    <>
      <a class="skip" href="#main">
        {t("app.skip")}
      </a>
      <header class="top">
        <h1>{t("app.title")}</h1>
        {session && (
          <p class="who">
            {session.claims.sub} · {t(`role.${role}` as MessageKey)}
          </p>
        )}
        <div class="actions">
          <button
            type="button"
            lang={currentLang() === "nl" ? "en" : "nl"}
            onClick={() => {
              setLang(currentLang() === "nl" ? "en" : "nl")
              setLangTick(x => x + 1)
            }}
          >
            {t("lang.switch")}
          </button>
          {account && (
            <button
              type="button"
              onClick={async () => {
                if (!confirm(t("logout.confirm"))) return
                await logout(sync, account)
                setSync(undefined)
                setSession(undefined)
                setAccount(undefined)
                setLock({ kind: "start" })
              }}
            >
              {t("logout")}
            </button>
          )}
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        {lock.kind === "lost" && !session && (
          <div class="card" role="alert" data-testid="device-lost">
            <h2>{t("lost.title")}</h2>
            <p>{t("lost.text")}</p>
          </div>
        )}
        {!session && !account && <Login onLogin={login} />}
        {!session && account && <LockScreen lock={lock} account={account} onLogin={login} />}
        {session && !sync && <p role="status">{t("lock.unlocking")}</p>}
        {session && sync && (
          <>
            <SyncBar sync={sync} />
            <Refusals sync={sync} />
            {role === "worker" && <WorkerFace sync={sync} />}
            {role === "resident" && <ResidentFace sync={sync} />}
            {role === "backoffice" && <BackofficeFace sync={sync} />}
            {(role === "manager" || role === "privacy_officer") && <ReportsFace sync={sync} />}
          </>
        )}
      </main>
    </>
  )
}
