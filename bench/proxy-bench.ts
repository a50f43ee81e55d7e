// npm run bench: requests/s and latency of the proxy with every feature on, against nginx
// (split_clients) as the reference and the upstream called directly. Not part of npm test.
//
//   BENCH_DURATION_S (default 8)   length of each measured run
//   BENCH_REPS       (default 3)   repetitions; the three targets alternate within each
//   BENCH_CONNECTIONS (default 50)
//   BENCH_NGINX_WORKERS (default 1: one process, like the proxy)
//   BENCH_SHADOW=1    adds "shadow": a second proxy with shadow comparison at 100 % on the movies
//                     route (every request also copied to the other side and compared), alternated
//                     with the others; BENCH_ONLY=proxy,shadow measures just those two
//
// Everything runs on 127.0.0.1; every process started here is stopped by its handle at the end.
import autocannon from 'autocannon'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from '../dev/free-port.ts'
import { REPO_ROOT } from '../dev/paths.ts'
import { waitForHttp } from '../dev/wait-for-http.ts'

const DURATION = Number(process.env.BENCH_DURATION_S ?? 8)
const REPS = Number(process.env.BENCH_REPS ?? 3)
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50)
const NGINX_WORKERS = Number(process.env.BENCH_NGINX_WORKERS ?? 1)
const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx', '/usr/local/sbin/nginx'].find((p) => existsSync(p))
const ROLLOUT = 30
const SHADOW = process.env.BENCH_SHADOW === '1'
const ONLY = process.env.BENCH_ONLY?.split(',').map((s) => s.trim())
const ADMIN_TOKEN = 'bench-admin-token-0123456789'

const work = mkdtempSync(join(tmpdir(), 'proxy-bench-'))
const children: ChildProcess[] = []
let nginxPid: number | undefined

function start(args: string[], env: Record<string, string>, logFile: string): ChildProcess {
  const out = openSync(logFile, 'a')
  const child = spawn(process.execPath, args, { cwd: REPO_ROOT, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', out, out] })
  children.push(child)
  return child
}

function cleanup(): void {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
  if (nginxPid) {
    try {
      process.kill(nginxPid, 'SIGQUIT')
    } catch {}
    nginxPid = undefined
  }
}
process.on('exit', cleanup)
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130))

interface Run {
  rps: number
  p50: number
  p99: number
  errors: number
  non2xx: number
  total: number
  /** CPU time of the measured process per request (ms), when it is one of ours: robust on a busy machine, where req/s is not. */
  cpuMsPerRequest?: number
}

/** user + system CPU time of a process so far, in ms (Linux /proc; undefined elsewhere). */
function cpuMs(pid: number | undefined): number | undefined {
  if (!pid) return undefined
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100 // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return undefined
  }
}

const userIds = Array.from({ length: 10_000 }, (_, i) => `user-${i}`)

async function measure(url: string, seconds: number): Promise<Run> {
  let n = 0
  const result = await autocannon({
    url,
    connections: CONNECTIONS,
    duration: seconds,
    requests: [
      {
        method: 'GET',
        path: '/api/movies',
        // A different user per request: the proxy evaluates the flag for each, nginx hashes the header.
        setupRequest: (req: Record<string, unknown>) => ({ ...req, headers: { 'x-user-id': userIds[n++ % userIds.length] } }),
      },
    ],
  })
  return { rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, errors: result.errors + result.timeouts, non2xx: result.non2xx, total: result.requests.total }
}

function nginxConfig(port: number, monolith: number, movies: number): string {
  return `worker_processes ${NGINX_WORKERS};
daemon on;
pid ${work}/nginx.pid;
error_log ${work}/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log ${work}/nginx-access.log;
  client_body_temp_path ${work}/body; proxy_temp_path ${work}/proxy; fastcgi_temp_path ${work}/fastcgi;
  uwsgi_temp_path ${work}/uwsgi; scgi_temp_path ${work}/scgi;
  upstream monolith { server 127.0.0.1:${monolith}; keepalive 128; }
  upstream movies { server 127.0.0.1:${movies}; keepalive 128; }
  split_clients "\${http_x_user_id}" $backend { ${ROLLOUT}% movies; * monolith; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://$backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      add_header x-upstream $backend;
    }
  }
}
`
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

async function main(): Promise<void> {
  const [monolithPort, moviesPort, proxyPort, nginxPort] = [await freePort(), await freePort(), await freePort(), await freePort()]
  start(['--import', 'tsx', 'bench/upstream-stub.ts', String(monolithPort), 'monolith'], {}, join(work, 'monolith.log'))
  start(['--import', 'tsx', 'bench/upstream-stub.ts', String(moviesPort), 'movies-service'], {}, join(work, 'movies.log'))
  const flagsFile = join(work, 'flags.json')
  const flags = JSON.parse(readFileSync(join(REPO_ROOT, 'flags/flags.json'), 'utf8'))
  flags.featureStrategies[0].parameters.rollout = String(ROLLOUT)
  writeFileSync(flagsFile, JSON.stringify(flags))
  const accessLog = join(work, 'proxy-access.log')
  const startProxy = (port: number, env: Record<string, string>, log: string) =>
    start(
      ['--import', 'tsx', 'proxy/server.ts'],
      {
        PORT: String(port),
        HOST: '127.0.0.1',
        LOG_LEVEL: 'info',
        MONOLITH_URL: `http://127.0.0.1:${monolithPort}`,
        MOVIES_SERVICE_URL: `http://127.0.0.1:${moviesPort}`,
        EVENTS_SERVICE_URL: `http://127.0.0.1:${monolithPort}`,
        FLAGS_FILE: flagsFile,
        ADMIN_TOKEN,
        RATE_LIMIT_MAX: '1000000000',
        ...env,
      },
      log,
    )
  const proxyPid = startProxy(proxyPort, {}, accessLog).pid
  const shadowPort = await freePort()
  let shadowPid: number | undefined
  if (SHADOW) {
    // The shipped route map with the movies route shadowed at 100 %; the two bench stubs differ
    // only in the "upstream" field they name, declared noise, so the copies compare as matches.
    const routes = JSON.parse(readFileSync(join(REPO_ROOT, 'proxy/routes.json'), 'utf8'))
    routes.routes.find((r: { name: string }) => r.name === 'movies').shadow = { percent: 100, ignore: ['$.upstream'] }
    writeFileSync(join(work, 'routes-shadow.json'), JSON.stringify(routes))
    shadowPid = startProxy(shadowPort, { ROUTES_FILE: join(work, 'routes-shadow.json') }, join(work, 'proxy-shadow-access.log')).pid
  }
  await waitForHttp(`http://127.0.0.1:${monolithPort}/`)
  await waitForHttp(`http://127.0.0.1:${moviesPort}/`)
  await waitForHttp(`http://127.0.0.1:${proxyPort}/ready`)
  if (SHADOW) await waitForHttp(`http://127.0.0.1:${shadowPort}/ready`)

  let targets: Array<{ name: string; url: string; pid?: number }> = [
    { name: 'proxy', url: `http://127.0.0.1:${proxyPort}`, pid: proxyPid },
    { name: 'direct', url: `http://127.0.0.1:${monolithPort}` },
  ]
  if (SHADOW) targets.push({ name: 'shadow', url: `http://127.0.0.1:${shadowPort}`, pid: shadowPid })
  if (NGINX && (!ONLY || ONLY.includes('nginx'))) {
    const conf = join(work, 'nginx.conf')
    writeFileSync(conf, nginxConfig(nginxPort, monolithPort, moviesPort))
    const started = spawnSync(NGINX, ['-p', work, '-c', conf], { encoding: 'utf8', timeout: 10_000 })
    if (started.status !== 0) throw new Error(`nginx did not start: ${started.stderr}`)
    nginxPid = Number(readFileSync(join(work, 'nginx.pid'), 'utf8'))
    await waitForHttp(`http://127.0.0.1:${nginxPort}/`)
    targets.unshift({ name: 'nginx', url: `http://127.0.0.1:${nginxPort}` })
  } else {
    console.log('nginx not found: measuring the proxy against the direct upstream only')
  }

  if (ONLY) targets = targets.filter((t) => ONLY.includes(t.name))
  console.log(`${CONNECTIONS} connections, ${DURATION} s per run, ${REPS} repetitions, rollout ${ROLLOUT} % by X-User-Id (10,000 users)`)
  for (const t of targets) await measure(t.url, 2) // warm-up (JIT, keep-alive pools)

  const runs: Record<string, Run[]> = Object.fromEntries(targets.map((t) => [t.name, []]))
  for (let rep = 0; rep < REPS; rep++) {
    // Rotate the order so no target always runs first (or right after another one).
    const order = targets.map((_, i) => targets[(i + rep) % targets.length])
    for (const t of order) {
      const cpuBefore = cpuMs(t.pid)
      const run = await measure(t.url, DURATION)
      const cpuAfter = cpuMs(t.pid)
      if (cpuBefore !== undefined && cpuAfter !== undefined && run.total) run.cpuMsPerRequest = (cpuAfter - cpuBefore) / run.total
      runs[t.name].push(run)
      console.log(`  rep ${rep + 1} ${t.name.padEnd(6)} ${Math.round(run.rps).toString().padStart(6)} req/s  p50 ${run.p50} ms  p99 ${run.p99} ms${run.cpuMsPerRequest ? `  cpu ${run.cpuMsPerRequest.toFixed(3)} ms/req` : ''}${run.errors || run.non2xx ? `  errors ${run.errors} non-2xx ${run.non2xx}` : ''}`)
    }
  }

  const summary = Object.fromEntries(
    targets.map((t) => {
      const cpu = runs[t.name].flatMap((r) => (r.cpuMsPerRequest === undefined ? [] : [r.cpuMsPerRequest]))
      return [t.name, { rps: median(runs[t.name].map((r) => r.rps)), p50: median(runs[t.name].map((r) => r.p50)), p99: median(runs[t.name].map((r) => r.p99)), cpu: cpu.length ? median(cpu) : undefined }]
    }),
  )
  console.log('\nmedians:')
  for (const [name, s] of Object.entries(summary)) console.log(`  ${name.padEnd(6)} ${Math.round(s.rps).toString().padStart(6)} req/s  p50 ${s.p50} ms  p99 ${s.p99} ms${s.cpu ? `  cpu ${s.cpu.toFixed(3)} ms/req` : ''}`)
  const ratio = (a: number, b: number) => (a / b).toFixed(2)
  if (summary.direct) console.log(`\nproxy/direct: ${ratio(summary.proxy.rps, summary.direct.rps)}x req/s, p99 ${ratio(summary.proxy.p99, summary.direct.p99)}x`)
  if (summary.shadow) {
    console.log(`shadow at 100 %/proxy: ${ratio(summary.shadow.rps, summary.proxy.rps)}x req/s, p99 ${ratio(summary.shadow.p99, summary.proxy.p99)}x${summary.shadow.cpu && summary.proxy.cpu ? `, CPU per request ${ratio(summary.shadow.cpu, summary.proxy.cpu)}x` : ''}`)
    const diffs = await fetch(`http://127.0.0.1:${shadowPort}/admin/routes/movies/diffs`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
    const report = (await diffs.json()) as { counts: Record<string, number>; notCompared: Record<string, number> }
    console.log(`shadow outcomes over all runs: ${JSON.stringify(report.counts)}, not compared: ${JSON.stringify(report.notCompared)}`)
  }
  if (summary.nginx && summary.proxy) {
    console.log(`proxy/nginx:  ${ratio(summary.proxy.rps, summary.nginx.rps)}x req/s (target >= 0.5), p99 ${ratio(summary.proxy.p99, summary.nginx.p99)}x (target <= 2)`)
  }
  console.log(`\nproxy access log: ${statSync(accessLog).size} bytes written during the runs`)
}

try {
  await main()
} finally {
  cleanup()
  await new Promise((r) => setTimeout(r, 300))
  rmSync(work, { recursive: true, force: true })
}
