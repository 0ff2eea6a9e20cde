// `@regie/client`: Regie's TypeScript client on automerge-repo. Storage and WebSocket are
// parameters here; `@regie/client/node` and `@regie/client/browser` fill them in.

export {
  RegieClient,
  RegieDocument,
  WriteRefusedError,
  documentIdOf,
  type PurgedEvent,
  type ReadsUploadedEvent,
  type RegieClientEvents,
  type RegieClientOptions,
  type RegieDocumentEvents,
  type RejectedEvent,
  type ReplacedEvent,
  type RevokedEvent,
} from "./client.js"
export {
  RegieNetworkAdapter,
  SYNC_SUBPROTOCOL,
  TOKEN_SUBPROTOCOL_PREFIX,
  UnauthorizedError,
  type Backoff,
  type RegieMessage,
  type TokenCallback,
  type TokenReason,
  type WebSocketFactory,
  type WebSocketLike,
} from "./network.js"
export { patchPath, pattern, refusedEdits, type PathRule, type RefusedEdit, type WriteRules } from "./rules.js"
export type { CaseloadEntry, OfflineRead } from "./store.js"
export type * from "./schema.generated.js"
