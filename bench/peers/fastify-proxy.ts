// What a team writes first, for `npm run bench`: Fastify + @fastify/http-proxy, a random split,
// logs off, no other feature.
// Usage: node bench/peers/fastify-proxy.ts <port> <legacy-url> <target-url> <target-percent>
import proxy from '@fastify/http-proxy'
import Fastify from 'fastify'

const [port, legacyUrl, targetUrl, percent] = process.argv.slice(2)
const share = Number(percent) / 100
const app = Fastify({ logger: false })
await app.register(proxy, {
  upstream: legacyUrl!,
  replyOptions: { getUpstream: () => (Math.random() < share ? targetUrl! : legacyUrl!) },
})
await app.listen({ port: Number(port), host: '127.0.0.1' })
