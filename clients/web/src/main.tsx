import { render } from "preact"

import { App } from "./app"
import { currentLang } from "./i18n"
import { finishDeletions } from "./session"
import "./styles.css"

document.documentElement.lang = currentLang()
if ("serviceWorker" in navigator && location.protocol !== "file:") {
  // The app shell opens offline from the service worker's cache (src/sw.js).
  navigator.serviceWorker.register("/sw.js").catch(() => {})
}
void finishDeletions().then(() => render(<App />, document.getElementById("app")!))
