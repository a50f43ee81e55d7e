// What a developer sees when the machine lacks something: each error says what to install or set.
// Real conditions, no mocks: PATH without java/mvn, and a real Maven whose downloads are refused.
import { accessSync, constants, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { afterEach, beforeEach, expect, it } from 'vitest'
import { startKafka } from '../../dev/kafka/launcher.ts'

const savedEnv = { ...process.env }
let scratch: string

beforeEach(() => {
  scratch = mkdtempSync(join(tmpdir(), 'kafka-errors-'))
})
afterEach(() => {
  process.env = { ...savedEnv } // the launcher reads PATH and friends at call time
  rmSync(scratch, { recursive: true, force: true })
})

/** A fresh PATH directory holding links to only the given real executables. */
function pathWith(...tools: string[]): string {
  const bin = join(scratch, 'bin')
  mkdirSync(bin)
  for (const tool of tools) {
    const real = savedEnv.PATH!.split(delimiter).map((dir) => join(dir, tool)).find((file) => {
      try {
        accessSync(file, constants.X_OK)
        return true
      } catch {
        return false
      }
    })
    if (!real) throw new Error(`${tool} is needed on PATH for this test`)
    symlinkSync(real, join(bin, tool))
  }
  return bin
}

it('no java on PATH: says to install a JDK', async () => {
  delete process.env.JAVA_HOME
  process.env.PATH = pathWith()
  await expect(startKafka()).rejects.toThrow(/no `java` is on PATH.*apt-get install -y openjdk-17-jre-headless/)
})

it('jars missing and no mvn: says to install Maven or point KAFKA_JARS_DIR at jars', async () => {
  delete process.env.JAVA_HOME
  process.env.PATH = pathWith('java')
  process.env.KAFKA_JARS_DIR = join(scratch, 'libs')
  await expect(startKafka()).rejects.toThrow(/no `mvn` is on PATH.*apt-get install -y maven.*KAFKA_JARS_DIR/s)
})

it('jars missing and Maven Central unreachable: says the first start needs it, with Maven\'s own words', { timeout: 60_000 }, async () => {
  // An empty local Maven repository and an HTTPS proxy on a closed port: Maven really tries, and is refused.
  const closed = createServer()
  await new Promise<void>((ok) => closed.listen(0, '127.0.0.1', ok))
  const { port } = closed.address() as { port: number }
  await new Promise((ok) => closed.close(ok))
  process.env.KAFKA_JARS_DIR = join(scratch, 'libs')
  process.env.MAVEN_OPTS = `-Dmaven.repo.local=${join(scratch, 'm2')} -Dhttps.proxyHost=127.0.0.1 -Dhttps.proxyPort=${port}`
  const error = await startKafka().catch((err: Error) => err)
  expect(error).toBeInstanceOf(Error)
  expect((error as Error).message).toMatch(/Could not download the Kafka .* jars with Maven.*needs Maven Central/s)
  expect((error as Error).message).toMatch(/Connect(ion)? .*refused|Connection refused/i)
})
