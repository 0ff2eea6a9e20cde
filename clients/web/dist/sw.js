// Regie's service worker: caches the app shell (the bundle's files, no data) so the app opens
// without a connection. Dossier data lives in IndexedDB, never here: API and sync requests are
// not intercepted. The build fills in the version and the list of files.
const VERSION = "bb30572798efb0b8"
const SHELL = ["/","/assets/automerge_wasm_bg-LjMxZKTS.wasm","/assets/index-BKOnoNOr.css","/assets/index-Blm1mCed.js","/icon.svg","/manifest.webmanifest"]
const CACHE = `regie-shell-${VERSION}`

self.addEventListener("install", event => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then(cache => cache.addAll(SHELL))
      .then(() => self.skipWaiting()),
  )
})

self.addEventListener("activate", event => {
  event.waitUntil(
    caches
      .keys()
      .then(keys => Promise.all(keys.filter(k => k.startsWith("regie-shell-") && k !== CACHE).map(k => caches.delete(k))))
      .then(() => self.clients.claim()),
  )
})

self.addEventListener("fetch", event => {
  const request = event.request
  if (request.method !== "GET") return
  const url = new URL(request.url)
  if (url.origin !== self.location.origin) return
  if (url.pathname.startsWith("/api/") || url.pathname.startsWith("/sync") || url.pathname.startsWith("/demo/")) return
  if (request.mode === "navigate") {
    // The shell first: the app itself fetches what is new once it is online.
    event.respondWith(caches.match("/", { cacheName: CACHE }).then(hit => hit ?? fetch(request)))
    return
  }
  if (!SHELL.includes(url.pathname)) return
  event.respondWith(caches.match(request, { cacheName: CACHE }).then(hit => hit ?? fetch(request)))
})
