// Request bodies are read whole, up to the body limit, before an upstream connection is taken
// (as nginx's proxy_request_buffering does): a slow, stalled or vanishing client then costs the
// upstreams nothing. A body that stalls for CLIENT_BODY_TIMEOUT_MS between two reads gets 408;
// a body over the limit gets 413; a client that disconnects mid-body just goes away.
import type { FastifyInstance } from 'fastify'
import type { IncomingMessage } from 'node:http'
import { HttpError } from '../lib/http/errors.ts'

// The connection is closed after these answers: the rest of the body is never read.
const CLOSE = { connection: 'close' }

export const bodyTooLarge = (limit: number) => new HttpError(413, `request body is larger than ${limit} bytes`, CLOSE)
const bodyTimeout = (ms: number) => new HttpError(408, `request body not received: nothing arrived for ${ms} ms`, CLOSE)
/** The client went away; nobody reads this answer (499 is nginx's "client closed request", for logs and metrics). */
export const clientGone = () => new HttpError(499, 'client closed the request')

export interface RequestBodyOptions {
  limit: number
  idleTimeoutMs: number
}

/** Every content type (and none) is buffered as bytes and forwarded as it came. */
export function bufferRequestBodies(app: FastifyInstance, opts: RequestBodyOptions): void {
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (request, payload, done) => {
    const declared = request.headers['content-length']
    if (declared !== undefined && Number(declared) > opts.limit) return done(bodyTooLarge(opts.limit), undefined)
    readBody(payload, opts, done)
  })
}

function readBody(payload: IncomingMessage, opts: RequestBodyOptions, done: (err: Error | null, body?: Buffer) => void): void {
  const chunks: Buffer[] = []
  let size = 0
  let finished = false
  const finish = (error: Error | null) => {
    if (finished) return
    finished = true
    clearTimeout(timer)
    payload.off('data', onData).off('end', onEnd).off('error', onGone).off('close', onGone)
    if (error) payload.pause()
    done(error, error ? undefined : Buffer.concat(chunks, size))
  }
  const onData = (chunk: Buffer) => {
    size += chunk.length
    if (size > opts.limit) return finish(bodyTooLarge(opts.limit))
    chunks.push(chunk)
    timer.refresh()
  }
  const onEnd = () => finish(null)
  const onGone = () => finish(clientGone())
  const timer = setTimeout(() => finish(bodyTimeout(opts.idleTimeoutMs)), opts.idleTimeoutMs)
  payload.on('data', onData).on('end', onEnd).on('error', onGone).on('close', onGone)
}
