// The baselines' devices for the side-by-side benchmark (tests/benches/baselines.rs drives
// this process): automerge-repo clients against the automerge-repo sync server, or PouchDB
// databases replicating with a CouchDB-protocol server, doing the same workloads as Gridlink's
// phones on the same documents.
//
// Usage: node device.mjs automerge|pouchdb SERVER_URL WORK_DIR DOCS_JSON WORKLOAD_JSON
// The driver writes one JSON command a line on stdin and reads one JSON answer a line on
// stdout (`{"ok":true,...}` or `{"ok":false,"error":"..."}`); progress goes to stderr.
// Commands: seed, urls {path} (automerge: the URLs another process seeded), first, day {day},
// setup {devices}, cycles {devices, cycles}, close.
// Bytes on the wire are counted by the driver's proxy in front of the server; this process
// counts WebSocket messages (automerge) and times each workload from its start to the moment
// the server is known to hold every change (automerge: the server's heads reported back for
// every document equal the device's; PouchDB: the one-shot sync has resolved).
import fs from "node:fs"
import path from "node:path"
import readline from "node:readline"
import { randomUUID } from "node:crypto"

const [system, serverUrl, workDir, docsPath, workloadPath] = process.argv.slice(2)
if (!["automerge", "pouchdb"].includes(system) || !serverUrl || !workDir || !docsPath || !workloadPath) {
  console.error("usage: node device.mjs automerge|pouchdb SERVER_URL WORK_DIR DOCS_JSON WORKLOAD_JSON")
  process.exit(1)
}
fs.mkdirSync(workDir, { recursive: true })
// [{ id, type: "household" | "case", doc }], the grid exported from Gridlink's demo.
const docs = JSON.parse(fs.readFileSync(docsPath, "utf8"))
// { day_households, day_cases, cycle_households, visitor_id, visitor_name, day_visits, day_actions }
const workload = JSON.parse(fs.readFileSync(workloadPath, "utf8"))

const log = message => process.stderr.write(`[${system}] ${message}\n`)
const now = () => Number(process.hrtime.bigint()) / 1e6
/** This process's CPU time (user + system) since `since`, in milliseconds. */
const cpuMs = since => {
  const used = process.cpuUsage(since)
  return (used.user + used.system) / 1000
}

// ----- the documents' edits, the same in both systems ------------------------------------------

function newVisit(i, at) {
  const id = randomUUID()
  const outcomes = ["met", "not-home", "met"]
  return {
    id,
    visitor: workload.visitor_id,
    visitor_name: workload.visitor_name,
    at: at - 60000,
    recorded_at: at,
    outcome: outcomes[i % outcomes.length],
    notes: `入户走访第${i}次：老人身体状况良好，提醒注意用电安全`,
    needs_found: [],
    follow_up: null,
    residents_present: [],
  }
}

function newAction(i, at) {
  const id = randomUUID()
  return {
    id,
    kind: "comment",
    by: workload.visitor_id,
    by_name: workload.visitor_name,
    at,
    lamport: 1000 + i,
    note: `第${i}次电话回访，住户表示满意`,
    satisfaction: null,
    to: null,
    to_name: null,
    claimant: null,
    outlet: null,
  }
}

// ----- automerge-repo ----------------------------------------------------------------------------

let am // the modules, loaded on first use
async function automerge() {
  if (!am) {
    const repo = await import("@automerge/automerge-repo")
    const ws = await import("@automerge/automerge-repo-network-websocket")
    const fsStore = await import("@automerge/automerge-repo-storage-nodefs")
    am = { ...repo, ...ws, ...fsStore }
  }
  return am
}

const wsUrl = serverUrl.replace(/^http/, "ws")

/** A client adapter whose messages are counted (sent and received). */
function countedAdapter(counts) {
  const adapter = new am.WebSocketClientAdapter(wsUrl, 1000)
  const send = adapter.send.bind(adapter)
  adapter.send = message => {
    counts.sent += 1
    return send(message)
  }
  adapter.on("message", () => {
    counts.received += 1
  })
  return adapter
}

/** A device: a Repo with its own storage folder, online or not. */
async function amRepo(dir, counts, online) {
  await automerge()
  return new am.Repo({
    storage: new am.NodeFSStorageAdapter(dir),
    network: online ? [countedAdapter(counts)] : [],
  })
}

async function serverStorageId(repo) {
  const deadline = now() + 30000
  for (;;) {
    const found = Object.values(repo.peerMetadataByPeerId).find(m => m && m.storageId)
    if (found) return found.storageId
    if (now() > deadline) throw new Error("the automerge sync server never announced its storage id")
    await new Promise(r => setTimeout(r, 2))
  }
}

const sameHeads = (a, b) => a && b && a.length === b.length && a.every((h, i) => h === b[i])

/** Resolves when the server has reported heads equal to the handle's current heads. */
function serverHas(handle, storageId) {
  const heads = handle.heads()
  if (sameHeads(handle.getSyncInfo(storageId)?.lastHeads, heads)) return Promise.resolve()
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server never acknowledged ${handle.url}`)), 120000)
    const listener = ({ storageId: id, heads: theirs }) => {
      if (id === storageId && sameHeads(theirs, handle.heads())) {
        clearTimeout(timer)
        handle.off("remote-heads", listener)
        resolve()
      }
    }
    handle.on("remote-heads", listener)
  })
}

const amState = { urls: null, device: path.join(workDir, "automerge-device"), devices: [] }

async function amSeed() {
  const counts = { sent: 0, received: 0 }
  const repo = await amRepo(path.join(workDir, "automerge-seed"), counts, true)
  const storageId = await serverStorageId(repo)
  const handles = docs.map(d => repo.create(d.doc))
  await Promise.all(handles.map(h => serverHas(h, storageId)))
  amState.urls = Object.fromEntries(docs.map((d, i) => [d.id, handles[i].url]))
  await repo.shutdown()
  // For the link-profile devices, another process on the same server.
  const urls = path.join(workDir, "automerge-urls.json")
  fs.writeFileSync(urls, JSON.stringify(amState.urls))
  return { docs: handles.length, urls }
}

async function amFirst() {
  const counts = { sent: 0, received: 0 }
  const started = now()
  const repo = await amRepo(amState.device, counts, true)
  // Connected first: a find with no peer yet answers "unavailable".
  await serverStorageId(repo)
  // automerge-repo has no discovery: the device is handed every document's URL.
  const handles = await Promise.all(docs.map(d => repo.find(amState.urls[d.id])))
  await repo.flush()
  const wall = now() - started
  await repo.shutdown()
  return { wall_ms: wall, docs: handles.length, messages_up: counts.sent, messages_down: counts.received }
}

async function amDay(day) {
  // Reopen the device offline, load every document it holds, edit, then connect.
  const counts = { sent: 0, received: 0 }
  const repo = await amRepo(amState.device, counts, false)
  const handles = new Map()
  for (const d of docs) handles.set(d.id, await repo.find(amState.urls[d.id]))
  const at = Date.now()
  workload.day_households.forEach((id, i) => {
    const visit = newVisit(day * 100 + i, at)
    handles.get(id).change(doc => {
      doc.visits[visit.id] = visit
    })
  })
  workload.day_cases.forEach((id, i) => {
    const action = newAction(day * 100 + i, at)
    handles.get(id).change(doc => {
      doc.timeline[action.id] = action
    })
  })
  await repo.flush()
  const started = now()
  const cpu = process.cpuUsage()
  repo.networkSubsystem.addNetworkAdapter(countedAdapter(counts))
  const storageId = await serverStorageId(repo)
  // Every document it holds: the device cannot know which changed on the server.
  await Promise.all([...handles.values()].map(h => serverHas(h, storageId)))
  const wall = now() - started
  const device_cpu_ms = cpuMs(cpu)
  await repo.shutdown()
  return { wall_ms: wall, device_cpu_ms, messages_up: counts.sent, messages_down: counts.received }
}

async function amSetup(n) {
  await amClose()
  // Each device holds the documents its group of GROUP devices edits, so it receives those
  // devices' changes live, as Gridlink's and PouchDB's devices pull the changes of their grid.
  // Not all n: with 80 devices, 80 x 80 first syncs of a document take minutes here, so with
  // 80 an automerge-repo device receives 7 others' changes where the others receive 79.
  const GROUP = 8
  const setupOne = async i => {
    const counts = { sent: 0, received: 0 }
    const repo = await amRepo(path.join(workDir, `automerge-cycle-${n}-${i}`), counts, true)
    const storageId = await serverStorageId(repo)
    const group = Math.floor(i / GROUP) * GROUP
    const ids = workload.cycle_households.slice(group, Math.min(group + GROUP, n))
    const handles = await Promise.all(ids.map(id => repo.find(amState.urls[id])))
    return { repo, handle: handles[i - group], counts, storageId }
  }
  for (let i = 0; i < n; i += GROUP) {
    const batch = []
    for (let k = i; k < Math.min(i + GROUP, n); k++) batch.push(setupOne(k))
    amState.devices.push(...(await Promise.all(batch)))
  }
  return { devices: n }
}

async function amCycles(n, cycles) {
  const devices = amState.devices.slice(0, n)
  for (const d of devices) d.counts.sent = d.counts.received = 0
  const latencies = []
  const started = now()
  await Promise.all(
    devices.map(async (d, k) => {
      for (let c = 0; c < cycles; c++) {
        const t = now()
        const visit = newVisit(k * 1000 + c, Date.now())
        d.handle.change(doc => {
          doc.visits[visit.id] = visit
        })
        await serverHas(d.handle, d.storageId)
        latencies.push(now() - t)
      }
    }),
  )
  const wall = now() - started
  const sum = f => devices.reduce((s, d) => s + d.counts[f], 0)
  return { wall_ms: wall, latencies_ms: latencies, messages_up: sum("sent"), messages_down: sum("received") }
}

async function amClose() {
  for (const d of amState.devices) await d.repo.shutdown()
  amState.devices = []
}

// ----- PouchDB -------------------------------------------------------------------------------------

let PouchDB
async function pouch() {
  if (!PouchDB) PouchDB = (await import("pouchdb")).default
  return PouchDB
}
const remoteDb = () => new PouchDB(`${serverUrl}/grid`)
const pdState = { device: null, devices: [] }

async function pdSeed() {
  await pouch()
  const remote = remoteDb()
  for (let i = 0; i < docs.length; i += 100) {
    const batch = docs.slice(i, i + 100).map(d => ({ _id: d.id, ...d.doc }))
    const results = await remote.bulkDocs(batch)
    const failed = results.find(r => r.error)
    if (failed) throw new Error(`seeding ${failed.id}: ${failed.message || failed.error}`)
  }
  return { docs: docs.length }
}

async function pdFirst() {
  await pouch()
  const started = now()
  const local = new PouchDB(path.join(workDir, "pouchdb-device"))
  const result = await local.sync(remoteDb())
  const info = await local.info()
  const wall = now() - started
  pdState.device = local
  return { wall_ms: wall, docs: info.doc_count, pulled: result.pull.docs_written }
}

async function pdDay(day) {
  const local = pdState.device
  const at = Date.now()
  for (const [i, id] of workload.day_households.entries()) {
    const doc = await local.get(id)
    const visit = newVisit(day * 100 + i, at)
    doc.visits[visit.id] = visit
    await local.put(doc)
  }
  for (const [i, id] of workload.day_cases.entries()) {
    const doc = await local.get(id)
    const action = newAction(day * 100 + i, at)
    doc.timeline[action.id] = action
    await local.put(doc)
  }
  const started = now()
  const cpu = process.cpuUsage()
  const result = await local.sync(remoteDb())
  const wall = now() - started
  return {
    wall_ms: wall,
    device_cpu_ms: cpuMs(cpu),
    pushed: result.push.docs_written,
    pulled: result.pull.docs_written,
  }
}

async function pdSetup(n) {
  await pdClose()
  await pouch()
  // Each device's first sync of the grid; not measured (the first-sync workload measures it).
  const devices = []
  for (let i = 0; i < n; i++) {
    devices.push({ local: new PouchDB(path.join(workDir, `pouchdb-cycle-${n}-${i}`)), remote: remoteDb() })
  }
  for (let i = 0; i < n; i += 8) {
    await Promise.all(devices.slice(i, i + 8).map(d => d.local.sync(d.remote)))
  }
  pdState.devices = devices
  return { devices: n }
}

async function pdCycles(n, cycles) {
  const devices = pdState.devices.slice(0, n)
  const latencies = []
  const started = now()
  await Promise.all(
    devices.map(async (d, k) => {
      const id = workload.cycle_households[k % workload.cycle_households.length]
      for (let c = 0; c < cycles; c++) {
        const t = now()
        const doc = await d.local.get(id)
        const visit = newVisit(k * 1000 + c, Date.now())
        doc.visits[visit.id] = visit
        await d.local.put(doc)
        await d.local.sync(d.remote)
        latencies.push(now() - t)
      }
    }),
  )
  return { wall_ms: now() - started, latencies_ms: latencies }
}

async function pdClose() {
  for (const d of pdState.devices) await d.local.close()
  pdState.devices = []
}

// ----- the command loop ----------------------------------------------------------------------------

const commands =
  system === "automerge"
    ? {
        seed: () => amSeed(),
        urls: c => {
          amState.urls = JSON.parse(fs.readFileSync(c.path, "utf8"))
          return {}
        },
        first: () => amFirst(),
        day: c => amDay(c.day),
        setup: c => amSetup(c.devices),
        cycles: c => amCycles(c.devices, c.cycles),
        close: () => amClose(),
      }
    : {
        seed: () => pdSeed(),
        urls: () => ({}),
        first: () => pdFirst(),
        day: c => pdDay(c.day),
        setup: c => pdSetup(c.devices),
        cycles: c => pdCycles(c.devices, c.cycles),
        close: async () => {
          await pdClose()
          if (pdState.device) await pdState.device.close()
        },
      }

// An error thrown outside any promise (automerge-repo's WebSocket client throws a reset
// connection from its event handler) fails the command running, so the driver can report it.
// A connection reset (the sync server's keep-alive drops a client that has not answered its
// ping within 5 s, as under load here) is survived: the adapter reconnects and the sync goes
// on; each is counted in the answers (`resets`).
let failCurrent = null
let resets = 0
process.on("uncaughtException", error => {
  if (error && error.code === "ECONNRESET") {
    resets += 1
    log(`connection reset (${resets} so far); the client reconnects`)
  } else if (failCurrent) failCurrent(error)
  else {
    log(`uncaught: ${error && error.stack ? error.stack : error}`)
    process.exit(1)
  }
})

const lines = readline.createInterface({ input: process.stdin })
for await (const line of lines) {
  if (!line.trim()) continue
  let answer
  try {
    const command = JSON.parse(line)
    const run = commands[command.cmd]
    if (!run) throw new Error(`unknown command ${JSON.stringify(command.cmd)}`)
    log(`${command.cmd} ${JSON.stringify(command)}`)
    // Bounded: no command of the benchmark takes minutes unless something is stuck.
    let timer
    const failed = new Promise((_, reject) => {
      failCurrent = reject
      timer = setTimeout(() => reject(new Error(`${command.cmd} did not finish within 180 s`)), 180000)
    })
    failed.catch(() => {}).finally(() => clearTimeout(timer))
    try {
      const before = resets
      answer = { ok: true, ...(await Promise.race([run(command), failed])) }
      if (resets > before) answer.resets = resets - before
    } finally {
      clearTimeout(timer)
    }
    failCurrent = null
    if (command.cmd === "close") {
      process.stdout.write(JSON.stringify(answer) + "\n")
      process.exit(0)
    }
  } catch (error) {
    failCurrent = null
    answer = { ok: false, error: String(error && error.stack ? error.stack : error) }
  }
  process.stdout.write(JSON.stringify(answer) + "\n")
}
process.exit(0)
