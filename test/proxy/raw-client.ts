// A raw TCP client for hostile-client tests: writes exactly the bytes given (no HTTP library
// to fix them up), can stall, trickle or vanish, and reads whatever comes back.
import net from 'node:net'

export interface RawAnswer {
  /** Everything the server sent until it closed, or until `waitMs`. */
  text: string
  status: number | undefined
  headers: Record<string, string>
  body: string
  /** True when the server closed the connection. */
  closed: boolean
}

export function parseAnswer(text: string, closed: boolean): RawAnswer {
  const end = text.indexOf('\r\n\r\n')
  const head = end < 0 ? text : text.slice(0, end)
  const [statusLine = '', ...lines] = head.split('\r\n')
  const headers: Record<string, string> = {}
  for (const line of lines) {
    const at = line.indexOf(':')
    if (at > 0) headers[line.slice(0, at).trim().toLowerCase()] = line.slice(at + 1).trim()
  }
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1]
  return { text, status: status ? Number(status) : undefined, headers, body: end < 0 ? '' : text.slice(end + 4), closed }
}

/** Opens a connection to 127.0.0.1:port. */
export function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => resolve(socket))
    socket.once('error', reject)
  })
}

/**
 * Sends `bytes` and collects the answer until the server closes the connection, a complete
 * response (Content-Length) arrived, or `waitMs` passed (a generous bound on a hang).
 */
export async function rawRequest(port: number, bytes: string | Buffer, waitMs = 10_000): Promise<RawAnswer> {
  const socket = await connect(port)
  socket.on('error', () => {})
  socket.write(bytes)
  return readAnswer(socket, waitMs)
}

/** Reads from an open socket until close, a complete Content-Length response, or `waitMs`; then destroys it. */
export function readAnswer(socket: net.Socket, waitMs = 10_000): Promise<RawAnswer> {
  return new Promise((resolve) => {
    let text = ''
    const done = (closed: boolean) => {
      clearTimeout(timer)
      socket.off('data', onData)
      socket.destroy()
      resolve(parseAnswer(text, closed))
    }
    const onData = (chunk: Buffer) => {
      text += chunk.toString('latin1')
      const answer = parseAnswer(text, false)
      const length = Number(answer.headers['content-length'])
      if (answer.status !== undefined && text.includes('\r\n\r\n') && Number.isFinite(length) && Buffer.byteLength(answer.body, 'latin1') >= length) done(false)
    }
    const timer = setTimeout(() => done(false), waitMs)
    socket.on('data', onData)
    socket.once('close', () => done(true))
  })
}

/** Waits until `socket` is closed by the server, bounded; resolves false on timeout. */
export function closedWithin(socket: net.Socket, ms: number): Promise<boolean> {
  if (socket.destroyed) return Promise.resolve(true)
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms)
    socket.once('close', () => {
      clearTimeout(timer)
      resolve(true)
    })
  })
}
