// Request bodies are read whole, up to the body limit, before an upstream connection is taken
// (as nginx's proxy_request_buffering does): a slow, stalled or vanishing client then costs the
// upstreams nothing. A body that stalls for CLIENT_BODY_TIMEOUT_MS between two reads gets 408;
// a body over the limit gets 413; a client that disconnects mid-body just goes away.
import type { FastifyInstance } from 'fastify'
import type { IncomingMessage } from 'node:http'
import { errors } from '../../lib/errors.ts'

export interface RequestBodyOptions {
  limit: number
  idleTimeoutMs: number
}

/** Every content type (and none) is buffered as bytes and forwarded as it came. */
export function bufferRequestBodies(app: FastifyInstance, opts: RequestBodyOptions): void {
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (request, payload, done) => {
    const declared = request.headers['content-length']
    if (declared !== undefined && Number(declared) > opts.limit) return done(new errors.BODY_TOO_LARGE(opts.limit), undefined)
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
    if (size > opts.limit) return finish(new errors.BODY_TOO_LARGE(opts.limit))
    chunks.push(chunk)
    timer.refresh()
  }
  const onEnd = () => finish(null)
  const onGone = () => finish(new errors.CLIENT_GONE())
  const timer = setTimeout(() => finish(new errors.BODY_TIMEOUT(opts.idleTimeoutMs)), opts.idleTimeoutMs)
  payload.on('data', onData).on('end', onEnd).on('error', onGone).on('close', onGone)
}
