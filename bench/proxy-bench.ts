// npm run bench: CPU per request, requests/s and latency of this proxy with every feature on,
// and with each feature off in turn, side by side in one run with its peers (not part of npm
// test; a benchmark is not a test). By default: nginx, bare, fastify, proxy, the feature rows
// and the profile phase; traced10, traced1 and lean when BENCH_ONLY names them:
//   nginx    split_clients by X-User-Id, 1 worker (the reference; skipped when nginx is absent)
//   bare     node:http + undici Pool, random split, no features (the Node ceiling)
//   fastify  Fastify + @fastify/http-proxy, random split, logs off (the naive proxy)
//   proxy    this proxy: flags (file), sticky split, breakers, metrics, rate limit with real
//            counters (Redis when redis-server is installed), access log to a file, admin on
//   traced10 this proxy with tracing on (lib/tracing/), 1 request in 10 sampled
//            (parentbased_traceidratio 0.1), spans exported to a real Jaeger (dev/jaeger)
//   traced1  the same, every request sampled (always_on)
//   -<feature>  this proxy with one feature off (FEATURES_OFF, proxy/model/features.ts), one row
//            per feature; "local" and "local-rate-limit": counters in process (no REDIS_URL), with
//            and without the rate limit. Each runs at saturation right next to a run of "proxy"
//            ("local" for the in-process rate limit); the table "what each feature costs" is the
//            difference of CPU per request of each pair, median over the repetitions, as a share
//            of the naive Fastify proxy's CPU per request, with its budget (3 %; 8 % for the
//            Redis rate limit, which talks to another server). No fixed-rate run for these rows.
//   lean     the proxy's own components (config, flags, routing, breakers, metrics, Redis
//            counters, access log) on a raw node:http listener, GETs only: what the features
//            cost without Fastify (bench/peers/lean-proxy.ts)
// All answer GET /api/movies (a ~1 KB JSON) from two stub upstreams, 30 % to the target.
// With taskset the server under test runs alone on core 1, and the load generator, the stub
// upstreams and Redis on core 0 (2-core machine): a saturated server then has a core to itself,
// so its CPU per request does not move with how the scheduler shares a core among 4 processes; wrk drives saturation when installed (autocannon otherwise), and vegeta measures
// latency at a fixed rate, open model (bench/constant-rate.ts). Printed: each run, the medians, the
// medians of the per-repetition ratios.
//
//   BENCH_DURATION_S (8)   measured saturation per row and repetition   BENCH_REPS (3)  repetitions
//   BENCH_SLICES (4)       ... in this many slices, interleaved with the rows it is compared with
//   BENCH_CONNECTIONS (50) BENCH_FIXED_RATE (1000) req/s      BENCH_FIXED_S (5)
//   BENCH_WARMUP_S (30)    saturation per target before the measured runs (a proxy process spends
//                          3-4x its steady CPU per request in its first seconds and ~20 s to settle)
//   BENCH_PREWARM_S (1)    unmeasured saturation right before each measured slice
//   BENCH_GROUP_PREWARM_S (5)  ... and before the first slice of each row compared
//   BENCH_PROFILE_S (20)   the profile phase: a proxy of its own under --cpu-prof, warmed up, then
//                          this long at saturation; each feature's share of its busy time (0 = none)
//   BENCH_ONLY=proxy,bare  a subset of the rows ("features": every feature row, with proxy and fastify)
//   BENCH_REDIS=0   in-process counters
//   BENCH_PROFILE_DIR=dir  the proxy runs with --cpu-prof and writes its profile there
//   BENCH_SHADOW=1         adds "shadow": a second proxy with shadow comparison at 100 % on the movies route
//   BENCH_BASELINE=dir     adds "baseline": the proxy of another checkout (with its node_modules), same settings
//   BENCH_BASELINE_ENV='RATE_LIMIT_MAX=0'  variables set for the baseline only (BENCH_BASELINE=. : what one feature costs)
//   BENCH_LEAN_ENV='LOG_LEVEL=warn'        variables set for the lean row only
//
// Everything listens on 127.0.0.1; every process started here is stopped by its PID at the end.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from '../dev/free-port.ts'
import { startJaeger } from '../dev/jaeger/jaeger.ts'
import { REPO_ROOT } from '../dev/paths.ts'
import { waitForHttp } from '../dev/wait-for-http.ts'
import { MEASURED_FEATURES, type MeasuredFeature } from '../proxy/model/features.ts'
import { constantRate } from './constant-rate.ts'
import { featureShares, type CpuProfile } from './profile-summary.ts'
import type { Run } from './run.ts'

const DURATION = Number(process.env.BENCH_DURATION_S ?? 8)
const REPS = Number(process.env.BENCH_REPS ?? 3)
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50)
const FIXED_RATE = Number(process.env.BENCH_FIXED_RATE ?? 1000)
const FIXED_S = Number(process.env.BENCH_FIXED_S ?? 5)
const WARMUP = Number(process.env.BENCH_WARMUP_S ?? 30)
const PREWARM_S = Number(process.env.BENCH_PREWARM_S ?? 1)
const GROUP_PREWARM_S = Number(process.env.BENCH_GROUP_PREWARM_S ?? 5)
const SLICES = Number(process.env.BENCH_SLICES ?? 4)
/** Whole seconds (wrk's -d). */
const SLICE_S = Math.max(1, Math.round(DURATION / SLICES))
const PROFILE_S = Number(process.env.BENCH_PROFILE_S ?? 20)
const PROFILE_DIR = process.env.BENCH_PROFILE_DIR
const ROLLOUT = 30
const SHADOW = process.env.BENCH_SHADOW === '1'
const BASELINE = process.env.BENCH_BASELINE
/** E.g. `RATE_LIMIT_MAX=0 LOG_LEVEL=warn`: what a feature costs (BENCH_BASELINE=. for this checkout). */
const BASELINE_ENV = envPairs(process.env.BENCH_BASELINE_ENV)
/** Variables set for the lean row only, e.g. `RATE_LIMIT_MAX=0 LOG_LEVEL=warn`: what those features cost it. */
const LEAN_ENV = envPairs(process.env.BENCH_LEAN_ENV)
/** Rows run only when BENCH_ONLY names them (each costs minutes: a Jaeger, a second kind of proxy). */
const ON_REQUEST = ['traced10', 'traced1', 'lean']
const ONLY = process.env.BENCH_ONLY?.split(',').flatMap((s) => (s.trim() === 'features' ? ['proxy', 'fastify', ...featureRowNames()] : [s.trim()]))
const ADMIN_TOKEN = `bench-${randomBytes(24).toString('base64url')}`

/** One row per feature switched off, and the in-process counters with and without the rate limit. */
interface FeatureRow {
  name: string
  /** The row it is compared with: "proxy", or "local" for the in-process rate limit. */
  against: 'proxy' | 'local'
  /** What the table calls the feature. */
  feature: string
  env: Record<string, string>
  /** Counters in process: no REDIS_URL. */
  local?: boolean
  /** Share of the naive proxy's CPU per request the feature may cost. */
  budget: number
}
function featureRows(): FeatureRow[] {
  const rows: FeatureRow[] = MEASURED_FEATURES.map((f: MeasuredFeature) => ({
    name: `-${f}`,
    against: 'proxy',
    feature: f === 'rate-limit' ? 'rate limit, counters in Redis' : f,
    env: { FEATURES_OFF: f },
    budget: f === 'rate-limit' ? 0.08 : 0.03,
  }))
  rows.push({ name: 'local', against: 'proxy', feature: '(the proxy with counters in process: no row of the table)', env: {}, local: true, budget: 0 })
  rows.push({ name: 'local-rate-limit', against: 'local', feature: 'rate limit, counters in process', env: { FEATURES_OFF: 'rate-limit' }, local: true, budget: 0.03 })
  return rows
}
function featureRowNames(): string[] {
  return featureRows().map((r) => r.name)
}

function envPairs(text: string | undefined): Record<string, string> {
  return Object.fromEntries((text ?? '').split(/\s+/).filter(Boolean).map((pair) => pair.split(/=(.*)/s).slice(0, 2)))
}
const which = (name: string, dirs = ['/usr/sbin', '/usr/bin', '/usr/local/sbin', '/usr/local/bin']) => dirs.map((d) => join(d, name)).find((p) => existsSync(p))
const NGINX = which('nginx')
const WRK = which('wrk')
const TASKSET = which('taskset')
const REDIS = process.env.BENCH_REDIS === '0' ? undefined : which('redis-server')
// The server under test on core 1; load, stubs and Redis on core 0 (when the machine has two cores).
const PIN = TASKSET && (spawnSync('nproc').stdout?.toString().trim() ?? '1') !== '1'
const pinned = (core: number, command: string, args: string[]): [string, string[]] => (PIN ? [TASKSET!, ['-c', String(core), command, ...args]] : [command, args])

const work = mkdtempSync(join(tmpdir(), 'proxy-bench-'))
const children: ChildProcess[] = []
let nginxPid: number | undefined

/** Core 1: the servers under test; core 0: what serves them (stubs, Redis) and the load. */
const UNDER_TEST = 1
const AROUND = 0
function start(command: string, args: string[], env: Record<string, string>, logFile: string, cwd = REPO_ROOT, core = UNDER_TEST): ChildProcess {
  const out = openSync(logFile, 'a')
  const [cmd, argv] = pinned(core, command, args)
  const child = spawn(cmd, argv, { cwd, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', out, out] })
  children.push(child)
  return child
}
const startNode = (args: string[], env: Record<string, string>, logFile: string, cwd?: string, core?: number) => start(process.execPath, args, env, logFile, cwd, core)
/** Stopped after the proxies (which flush their last spans on the way out): the trace receiver. */
const stopLast: Array<() => Promise<void>> = []

async function stopAll(): Promise<void> {
  const exits = children.filter((c) => c.exitCode === null && c.signalCode === null).map((c) => new Promise((r) => c.once('exit', r)))
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
  if (nginxPid) {
    try {
      process.kill(nginxPid, 'SIGQUIT')
    } catch {}
    nginxPid = undefined
  }
  await Promise.race([Promise.all(exits), new Promise((r) => setTimeout(r, 10_000))])
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
}
process.on('exit', () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  if (nginxPid) process.kill(nginxPid, 'SIGTERM')
  rmSync(work, { recursive: true, force: true })
})
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130))
/** A turn of the event loop between two load runs (each blocks in spawnSync), so that Ctrl-C or SIGTERM stops the bench and its processes. */
const signalsHeard = () => new Promise((resolve) => setImmediate(resolve))


function run(command: string, args: string[], timeoutMs: number): string {
  const [cmd, argv] = pinned(AROUND, command, args)
  const result = spawnSync(cmd, argv, { cwd: REPO_ROOT, encoding: 'utf8', timeout: timeoutMs })
  if (result.status !== 0) throw new Error(`${command} failed: ${result.stderr || result.error?.message}`)
  return result.stdout
}

const WRK_SCRIPT = join(work, 'users.lua')
writeFileSync(
  WRK_SCRIPT,
  `-- A different user per request: the proxy evaluates the flag for each, nginx hashes the header.
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", "/api/movies", { ["x-user-id"] = "user-" .. (n % 10000) })
end
`,
)

function wrkMs(text: string): number {
  const [, value, unit] = /^([\d.]+)(us|ms|s)$/.exec(text)!
  return Number(value) * (unit === 'us' ? 0.001 : unit === 's' ? 1000 : 1)
}

function saturate(url: string, seconds: number): Run {
  if (!WRK) return autocannonRun(url, seconds)
  const out = run(WRK, ['-t1', `-c${CONNECTIONS}`, `-d${seconds}s`, '--latency', '-s', WRK_SCRIPT, url], (seconds + 30) * 1000)
  const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out)
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)![1]),
    total: Number(/(\d+) requests in/.exec(out)![1]),
    p50: wrkMs(/ 50%\s+(\S+)/.exec(out)![1]!),
    p99: wrkMs(/ 99%\s+(\S+)/.exec(out)![1]!),
    errors: errors ? errors.slice(1).reduce((a, b) => a + Number(b), 0) : 0,
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0),
  }
}

/** Saturation without wrk (the fixed rate is Vegeta's: constant-rate.ts). */
function autocannonRun(url: string, seconds: number): Run {
  const args = ['bench/load-autocannon.ts', url, String(CONNECTIONS), String(seconds)]
  return JSON.parse(run(process.execPath, args, (seconds + 60) * 1000).trim().split('\n').pop()!) as Run
}

function nginxConfig(port: number, monolith: number, movies: number): string {
  return `worker_processes 1;
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

const CLOCK_TICK_MS = 1000 / Number(spawnSync('getconf', ['CLK_TCK']).stdout?.toString().trim() || 100)

/** CPU time (user + system, ms) of a process and its descendants (nginx's worker, PROXY_WORKERS) so far; undefined without /proc. */
function cpuMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ') // after "pid (comm) "
    let ms = (Number(fields[11]) + Number(fields[12])) * CLOCK_TICK_MS // utime, stime
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      for (const child of readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').split(' ').filter(Boolean)) ms += cpuMs(Number(child)) ?? 0
    }
    return ms
  } catch {
    return undefined
  }
}

/** `load` with the server's CPU per answered request added. */
function measured(pid: number, load: () => Run): Run {
  const before = cpuMs(pid)
  const run = load()
  const after = cpuMs(pid)
  return before === undefined || after === undefined || !run.total ? run : { ...run, cpuUs: ((after - before) * 1000) / run.total }
}

/** The slices of one target as one run: requests and CPU summed, the slices' median p50 and p99. */
function combined(slices: Run[]): Run {
  const total = slices.reduce((n, r) => n + r.total, 0)
  const withCpu = slices.every((r) => r.cpuUs !== undefined)
  return {
    rps: slices.reduce((n, r) => n + r.rps, 0) / slices.length,
    total,
    ...(withCpu && total ? { cpuUs: slices.reduce((us, r) => us + r.cpuUs! * r.total, 0) / total } : {}),
    p50: median(slices.map((r) => r.p50)),
    p99: median(slices.map((r) => r.p99)),
    errors: slices.reduce((n, r) => n + r.errors, 0),
    non2xx: slices.reduce((n, r) => n + r.non2xx, 0),
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const fmt = (run: Run) =>
  `${Math.round(run.rps).toString().padStart(6)} req/s  p50 ${run.p50.toFixed(2)} ms  p99 ${run.p99.toFixed(2)} ms${run.cpuUs === undefined ? '' : `  cpu ${Math.round(run.cpuUs)} µs/req`}${run.errors || run.non2xx ? `  errors ${run.errors} non-2xx ${run.non2xx}` : ''}`

async function main(): Promise<void> {
  const port = () => freePort()
  const [monolithPort, moviesPort] = [await port(), await port()]
  const monolith = `http://127.0.0.1:${monolithPort}`
  const movies = `http://127.0.0.1:${moviesPort}`
  startNode(['bench/upstream-stub.ts', String(monolithPort), 'monolith'], {}, join(work, 'monolith.log'), undefined, AROUND)
  startNode(['bench/upstream-stub.ts', String(moviesPort), 'movies-service'], {}, join(work, 'movies.log'), undefined, AROUND)
  await waitForHttp(`${monolith}/`)
  await waitForHttp(`${movies}/`)

  const targets: Array<{ name: string; url: string; pid: number }> = []
  const wanted = (name: string) => (ONLY ? ONLY.includes(name) : !ON_REQUEST.includes(name))

  if (wanted('nginx') && NGINX) {
    const nginxPort = await port()
    const conf = join(work, 'nginx.conf')
    writeFileSync(conf, nginxConfig(nginxPort, monolithPort, moviesPort))
    const [cmd, argv] = pinned(UNDER_TEST, NGINX, ['-p', work, '-c', conf])
    const started = spawnSync(cmd, argv, { encoding: 'utf8', timeout: 10_000 })
    if (started.status !== 0) throw new Error(`nginx did not start: ${started.stderr}`)
    nginxPid = Number(readFileSync(join(work, 'nginx.pid'), 'utf8'))
    await waitForHttp(`http://127.0.0.1:${nginxPort}/`)
    targets.push({ name: 'nginx', url: `http://127.0.0.1:${nginxPort}`, pid: nginxPid })
  } else if (wanted('nginx')) console.log('nginx not installed: no nginx row')

  for (const [name, script] of [['bare', 'bench/peers/bare-proxy.ts'], ['fastify', 'bench/peers/fastify-proxy.ts']] as const) {
    if (!wanted(name)) continue
    const p = await port()
    const peer = startNode([script, String(p), monolith, movies, String(ROLLOUT)], {}, join(work, `${name}.log`))
    await waitForHttp(`http://127.0.0.1:${p}/api/movies`)
    targets.push({ name, url: `http://127.0.0.1:${p}`, pid: peer.pid! })
  }

  let accessLog: string | undefined
  /** Starts a proxy like "proxy" under `--cpu-prof` (the profile phase at the end); set with the proxy rows. */
  let startProfiled: ((port: number, dir: string) => ChildProcess) | undefined
  let shadowPort: number | undefined
  let shadowOpsPort: number | undefined
  const features = featureRows().filter((r) => wanted(r.name))
  if (wanted('proxy') || wanted('lean') || wanted('traced10') || wanted('traced1') || features.length) {
    const env: Record<string, string> = {}
    if (REDIS) {
      const redisPort = await port()
      start(REDIS, ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', work], {}, join(work, 'redis.log'), REPO_ROOT, AROUND)
      env.REDIS_URL = `redis://127.0.0.1:${redisPort}`
      const deadline = Date.now() + 10_000
      while (!readFileSync(join(work, 'redis.log'), 'utf8').includes('Ready to accept')) {
        if (Date.now() > deadline) throw new Error('redis-server did not start')
        await new Promise((r) => setTimeout(r, 100))
      }
    }
    const flagsFile = join(work, 'flags.json')
    const flags = JSON.parse(readFileSync(join(REPO_ROOT, 'flags/flags.json'), 'utf8'))
    flags.featureStrategies[0].parameters.rollout = String(ROLLOUT)
    writeFileSync(flagsFile, JSON.stringify(flags))
    accessLog = join(work, 'proxy-access.log')
    const profile = PROFILE_DIR ? ['--cpu-prof', '--cpu-prof-dir', PROFILE_DIR] : []
    const proxyEnv = (proxyPort: number): Record<string, string> => ({
      ...env,
      PORT: String(proxyPort),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      MONOLITH_URL: monolith,
      MOVIES_SERVICE_URL: movies,
      EVENTS_SERVICE_URL: monolith,
      FLAGS_FILE: flagsFile,
      ADMIN_TOKEN,
      // Each proxy's operators' listener on a socket of its own in the work dir (the default port 9000 would be shared).
      ADMIN_SOCKET: join(work, `ops-${proxyPort}.sock`),
      RATE_LIMIT_MAX: '1000000000',
      ...(process.env.PROXY_WORKERS ? { PROXY_WORKERS: process.env.PROXY_WORKERS } : {}),
    })
    const startProxy = (proxyPort: number, extra: Record<string, string>, log: string, cwd?: string) =>
      startNode([...profile, 'proxy/server.ts'], { ...proxyEnv(proxyPort), ...extra }, log, cwd)
    startProfiled = (proxyPort, dir) =>
      startNode(['--cpu-prof', '--cpu-prof-dir', dir, 'proxy/server.ts'], { ...proxyEnv(proxyPort), RATE_LIMIT_KEY_PREFIX: 'bench-profiled:' }, join(work, 'profiled-access.log'))
    if (wanted('proxy')) {
      const proxyPort = await port()
      const proxy = startProxy(proxyPort, {}, accessLog)
      await waitForHttp(`http://127.0.0.1:${proxyPort}/ready`)
      targets.push({ name: 'proxy', url: `http://127.0.0.1:${proxyPort}`, pid: proxy.pid! })
    }
    // The proxy with one feature off, each in a process of its own (same settings otherwise).
    for (const row of features) {
      const rowPort = await port()
      const rowEnv = { RATE_LIMIT_KEY_PREFIX: `bench${row.name}:`, ...row.env }
      const proxy = startNode([...profile, 'proxy/server.ts'], { ...proxyEnv(rowPort), ...(row.local ? { REDIS_URL: '' } : {}), ...rowEnv }, join(work, `proxy${row.name}-access.log`))
      await waitForHttp(`http://127.0.0.1:${rowPort}/ready`)
      targets.push({ name: row.name, url: `http://127.0.0.1:${rowPort}`, pid: proxy.pid! })
    }
    // Tracing on, exporting to a real Jaeger on this machine (its CPU shares core 1 with the servers).
    const tracedRows = ([['traced10', 'parentbased_traceidratio', '0.1'], ['traced1', 'always_on', '1']] as const).filter(([name]) => wanted(name))
    if (tracedRows.length) {
      const jaeger = await startJaeger()
      stopLast.push(() => jaeger.stop())
      for (const [name, sampler, ratio] of tracedRows) {
        const tracedPort = await port()
        const otel = { OTEL_EXPORTER_OTLP_ENDPOINT: jaeger.otlpEndpoint, OTEL_TRACES_SAMPLER: sampler, OTEL_TRACES_SAMPLER_ARG: ratio, OTEL_SERVICE_NAME: `proxy-${name}`, RATE_LIMIT_KEY_PREFIX: `bench-${name}:` }
        const traced = startProxy(tracedPort, otel, join(work, `${name}-access.log`))
        await waitForHttp(`http://127.0.0.1:${tracedPort}/ready`)
        targets.push({ name, url: `http://127.0.0.1:${tracedPort}`, pid: traced.pid! })
      }
    }
    if (wanted('lean')) {
      // The same components and settings on a raw node:http listener (bench/peers/lean-proxy.ts).
      const leanPort = await port()
      const lean = startNode([...profile, 'bench/peers/lean-proxy.ts'], { ...proxyEnv(leanPort), RATE_LIMIT_KEY_PREFIX: 'bench-lean:', ...LEAN_ENV }, join(work, 'lean-access.log'))
      await waitForHttp(`http://127.0.0.1:${leanPort}/api/movies`)
      targets.push({ name: 'lean', url: `http://127.0.0.1:${leanPort}`, pid: lean.pid! })
    }
    if (BASELINE) {
      // The same proxy from another checkout (e.g. `git worktree add /tmp/base HEAD~3 && (cd /tmp/base && npm ci)`), in the same run.
      const basePort = await port()
      const base = startProxy(basePort, BASELINE_ENV, join(work, 'baseline-access.log'), BASELINE)
      await waitForHttp(`http://127.0.0.1:${basePort}/ready`)
      targets.push({ name: 'baseline', url: `http://127.0.0.1:${basePort}`, pid: base.pid! })
    }
    if (SHADOW) {
      // The shipped route map with the movies route shadowed at 100 %; the two bench stubs differ
      // only in the "upstream" field they name, declared noise, so the copies compare as matches.
      const routes = JSON.parse(readFileSync(join(REPO_ROOT, 'proxy/routes.json'), 'utf8'))
      routes.routes.find((r: { name: string }) => r.name === 'movies').shadow = { percent: 100, ignore: ['$.upstream'] }
      writeFileSync(join(work, 'routes-shadow.json'), JSON.stringify(routes))
      shadowPort = await port()
      shadowOpsPort = await port()
      const shadow = startProxy(shadowPort, { ROUTES_FILE: join(work, 'routes-shadow.json'), ADMIN_SOCKET: '', ADMIN_PORT: String(shadowOpsPort) }, join(work, 'proxy-shadow-access.log'))
      await waitForHttp(`http://127.0.0.1:${shadowPort}/ready`)
      targets.push({ name: 'shadow', url: `http://127.0.0.1:${shadowPort}`, pid: shadow.pid! })
    }
  }

  const pinning = PIN ? 'the server under test alone on core 1; load, stubs and Redis on core 0' : 'unpinned (no taskset or one core)'
  console.log(
    `${CONNECTIONS} connections, ${SLICES} slices of ${SLICE_S} s per row, interleaved, ${REPS} repetitions, rollout ${ROLLOUT} % by X-User-Id (10,000 users); ` +
      `saturation by ${WRK ? 'wrk' : 'autocannon'}, fixed rate ${FIXED_RATE} req/s by vegeta; ${pinning}; ` +
      `proxy rate-limit counters ${REDIS ? 'in Redis' : 'in process'}`,
  )
  // Warm-up: a Node server keeps getting faster for many seconds of load (JIT tiers, heap sizing);
  // a short warm-up left the first repetition up to 30 % slower than the last.
  for (const t of targets) {
    saturate(t.url, WARMUP)
    await signalsHeard()
  }

  const featureNames = new Set(features.map((r) => r.name))
  const peers = targets.filter((t) => !featureNames.has(t.name))
  const targetOf = (name: string) => targets.find((t) => t.name === name)!
  const sat: Record<string, Run[]> = Object.fromEntries(targets.map((t) => [t.name, []]))
  const fixed: Record<string, Run[]> = Object.fromEntries(peers.map((t) => [t.name, []]))
  /** Per feature row, per repetition: the run of the row it is compared with, next to its own run. */
  const pairs: Record<string, Array<{ on: Run; off: Run }>> = Object.fromEntries(features.map((r) => [r.name, []]))
  type Target = { name: string; url: string; pid: number }
  /**
   * Measured saturation runs of `group`, interleaved: SLICES slices of SLICE_S seconds,
   * the targets one after the other in each, so that the machine's speed, which drifts by tens of
   * per cent within a minute here, falls on every target of the group alike. Each slice follows
   * PREWARM_S of unmeasured load (a process idle for a while spends more per request in its first
   * second). A target's slices add up to its run: requests and CPU summed, the slices' median p50
   * and p99. `sat` keeps one run per row and repetition (the medians and ratios).
   */
  const interleaved = async (group: Target[], rep: number, keep = true): Promise<Run[]> => {
    // Each target of the group back at its steady state first: a process idle for minutes (the
    // other rows' turns) spent up to 15 % more per request in its first slice than the row next to it.
    for (const t of group) saturate(t.url, GROUP_PREWARM_S)
    const slices: Run[][] = group.map(() => [])
    for (let slice = 0; slice < SLICES; slice++) {
      for (const [i, t] of group.entries()) {
        saturate(t.url, PREWARM_S)
        slices[i]!.push(measured(t.pid, () => saturate(t.url, SLICE_S)))
        await signalsHeard()
      }
    }
    return group.map((t, i) => {
      const run = combined(slices[i]!)
      if (keep && sat[t.name]!.length <= rep) sat[t.name]!.push(run)
      console.log(`  rep ${rep + 1} ${t.name.padEnd(7)} saturation ${fmt(run)}`)
      return run
    })
  }
  for (let rep = 0; rep < REPS; rep++) {
    // Rotate the order so no target always runs first (or right after another one).
    const order = peers.map((_, i) => peers[(i + rep) % peers.length]!)
    await interleaved(order, rep)
    for (const t of order) {
      const f = measured(t.pid, () => constantRate({ url: t.url, rate: FIXED_RATE, seconds: FIXED_S, users: 10_000, pin: (c, a) => pinned(AROUND, c, a) }))
      fixed[t.name]!.push(f)
      await signalsHeard()
      console.log(`  rep ${rep + 1} ${t.name.padEnd(7)} ${FIXED_RATE}/s      ${fmt(f)}`)
    }
    // Each feature row interleaved with the row it is compared with, the two in alternating order.
    for (const [i, row] of features.entries()) {
      const [on, off] = [targetOf(row.against), targetOf(row.name)]
      const first = (rep + i) % 2 === 0
      const [a, b] = await interleaved(first ? [on, off] : [off, on], rep, false)
      pairs[row.name]!.push(first ? { on: a!, off: b! } : { on: b!, off: a! })
    }
  }

  const cpu = (runs: Run[]) => (runs.every((r) => r.cpuUs !== undefined) ? `  cpu ${Math.round(median(runs.map((r) => r.cpuUs!)))} µs/req` : '')
  console.log('\nmedians (saturation | fixed rate; cpu = CPU time of the server per answered request):')
  for (const t of targets) {
    const s = sat[t.name]!
    const f = fixed[t.name] ?? []
    if (!s.length) continue
    if (!f.length) {
      console.log(`  ${t.name.padEnd(7)} ${Math.round(median(s.map((r) => r.rps))).toString().padStart(6)} req/s  p99 ${median(s.map((r) => r.p99)).toFixed(2)} ms${cpu(s)}`)
      continue
    }
    console.log(
      `  ${t.name.padEnd(7)} ${Math.round(median(s.map((r) => r.rps))).toString().padStart(6)} req/s  p99 ${median(s.map((r) => r.p99)).toFixed(2)} ms${cpu(s)} | ` +
        `p50 ${median(f.map((r) => r.p50)).toFixed(2)} ms  p99 ${median(f.map((r) => r.p99)).toFixed(2)} ms${cpu(f)}`,
    )
  }
  // Medians of the ratios paired within each repetition (the runs of one repetition are adjacent in time).
  const ratio = (a: string, b: string) => {
    if (!sat[a] || !sat[b]) return undefined
    const rs = sat[a]!.map((r, i) => r.rps / sat[b]![i]!.rps)
    const cpus = sat[a]!.every((r) => r.cpuUs !== undefined) && sat[b]!.every((r) => r.cpuUs !== undefined) ? sat[a]!.map((r, i) => r.cpuUs! / sat[b]![i]!.cpuUs!) : undefined
    return `${median(rs).toFixed(2)}x (${rs.map((r) => r.toFixed(2)).join(', ')})${cpus ? `; cpu per request ${median(cpus).toFixed(2)}x` : ''}`
  }
  console.log('\nrequests/s ratios (median of paired repetitions):')
  for (const [a, b, goal] of [
    ['proxy', 'bare', ' goal >= 0.9'],
    ['proxy', 'fastify', ' goal >= 1.5'],
    ['proxy', 'nginx', ''],
    ['traced10', 'proxy', ' (tracing on, 1 in 10 requests sampled, exported to Jaeger)'],
    ['traced1', 'proxy', ' (tracing on, every request sampled)'],
    ['lean', 'bare', ' (the proxy\'s components without Fastify: the best a raw node:http path could do)'],
    ['proxy', 'lean', ''],
    ['shadow', 'proxy', ' (shadow comparison at 100 % on the movies route)'],
    ['proxy', 'baseline', ' (this checkout against BENCH_BASELINE)'],
    ['bare', 'nginx', ''],
    ['fastify', 'nginx', ''],
  ] as const) {
    const r = ratio(a, b)
    if (r) console.log(`  ${a}/${b}: ${r}${goal}`)
  }
  printFeatureTable(features, pairs, sat, fixed)
  if (startProfiled && sat.proxy?.length && PROFILE_S > 0) await profilePhase(startProfiled, sat)
  for (const [row, file] of [['proxy', accessLog], ['lean', join(work, 'lean-access.log')]] as const) {
    if (file && existsSync(file)) console.log(`${row} access log: ${statSync(file).size} bytes written during the runs`)
  }
  if (shadowOpsPort) {
    const diffs = await fetch(`http://127.0.0.1:${shadowOpsPort}/admin/routes/movies/diffs`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
    const report = (await diffs.json()) as { counts: Record<string, number>; notCompared: Record<string, number> }
    console.log(`shadow outcomes over all runs: ${JSON.stringify(report.counts)}, not compared: ${JSON.stringify(report.notCompared)}`)
  }
}

/**
 * "What each feature costs": per repetition, the CPU per request of the row it is compared with
 * minus the row without the feature (two saturation runs side by side), median over the
 * repetitions, as a share of the naive Fastify proxy's CPU per request; then the acceptance
 * figures: the proxy's CPU per request against the naive proxy's, and its p50 at the fixed rate.
 */
function printFeatureTable(rows: FeatureRow[], pairs: Record<string, Array<{ on: Run; off: Run }>>, sat: Record<string, Run[]>, fixed: Record<string, Run[]>): void {
  const naive = sat.fastify?.length && sat.fastify.every((r) => r.cpuUs !== undefined) ? median(sat.fastify.map((r) => r.cpuUs!)) : undefined
  const priced = rows.filter((r) => r.budget > 0 && pairs[r.name]?.every((p) => p.on.cpuUs !== undefined && p.off.cpuUs !== undefined))
  if (priced.length && naive) {
    console.log(`\nwhat each feature costs (CPU per request with it minus without it, runs side by side, median over the repetitions; naive Fastify proxy: ${naive.toFixed(1)} µs/req):`)
    console.log('  feature                          | µs per request (per repetition) | share of the naive proxy | budget')
    for (const row of priced) {
      const diffs = pairs[row.name]!.map((p) => p.on.cpuUs! - p.off.cpuUs!)
      const us = median(diffs)
      const within = us / naive <= row.budget ? 'within' : 'OVER'
      console.log(
        `  ${row.feature.padEnd(32)} | ${us.toFixed(1).padStart(6)} (${diffs.map((d) => d.toFixed(1)).join(', ')}) | ${((100 * us) / naive).toFixed(1).padStart(5)} % | ${(100 * row.budget).toFixed(0)} % ${within}`,
      )
    }
  }
  if (sat.proxy && sat.fastify && naive) {
    const ratios = sat.proxy.map((r, i) => r.cpuUs! / sat.fastify![i]!.cpuUs!)
    console.log(`\nproxy / naive Fastify proxy, CPU per request: ${median(ratios).toFixed(2)}x (${ratios.map((r) => r.toFixed(2)).join(', ')}); goal <= 1.3x`)
  }
  if (fixed.proxy && fixed.fastify) {
    const deltas = fixed.proxy.map((r, i) => r.p50 - fixed.fastify![i]!.p50)
    console.log(`proxy p50 - naive p50 at ${FIXED_RATE} req/s: ${median(deltas).toFixed(2)} ms (${deltas.map((d) => d.toFixed(2)).join(', ')}); goal <= 1 ms`)
  }
}

/**
 * The steadier view: one proxy's own CPU profile (bench/profile-summary.ts) at saturation after
 * its warm-up, each feature's share of the busy time, in µs per request of the "proxy" row's
 * median. The machine's speed moves every share alike, where it moves the difference of two runs
 * by tens of µs (above).
 */
async function profilePhase(startProfiled: (port: number, dir: string) => ChildProcess, sat: Record<string, Run[]>): Promise<void> {
  const dir = join(work, 'profile')
  const profiledPort = await freePort()
  const profiled = startProfiled(profiledPort, dir)
  const url = `http://127.0.0.1:${profiledPort}`
  await waitForHttp(`${url}/ready`)
  saturate(url, WARMUP)
  saturate(url, PROFILE_S)
  const exited = new Promise((resolve) => profiled.once('exit', resolve))
  profiled.kill('SIGTERM')
  await exited
  const file = readdirSync(dir).map((f) => join(dir, f)).sort((a, b) => statSync(b).size - statSync(a).size)[0]
  if (!file) return void console.log('\nprofile phase: no profile written')
  const { busyUs, shares } = featureShares(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile, (PROFILE_S + 1) * 1e6)
  const proxyUs = median(sat.proxy!.map((r) => r.cpuUs ?? NaN))
  const naive = sat.fastify?.length ? median(sat.fastify.map((r) => r.cpuUs ?? NaN)) : NaN
  console.log(`\nwhere the proxy's CPU goes (its own profile: ${(busyUs / 1e6).toFixed(1)} s busy in ${PROFILE_S} s at saturation after ${WARMUP} s of warm-up; µs = share × the proxy row's ${proxyUs.toFixed(1)} µs/req):`)
  console.log('  share   | µs per request | share of the naive proxy | feature')
  for (const [feature, share] of [...shares].sort((a, b) => b[1] - a[1])) {
    const us = share * proxyUs
    console.log(`  ${(100 * share).toFixed(1).padStart(5)} % | ${us.toFixed(1).padStart(6)} | ${Number.isNaN(naive) ? '' : `${((100 * us) / naive).toFixed(1).padStart(5)} %`} | ${feature}`)
  }
}

try {
  await main()
} finally {
  await stopAll()
  for (const stop of stopLast) await stop()
  rmSync(work, { recursive: true, force: true })
}
