// The hash of the sources the bundle is built from (bundle-sources.json): sha256 over each file,
// in byte order of its repository-relative path, as `path NUL length NUL bytes`.
// `--write dist` records it in dist/build-info.json after `vite build`; `--check dist` fails when
// the recorded hash differs. server/tests/web_app.rs computes the same hash in Rust.
import { createHash } from "node:crypto"
import { readFileSync, readdirSync, statSync, writeFileSync } from "node:fs"
import { join, relative, resolve } from "node:path"

const root = resolve(import.meta.dirname, "../../..")
const web = resolve(import.meta.dirname, "..")

function walk(dir) {
  return readdirSync(dir).flatMap(name => {
    const p = join(dir, name)
    return statSync(p).isDirectory() ? walk(p) : [p]
  })
}

export function sourceHash() {
  const spec = JSON.parse(readFileSync(join(web, "bundle-sources.json"), "utf8"))
  const files = [
    ...spec.dirs.flatMap(d => walk(join(root, d))),
    ...spec.files.map(f => join(root, f)),
  ].map(p => relative(root, p).split("\\").join("/"))
  files.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
  const h = createHash("sha256")
  for (const f of files) {
    const bytes = readFileSync(join(root, f))
    h.update(`${f}\0${bytes.length}\0`)
    h.update(bytes)
  }
  return { sources_sha256: h.digest("hex"), files: files.length }
}

const [mode, dir] = process.argv.slice(2)
if (mode === "--write") {
  const info = sourceHash()
  writeFileSync(join(web, dir, "build-info.json"), JSON.stringify(info, null, 2) + "\n")
  console.log(`build-info.json: ${info.files} source files, sha256 ${info.sources_sha256}`)
} else if (mode === "--check") {
  const recorded = JSON.parse(readFileSync(join(web, dir, "build-info.json"), "utf8"))
  const now = sourceHash()
  if (recorded.sources_sha256 !== now.sources_sha256) {
    console.error("clients/web/dist is older than its sources: run `npm run build -w @regie/web`")
    process.exit(1)
  }
  console.log("clients/web/dist matches its sources")
}
