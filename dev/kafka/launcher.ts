// A real single-node Apache Kafka (KRaft, combined broker+controller) for dev machines and CI,
// without Docker: the broker's jars come from Maven Central once (dev/kafka/pom.xml) into a
// cache folder, and `java kafka.Kafka` runs from there, offline, on 127.0.0.1.
//
//   const kafka = await startKafka()          // free port, temp data dir
//   kafka.brokers                             // ['127.0.0.1:PORT'] for kafkajs / kcat
//   await kafka.stop()
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { Kafka, logLevel } from 'kafkajs'
import { freePort } from '../free-port.ts'
import { spawnTied, which } from '../tied-process.ts'

/** Also the version Maven resolves: it is passed as -Dkafka.version over the POM's default. */
export const KAFKA_VERSION = '3.9.2'
const HERE = dirname(fileURLToPath(import.meta.url))
const REPO = resolve(HERE, '../..')
// Full plugin coordinates: a bare `dependency:` prefix would look up the latest plugin online.
const COPY_DEPENDENCIES = 'org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies'

export interface KafkaOptions {
  /** Broker port on 127.0.0.1; 0 or undefined picks a free one. */
  port?: number
  /** Where the broker keeps its log segments, config and logs; a new temp dir when undefined. */
  dataDir?: string
  /** Where the broker's output goes; default <dataDir>/logs/server.log. */
  logFile?: string
  /** JVM max heap, e.g. '512m'. */
  heap?: string
  /** How long to wait for a usable broker, ms (default 60s). */
  startTimeoutMs?: number
  /** Called if the JVM exits without stop() having been asked for. */
  onExit?: (code: number | null, signal: NodeJS.Signals | null) => void
  /** Called as each start-up step happens (npm start prints them). */
  onProgress?: (event: KafkaProgress) => void
  /**
   * A second listener, SASL_PLAINTEXT with SCRAM-SHA-256/512, on its own free port: these
   * users are created when a new data dir is formatted (`--add-scram`). The PLAINTEXT listener
   * stays (the launcher's own probe and the broker-to-itself traffic use it).
   */
  sasl?: { users: KafkaScramUser[] }
}

export interface KafkaScramUser {
  name: string
  password: string
  /** Default SCRAM-SHA-512. */
  mechanism?: 'SCRAM-SHA-256' | 'SCRAM-SHA-512'
}

/** The start-up steps, as they happen: the jar cache, then the broker. */
export type KafkaProgress =
  | { step: 'jars-cached'; dir: string }
  | { step: 'jars-downloading'; dir: string }
  | { step: 'jars-downloaded'; dir: string; bytes: number; jars: number }
  | { step: 'broker-starting'; port: number }
  | { step: 'broker-up'; port: number }

export interface RunningKafka {
  brokers: string[]
  port: number
  /** The SASL_PLAINTEXT (SCRAM) listener's bootstrap servers when options.sasl was given, else []. */
  saslBrokers: string[]
  dataDir: string
  logFile: string
  /** The broker JVM's pid (changes on restart()). */
  readonly pid: number
  stop(): Promise<void>
  restart(): Promise<void>
}

export class KafkaLaunchError extends Error {
  override name = 'KafkaLaunchError'
}

function findJava(): string {
  const fromHome = process.env.JAVA_HOME && join(process.env.JAVA_HOME, 'bin', 'java')
  if (fromHome && existsSync(fromHome)) return fromHome
  const java = which('java')
  if (!java) {
    throw new KafkaLaunchError(
      'Kafka needs Java 17+, but no `java` is on PATH (and JAVA_HOME is unset or has no bin/java). ' +
        'Install a JDK/JRE, e.g. `apt-get install -y openjdk-17-jre-headless`, or set JAVA_HOME.',
    )
  }
  return java
}

/** The jar cache: KAFKA_JARS_DIR, or <repo>/.cache/kafka/<version>/libs. */
export function jarsDir(): string {
  return process.env.KAFKA_JARS_DIR ?? join(REPO, '.cache', 'kafka', KAFKA_VERSION, 'libs')
}

function hasKafkaJars(dir: string): boolean {
  try {
    return readdirSync(dir).some((f) => /^kafka_2\.1[23]-.*\.jar$/.test(f))
  } catch {
    return false
  }
}

/**
 * Makes sure the broker's jars are in the cache, downloading them with Maven the first time.
 * Later calls only look at the folder, so they work offline.
 */
export async function ensureJars(onProgress: (event: KafkaProgress) => void = () => {}): Promise<string> {
  const dir = jarsDir()
  if (hasKafkaJars(dir)) {
    onProgress({ step: 'jars-cached', dir })
    return dir
  }
  const mvn = which('mvn')
  if (!mvn) {
    throw new KafkaLaunchError(
      `The Kafka ${KAFKA_VERSION} jars are not in ${dir}, and downloading them needs Maven, but no \`mvn\` is on PATH. ` +
        'Install it (`apt-get install -y maven`) and run `npm run kafka:warm`, ' +
        'or set KAFKA_JARS_DIR to a folder with the jars (e.g. the libs/ of a Kafka 3.9 distribution).',
    )
  }
  // Download next to the target and rename at the end: a half-finished download is never
  // mistaken for a cache, and two processes warming at once cannot mix their files.
  const partial = `${dir}.partial-${process.pid}`
  rmSync(partial, { recursive: true, force: true })
  mkdirSync(dirname(dir), { recursive: true })
  onProgress({ step: 'jars-downloading', dir })
  const args = ['-B', '-q', '-Dstyle.color=never', '-f', join(HERE, 'pom.xml'), COPY_DEPENDENCIES,
    `-Dkafka.version=${KAFKA_VERSION}`, '-DincludeScope=runtime', `-DoutputDirectory=${partial}`]
  const out = await run(mvn, args, 10 * 60_000)
  if (out.code !== 0 || !hasKafkaJars(partial)) {
    rmSync(partial, { recursive: true, force: true })
    throw new KafkaLaunchError(
      `Could not download the Kafka ${KAFKA_VERSION} jars with Maven into ${dir}. ` +
        'The first start needs Maven Central (later ones work offline): check the network/proxy ' +
        '(Maven settings in ~/.m2/settings.xml), or set KAFKA_JARS_DIR to a folder that already has the jars. ' +
        `Maven said:\n${tail(out.output, 15)}`,
    )
  }
  try {
    renameSync(partial, dir)
  } catch (err) {
    rmSync(partial, { recursive: true, force: true })
    if (!hasKafkaJars(dir)) throw err // not "someone else finished first"
  }
  const jars = readdirSync(dir)
  onProgress({ step: 'jars-downloaded', dir, jars: jars.length, bytes: jars.reduce((sum, f) => sum + statSync(join(dir, f)).size, 0) })
  return dir
}

/** Runs a short command to completion, collecting its output. */
function run(cmd: string, args: string[], timeoutMs: number): Promise<{ code: number | null; output: string }> {
  return new Promise((done, fail) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs })
    let output = ''
    child.stdout.on('data', (d) => (output += d))
    child.stderr.on('data', (d) => (output += d))
    child.on('error', fail)
    child.on('close', (code) => done({ code, output }))
  })
}

function tail(text: string, lines: number): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n')
}

function logTail(file: string, lines = 40): string {
  try {
    return tail(readFileSync(file, 'utf8'), lines)
  } catch {
    return '(no log yet)'
  }
}

function portInUse(port: number): KafkaLaunchError {
  return new KafkaLaunchError(
    `Kafka cannot listen on 127.0.0.1:${port}: port ${port} is already in use (another Kafka, or another program). ` +
      'Stop whatever holds it, or choose another port (--port N, or startKafka({ port: 0 }) for a free one).',
  )
}

async function assertPortFree(port: number): Promise<void> {
  const server = createServer()
  try {
    await new Promise<void>((ok, fail) => server.once('error', fail).listen(port, '127.0.0.1', ok))
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') throw portInUse(port)
    throw err
  } finally {
    await new Promise((ok) => server.close(ok))
  }
}

const SCRAM_LOGIN = 'org.apache.kafka.common.security.scram.ScramLoginModule required;'

function serverProperties(o: { port: number; controllerPort: number; saslPort?: number; logDirs: string }): string {
  const sasl = o.saslPort ? `,SASL_PLAINTEXT://127.0.0.1:${o.saslPort}` : ''
  const saslSettings = o.saslPort
    ? `# Clients on the SASL_PLAINTEXT listener authenticate with SCRAM (users created at format time).
sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=${SCRAM_LOGIN}
listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=${SCRAM_LOGIN}
`
    : ''
  return `# Written by dev/kafka/launcher.ts on every start: a single-node dev cluster, not for production.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:${o.controllerPort}
listeners=PLAINTEXT://127.0.0.1:${o.port}${sasl},CONTROLLER://127.0.0.1:${o.controllerPort}
advertised.listeners=PLAINTEXT://127.0.0.1:${o.port}${sasl}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT${o.saslPort ? ',SASL_PLAINTEXT:SASL_PLAINTEXT' : ''}
${saslSettings}log.dirs=${o.logDirs}
# One replica of everything: there is one broker.
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
# Fewer internal partitions and smaller files: faster first group/transaction, less disk.
offsets.topic.num.partitions=5
transaction.state.log.num.partitions=5
log.segment.bytes=16777216
offsets.topic.segment.bytes=16777216
transaction.state.log.segment.bytes=16777216
log.index.size.max.bytes=1048576
log.cleaner.dedupe.buffer.size=16777216
auto.create.topics.enable=true
delete.topic.enable=true
# Consumer groups form at once instead of waiting 3s for more members.
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
`
}

// log4j writes to stdout, and stdout/stderr go to one file: broker logs, JVM errors
// (e.g. a bad classpath) and crashes end up in the same place, in order.
const LOG4J = `log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.request.logger=WARN
log4j.logger.org.apache.kafka.clients.NetworkClient=WARN
`

/**
 * Starts a real Kafka broker and resolves once a client can create and delete a topic on it.
 * The JVM never outlives this process: see spawnTiedToUs().
 */
export async function startKafka(options: KafkaOptions = {}): Promise<RunningKafka> {
  const java = findJava()
  const progress = options.onProgress ?? (() => {})
  const libs = await ensureJars(progress)
  const port = options.port || (await freePort())
  await assertPortFree(port)
  const controllerPort = await freePort()
  const saslPort = options.sasl ? await freePort() : undefined
  const dataDir = resolve(options.dataDir ?? mkdtempSync(join(tmpdir(), 'kafka-dev-')))
  const logsDir = join(dataDir, 'logs')
  const logFile = resolve(options.logFile ?? join(logsDir, 'server.log'))
  const logDirs = join(dataDir, 'kraft-logs')
  const configFile = join(dataDir, 'server.properties')
  const log4jFile = join(dataDir, 'log4j.properties')
  mkdirSync(logsDir, { recursive: true })
  mkdirSync(dirname(logFile), { recursive: true })
  writeFileSync(configFile, serverProperties({ port, controllerPort, saslPort, logDirs }))
  writeFileSync(log4jFile, LOG4J)
  const jvm = [`-Xmx${options.heap ?? '512m'}`, '-XX:+ExitOnOutOfMemoryError', '-Djava.awt.headless=true',
    `-Dlog4j.configuration=file:${log4jFile}`, `-Dkafka.logs.dir=${logsDir}`, '-cp', join(libs, '*')]

  progress({ step: 'broker-starting', port })
  // A new data dir gets formatted with a fresh cluster id; an existing one keeps its data.
  if (!existsSync(join(logDirs, 'meta.properties'))) {
    // Kafka's Uuid form: 16 random bytes, 22 chars base64url; one starting with '-' would be
    // taken for an option by the tool's argument parser (Kafka's own generator avoids it too).
    let clusterId: string
    do clusterId = randomBytes(16).toString('base64url')
    while (clusterId.startsWith('-'))
    const scram = (options.sasl?.users ?? []).flatMap((u) => ['--add-scram', `${u.mechanism ?? 'SCRAM-SHA-512'}=[name=${u.name},password=${u.password}]`])
    const out = await run(java, [...jvm, 'kafka.tools.StorageTool', 'format', '--config', configFile, '--cluster-id', clusterId, ...scram], 60_000)
    if (out.code !== 0) throw new KafkaLaunchError(`Formatting Kafka storage in ${logDirs} failed:\n${tail(out.output, 20)}`)
  }

  let child: ChildProcess | undefined
  let stopping = false
  let usable = false // onExit is for a broker that died after it was up; startup errors are thrown
  const killNow = () => child?.kill('SIGKILL')

  const launch = async () => {
    stopping = false
    usable = false
    const out = openSync(logFile, 'a')
    try {
      child = spawnTiedToUs(java, [...jvm, 'kafka.Kafka', configFile], out)
    } finally {
      closeSync(out) // the child holds its own copy
    }
    const me = child!
    me.on('exit', (code, signal) => {
      if (!stopping && usable && me === child) options.onExit?.(code, signal)
    })
    // Last resort for a normal exit or process.exit(): 'exit' handlers must be synchronous.
    process.on('exit', killNow)
    try {
      await waitUntilUsable(port, me, logFile, options.startTimeoutMs ?? 60_000)
      usable = true
    } catch (err) {
      await stop()
      throw err
    }
  }

  const stop = async () => {
    stopping = true
    process.off('exit', killNow)
    const c = child
    if (!c || c.exitCode !== null || c.signalCode !== null) return
    const exited = new Promise((ok) => c.once('exit', ok))
    c.kill('SIGTERM') // Kafka's controlled shutdown: flushes and closes segments cleanly
    const timer = setTimeout(() => c.kill('SIGKILL'), 15_000)
    await exited
    clearTimeout(timer)
  }

  await launch()
  progress({ step: 'broker-up', port })
  return {
    brokers: [`127.0.0.1:${port}`],
    port,
    saslBrokers: saslPort ? [`127.0.0.1:${saslPort}`] : [],
    dataDir,
    logFile,
    get pid() {
      return child!.pid!
    },
    stop,
    async restart() {
      await stop()
      await assertPortFree(port)
      await launch()
    },
  }
}

/**
 * The JVM dies with this Node process (dev/tied-process.ts) and gets a process group of its own
 * (detached): a terminal's Ctrl-C signals the whole foreground group, and Kafka must not stop
 * before the services using it have (stop() does it).
 */
function spawnTiedToUs(java: string, args: string[], logFd: number): ChildProcess {
  return spawnTied(java, args, { stdio: ['ignore', logFd, logFd], detached: true })
}

/** Polls until a real client can use the broker: metadata, then create and delete a topic. */
async function waitUntilUsable(port: number, child: ChildProcess, logFile: string, timeoutMs: number): Promise<void> {
  const kafka = new Kafka({
    clientId: 'kafka-launcher-probe',
    brokers: [`127.0.0.1:${port}`],
    logLevel: logLevel.NOTHING,
    connectionTimeout: 1_000,
    requestTimeout: 5_000,
    retry: { retries: 2, initialRetryTime: 100 },
  })
  const topic = `launcher-probe-${randomBytes(4).toString('hex')}`
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      const log = logTail(logFile)
      if (/Address already in use/.test(log) && log.includes(`:${port}`)) throw portInUse(port)
      throw new KafkaLaunchError(
        `The Kafka JVM exited during startup (code ${child.exitCode}, signal ${child.signalCode}). Log ${logFile}:\n${log}`,
      )
    }
    const admin = kafka.admin()
    try {
      await admin.connect()
      await admin.describeCluster()
      await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true })
      await admin.deleteTopics({ topics: [topic] })
      return
    } catch (err) {
      lastError = err
    } finally {
      await admin.disconnect().catch(() => {})
    }
    if (Date.now() > deadline) {
      throw new KafkaLaunchError(
        `Kafka on 127.0.0.1:${port} was not usable within ${timeoutMs / 1000}s (last client error: ${String(lastError)}). ` +
          `Log ${logFile}:\n${logTail(logFile)}`,
      )
    }
    await sleep(250)
  }
}
