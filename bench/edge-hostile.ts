// Figures for the edge's robustness (issue 10), not part of npm test:
//   1. how long after a kill -9 of the target, under load, its breaker opens — with the
//      consecutive-failure rule (BREAKER_CONSECUTIVE_FAILURES=5) and without it (=0);
//   2. the proxy's RSS while a 200 MB download goes to a slow client (~20 MB/s).
// Usage: node bench/edge-hostile.ts. Everything on 127.0.0.1; every process is stopped by its handle.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Agent, request } from 'undici'
import { freePort } from '../dev/free-port.ts'
import { REPO_ROOT } from '../dev/paths.ts'
import { waitForHttp } from '../dev/wait-for-http.ts'

const children: ChildProcess[] = []
const work = mkdtempSync(join(tmpdir(), 'edge-hostile-'))

function node(args: string[], env: Record<string, string> = {}): ChildProcess {
  const child = spawn(process.execPath, [...args], { cwd: REPO_ROOT, env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'error', ...env }, stdio: 'ignore' })
  children.push(child)
  return child
}
async function stub(name: string): Promise<{ child: ChildProcess; url: string }> {
  const port = await freePort()
  const child = node(['bench/upstream-stub.ts', String(port), name])
  const url = `http://127.0.0.1:${port}`
  await waitForHttp(`${url}/health`)
  return { child, url }
}
async function proxy(env: Record<string, string>): Promise<{ child: ChildProcess; url: string; opsUrl: string }> {
  const port = await freePort()
  const opsPort = await freePort()
  const flags = JSON.parse(readFileSync(join(REPO_ROOT, 'flags/flags.json'), 'utf8'))
  flags.featureStrategies[0].parameters.rollout = '100'
  const flagsFile = join(work, `flags-${port}.json`)
  writeFileSync(flagsFile, JSON.stringify(flags))
  const child = node(['proxy/server.ts'], { PORT: String(port), HOST: '127.0.0.1', ADMIN_PORT: String(opsPort), FLAGS_FILE: flagsFile, RATE_LIMIT_MAX: '0', ...env })
  const url = `http://127.0.0.1:${port}`
  await waitForHttp(`${url}/ready`)
  // /metrics is on the operators' listener.
  return { child, url, opsUrl: `http://127.0.0.1:${opsPort}` }
}
const stop = async (child: ChildProcess) => {
  if (child.exitCode !== null || child.signalCode !== null) return
  child.kill('SIGTERM')
  await new Promise((r) => child.once('exit', r))
}

async function breakerOpenAfterKill(consecutive: string): Promise<number> {
  const [monolith, movies, events] = await Promise.all([stub('monolith'), stub('movies-service'), stub('events-service')])
  const edge = await proxy({ MONOLITH_URL: monolith.url, MOVIES_SERVICE_URL: movies.url, EVENTS_SERVICE_URL: events.url, BREAKER_CONSECUTIVE_FAILURES: consecutive })
  const agent = new Agent({ connections: 8 })
  let running = true
  let sent = 0
  const client = async () => {
    while (running && sent < 200_000) {
      sent++
      const res = await request(`${edge.url}/api/movies`, { headers: { 'x-user-id': `u${sent}` }, dispatcher: agent })
      await res.body.dump()
    }
  }
  const load = Promise.all(Array.from({ length: 8 }, client))
  await new Promise((r) => setTimeout(r, 3_000))
  const before = sent
  const killedAt = Date.now()
  movies.child.kill('SIGKILL')
  let openMs = -1
  while (Date.now() - killedAt < 30_000) {
    const text = await (await request(`${edge.opsUrl}/metrics`)).body.text()
    if (/^proxy_breaker_state\{upstream="movies-service"\} 2$/m.test(text)) {
      openMs = Date.now() - killedAt
      break
    }
    await new Promise((r) => setTimeout(r, 5))
  }
  running = false
  await load
  console.log(`BREAKER_CONSECUTIVE_FAILURES=${consecutive}: breaker open ${openMs} ms after kill -9 (load ${Math.round(before / 3)} req/s before the kill, 8 clients)`)
  await agent.close()
  for (const c of [edge.child, monolith.child, events.child]) await stop(c)
  return openMs
}

function rssMb(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'))!
  return Math.round(Number(line.split(/\s+/)[1]) / 1024)
}

async function slowDownload(): Promise<void> {
  const [monolith, movies, events] = await Promise.all([stub('monolith'), stub('movies-service'), stub('events-service')])
  const edge = await proxy({ MONOLITH_URL: monolith.url, MOVIES_SERVICE_URL: movies.url, EVENTS_SERVICE_URL: events.url })
  const idle = rssMb(edge.child.pid!)
  let peak = idle
  const sampler = setInterval(() => (peak = Math.max(peak, rssMb(edge.child.pid!))), 100)
  const started = Date.now()
  const res = await request(`${edge.url}/api/movies/download?mb=200`, { headers: { 'x-user-id': 'slow' }, bodyTimeout: 0 })
  let received = 0
  // A slow client: reads 1 MB, then waits 50 ms (about 20 MB/s).
  for await (const chunk of res.body) {
    const before = received
    received += (chunk as Buffer).length
    if (Math.floor(received / 1_048_576) !== Math.floor(before / 1_048_576)) await new Promise((r) => setTimeout(r, 50))
  }
  clearInterval(sampler)
  console.log(`slow 200 MB download: ${Math.round(received / 1_048_576)} MB in ${((Date.now() - started) / 1000).toFixed(1)} s; proxy RSS ${idle} MB idle, peak ${peak} MB during the download`)
  for (const c of [edge.child, monolith.child, movies.child, events.child]) await stop(c)
}

try {
  for (const consecutive of ['5', '0']) await breakerOpenAfterKill(consecutive)
  await slowDownload()
} finally {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
}
