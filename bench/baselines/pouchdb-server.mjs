// A CouchDB-protocol server for PouchDB's replication: express-pouchdb (the core of
// pouchdb-server) over PouchDB's LevelDB adapter in DATA_DIR, bound to 127.0.0.1 only.
// `minimumForPouchDB` mode: the routes replication needs (no Fauxton, no _users, no logs).
// Usage: node pouchdb-server.mjs DATA_DIR  ->  prints `listening on 127.0.0.1:PORT`.
import fs from "node:fs"
import path from "node:path"
import PouchDB from "pouchdb"
import expressPouchDB from "express-pouchdb"

const dir = process.argv[2]
if (!dir) {
  console.error("usage: node pouchdb-server.mjs DATA_DIR")
  process.exit(1)
}
fs.mkdirSync(dir, { recursive: true })
const ServerPouch = PouchDB.defaults({ prefix: path.resolve(dir) + path.sep })
const app = expressPouchDB(ServerPouch, {
  mode: "minimumForPouchDB",
  inMemoryConfig: true,
  configPath: path.join(dir, "config.json"),
  logPath: path.join(dir, "log.txt"),
})
const server = app.listen(0, "127.0.0.1", () => {
  console.log(`listening on 127.0.0.1:${server.address().port}`)
})
process.on("SIGTERM", () => process.exit(0))
