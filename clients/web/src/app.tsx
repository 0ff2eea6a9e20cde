// The shell: login (demo users in `regie-server demo`, otherwise a pasted token), then the face
// of the logged-in role, with the sync state and refused edits above it.
import { useEffect, useState } from "preact/hooks"

import { BackofficeFace, ReportsFace } from "./desk"
import { currentLang, setLang, t, type MessageKey } from "./i18n"
import { ResidentFace } from "./resident"
import { Sync, logout, newSession, storedSession, type Session } from "./session"
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

export function App() {
  const [session, setSession] = useState<Session | undefined>(storedSession())
  const [sync, setSync] = useState<Sync>()
  const [, setLangTick] = useState(0)
  useEffect(() => {
    if (!session) return
    let live = true
    let started: Sync | undefined
    void Sync.start(session).then(s => {
      started = s
      if (live) setSync(s)
      else void s.close()
    })
    return () => {
      live = false
      void started?.close()
    }
  }, [session])
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
          {session && (
            <button
              type="button"
              onClick={async () => {
                if (!confirm(t("logout.confirm"))) return
                await logout(sync, session)
                setSync(undefined)
                setSession(undefined)
              }}
            >
              {t("logout")}
            </button>
          )}
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        {!session && <Login onLogin={setSession} />}
        {session && !sync && <p>{t("caseload.loading")}</p>}
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
