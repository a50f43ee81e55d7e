// A benchmark upstream: plain Node http answering every request with the same ~1 KB JSON.
// Usage: node bench/upstream-stub.ts <port> <name>
import http from 'node:http'

const port = Number(process.argv[2])
const name = process.argv[3] ?? 'stub'
const movies = Array.from({ length: 6 }, (_, i) => ({
  id: i + 1,
  title: `Movie number ${i + 1}`,
  description: 'A film the benchmark returns over and over again.'.padEnd(70, '.'),
  genres: ['Drama', 'Sci-Fi'],
  rating: 7.5,
}))
const body = Buffer.from(JSON.stringify({ upstream: name, movies }))
const headers = { 'content-type': 'application/json', 'content-length': String(body.length) }

http
  .createServer((req, res) => {
    // /download?mb=N: N MB of bytes, written only as fast as the reader takes them (edge-hostile.ts).
    if (req.url?.includes('/download')) return download(res, Number(new URL(req.url, 'http://x').searchParams.get('mb') ?? 200))
    req.resume()
    req.on('end', () => {
      res.writeHead(200, headers)
      res.end(body)
    })
  })
  .listen(port, '127.0.0.1', () => console.log(`${name} listening on ${port} (${body.length} bytes per answer)`))

function download(res: http.ServerResponse, mb: number): void {
  const chunk = Buffer.alloc(64 * 1024, 7)
  let left = (mb * 1024 * 1024) / chunk.length
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(left * chunk.length) })
  const pump = () => {
    while (left > 0) {
      left--
      if (!res.write(chunk)) return void res.once('drain', pump)
    }
    res.end()
  }
  pump()
}
