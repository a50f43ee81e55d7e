// The Node ceiling for `npm run bench`: node:http + one undici Pool per upstream, a random
// split, no features (no flags, breakers, metrics, limits or logs). Hop-by-hop headers are
// dropped both ways, as any correct proxy must.
// Usage: node bench/peers/bare-proxy.ts <port> <legacy-url> <target-url> <target-percent>
import http from 'node:http'
import { Pool, type Dispatcher } from 'undici'

const [port, legacyUrl, targetUrl, percent] = process.argv.slice(2)
const legacy = new Pool(legacyUrl!, { connections: 128 })
const target = new Pool(targetUrl!, { connections: 128 })
const share = Number(percent) / 100
const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'proxy-connection', 'host'])

http
  .createServer((req, res) => {
    const headers: Record<string, string | string[]> = {}
    for (const name in req.headers) if (!HOP.has(name)) headers[name] = req.headers[name]!
    const pool = Math.random() < share ? target : legacy
    const body = req.headers['content-length'] || req.headers['transfer-encoding'] ? req : undefined
    pool
      .stream({ path: req.url!, method: req.method as Dispatcher.HttpMethod, headers, body }, ({ statusCode, headers: upstream }) => {
        for (const name in upstream) if (!HOP.has(name)) res.setHeader(name, upstream[name]!)
        res.statusCode = statusCode
        return res
      })
      .catch(() => {
        if (!res.headersSent) res.writeHead(502).end()
        else res.destroy()
      })
  })
  .listen(Number(port), '127.0.0.1')
