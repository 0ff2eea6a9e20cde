// Preload for the published @automerge/automerge-repo-sync-server, which calls
// `app.listen(PORT)` without a host and so would bind every interface. This forces every
// http.Server onto 127.0.0.1 and prints the port it really got (PORT=0 picks a free one), in
// the form regie-load waits for. Used as: node --import ./loopback.mjs <server>/src/index.js
import http from "node:http"

const listen = http.Server.prototype.listen
http.Server.prototype.listen = function (...args) {
  const first = args[0]
  const port = typeof first === "object" && first !== null ? Number(first.port ?? 0) : Number(first ?? 0)
  const callback = args.find((a) => typeof a === "function")
  this.once("listening", () => {
    const a = this.address()
    console.log(`regie-bench-js listening on http://${a.address}:${a.port}`)
  })
  return listen.call(this, { port: Number.isFinite(port) ? port : 0, host: "127.0.0.1" }, callback)
}
