// A TCP forwarder the test can cut: clients connect to it instead of the real server, and
// `cut()` makes the server "go away" (open connections reset, new ones refused) until `restore()`.
import net from 'node:net'

export interface TcpForwarder {
  port: number
  /** Connections stay open but nothing more gets through in either direction (a hung server). */
  stall(): void
  /** Everything that passes, in either direction, is held this long first (a slow network). */
  delay(ms: number): void
  cut(): Promise<void>
  restore(): Promise<void>
  close(): Promise<void>
}

export async function startTcpForwarder(targetHost: string, targetPort: number): Promise<TcpForwarder> {
  const sockets = new Set<net.Socket>()
  let stalled = false
  let delayMs = 0
  let server: net.Server | undefined
  let port = 0

  const listen = () =>
    new Promise<void>((resolve, reject) => {
      server = net.createServer((client) => {
        const upstream = net.connect(targetPort, targetHost)
        for (const s of [client, upstream]) {
          sockets.add(s)
          s.on('close', () => sockets.delete(s))
          s.on('error', () => s.destroy())
        }
        // Forward by hand rather than pipe(), so stall() can swallow what arrives.
        const pass = (to: net.Socket) => (chunk: Buffer) => {
          if (stalled) return
          if (delayMs) setTimeout(() => to.destroyed || to.write(chunk), delayMs)
          else to.write(chunk)
        }
        client.on('data', pass(upstream))
        upstream.on('data', pass(client))
        client.on('close', () => upstream.destroy())
        upstream.on('close', () => client.destroy())
      })
      server.once('error', reject)
      server.listen(port, '127.0.0.1', () => {
        port = (server!.address() as net.AddressInfo).port
        resolve()
      })
    })

  const stop = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.resetAndDestroy()
      if (!server) return resolve()
      server.close(() => resolve())
      server = undefined
    })

  await listen()
  return {
    get port() {
      return port
    },
    stall: () => {
      stalled = true
    },
    delay: (ms) => {
      delayMs = ms
    },
    cut: stop,
    restore: async () => {
      stalled = false
      await listen()
    },
    close: stop,
  }
}
