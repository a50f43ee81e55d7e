// A small HTTP upstream for proxy tests: answers JSON naming itself, records what it received
// (method, url, headers, body length and hash) and can be switched to fail (500) or hang.
import { createHash } from 'node:crypto'
import http from 'node:http'
import type { AddressInfo } from 'node:net'

export interface Received {
  method: string
  url: string
  headers: http.IncomingHttpHeaders
  bodyLength: number
  bodySha256: string
}

export interface StubUpstream {
  name: string
  url: string
  port: number
  /** What clients sent through the proxy. */
  received: Received[]
  /** The proxy's own periodic parity checks (GET /internal/parity, rollout/parity), kept apart from client traffic. */
  internal: Received[]
  /** 'ok' answers 200; 'fail' answers 500; 'hang' never answers. */
  mode: 'ok' | 'fail' | 'hang'
  /** Extra response headers for every answer. */
  responseHeaders: Record<string, string>
  close(): Promise<void>
  /** Stops listening and drops every connection (a killed process), keeping the port for restart(). */
  kill(): Promise<void>
  restart(): Promise<void>
}

export async function startStubUpstream(name: string, port = 0): Promise<StubUpstream> {
  const sockets = new Set<import('node:net').Socket>()
  const stub: StubUpstream = {
    name,
    url: '',
    port,
    received: [],
    internal: [],
    mode: 'ok',
    responseHeaders: {},
    close: async () => {},
    kill: async () => {},
    restart: async () => {},
  }
  const server = http.createServer((req, res) => {
    const hash = createHash('sha256')
    let length = 0
    req.on('data', (chunk: Buffer) => {
      length += chunk.length
      hash.update(chunk)
    })
    req.on('end', () => {
      const received = { method: req.method!, url: req.url!, headers: req.headers, bodyLength: length, bodySha256: hash.digest('hex') }
      ;(req.url?.startsWith('/internal/') ? stub.internal : stub.received).push(received)
      if (stub.mode === 'hang') return
      const status = stub.mode === 'fail' ? 500 : req.url?.startsWith('/status/') ? Number(req.url.slice(8, 11)) : 200
      const body = JSON.stringify(status >= 500 ? { error: `${name} failed` } : { upstream: name, method: req.method, url: req.url, bodyLength: length })
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...stub.responseHeaders })
      res.end(req.method === 'HEAD' ? undefined : body)
    })
  })
  server.on('connection', (s) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  const listen = (p: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(p, '127.0.0.1', () => {
        server.off('error', reject)
        resolve()
      })
    })
  await listen(port)
  stub.port = (server.address() as AddressInfo).port
  stub.url = `http://127.0.0.1:${stub.port}`
  stub.kill = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve())
      for (const s of sockets) s.destroy()
    })
  stub.restart = () => listen(stub.port)
  stub.close = async () => {
    if (server.listening) await stub.kill()
  }
  return stub
}
