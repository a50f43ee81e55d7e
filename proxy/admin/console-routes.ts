// The migration console: a static page at /admin/ (proxy/admin/console/: plain ES modules and CSS, no
// build step). The page and its files hold no secret and are served without the admin token;
// every API call the page makes carries the token the user typed (kept in sessionStorage).
// A strict Content-Security-Policy: only this origin's files, no inline script or style.
import { fileURLToPath } from 'node:url'
import fastifyStatic from '@fastify/static'
import type { FastifyInstance } from 'fastify'

export const CONSOLE_ROOT = fileURLToPath(new URL('./console/', import.meta.url))
export const CONSOLE_PATH = '/admin/'

export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ')

const SECURITY_HEADERS = {
  'content-security-policy': CONSOLE_CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  // No fingerprinted file names: the browser revalidates each file (ETag / Last-Modified → 304),
  // so a new proxy version is never mixed with an old page.
  'cache-control': 'no-cache',
}

export async function consoleRoutes(app: FastifyInstance): Promise<void> {
  await app.register(fastifyStatic, {
    root: CONSOLE_ROOT,
    prefix: CONSOLE_PATH,
    // One route per shipped file (and /admin/ for index.html): /admin/* stays the admin API's.
    wildcard: false,
    decorateReply: false,
    cacheControl: false,
    etag: true,
    lastModified: true,
    setHeaders: (reply: { headers(h: Record<string, string>): unknown }) => reply.headers(SECURITY_HEADERS),
  })
}
