// Vite (pinned in package.json) builds the app into dist/, which is checked in and embedded in
// regie-server. The service worker (src/sw.js) is emitted as /sw.js with the list of the
// bundle's files and a version derived from them, so every build replaces the cached shell.
import { createHash } from "node:crypto"
import { readFileSync, readdirSync } from "node:fs"
import { resolve } from "node:path"

import { defineConfig, type Plugin } from "vite"
import wasm from "vite-plugin-wasm"

function serviceWorker(): Plugin {
  return {
    name: "regie-service-worker",
    apply: "build",
    generateBundle(_options, bundle) {
      const publicFiles = readdirSync(resolve(__dirname, "public"))
      const assets = [...Object.keys(bundle), ...publicFiles]
        .filter(f => f !== "sw.js")
        .map(f => "/" + f)
        .sort()
      const version = createHash("sha256")
      for (const name of Object.keys(bundle).sort()) {
        const out = bundle[name]
        version.update(name)
        version.update(out.type === "chunk" ? out.code : out.source)
      }
      const template = readFileSync(resolve(__dirname, "src/sw.js"), "utf8")
      this.emitFile({
        type: "asset",
        fileName: "sw.js",
        source: template
          .replace("__SHELL_VERSION__", JSON.stringify(version.digest("hex").slice(0, 16)))
          .replace("__SHELL_ASSETS__", JSON.stringify(["/", ...assets.filter(a => a !== "/index.html")])),
      })
    },
  }
}

export default defineConfig({
  plugins: [wasm(), serviceWorker()],
  build: {
    target: "esnext",
    outDir: "dist",
    emptyOutDir: true,
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 4096,
    sourcemap: false,
  },
  resolve: {
    // The client's TypeScript sources, so the app needs no separate `tsc` step for it.
    alias: { "@regie/client/browser": resolve(__dirname, "../js/src/browser.ts") },
  },
})
