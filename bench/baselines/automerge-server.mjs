// The automerge-repo sync server as @automerge/automerge-repo-sync-server 0.2.8 builds it
// (src/server.js: express, a `ws` WebSocketServer on upgrade, NodeWSServerAdapter,
// NodeFSStorageAdapter, `sharePolicy: false`), on the current automerge-repo 2.x, and bound to
// 127.0.0.1 only (the package listens on every interface and pins automerge-repo 1.x).
// Usage: node automerge-server.mjs DATA_DIR  ->  prints `listening on 127.0.0.1:PORT`.
import fs from "node:fs"
import os from "node:os"
import express from "express"
import { WebSocketServer } from "ws"
import { Repo } from "@automerge/automerge-repo"
import { NodeWSServerAdapter } from "@automerge/automerge-repo-network-websocket"
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs"

const dir = process.argv[2]
if (!dir) {
  console.error("usage: node automerge-server.mjs DATA_DIR")
  process.exit(1)
}
fs.mkdirSync(dir, { recursive: true })

const socket = new WebSocketServer({ noServer: true })
const app = express()
app.get("/", (_req, res) => res.send("automerge-repo sync server is running"))
new Repo({
  network: [new NodeWSServerAdapter(socket)],
  storage: new NodeFSStorageAdapter(dir),
  peerId: `storage-server-${os.hostname()}`,
  // As the package: a server only syncs documents a client asks for by id.
  sharePolicy: async () => false,
})
const server = app.listen(0, "127.0.0.1", () => {
  console.log(`listening on 127.0.0.1:${server.address().port}`)
})
server.on("upgrade", (request, sock, head) => {
  socket.handleUpgrade(request, sock, head, ws => socket.emit("connection", ws, request))
})
process.on("SIGTERM", () => process.exit(0))
