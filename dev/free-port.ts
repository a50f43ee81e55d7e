// A free TCP port on 127.0.0.1 for a server that will listen on it a moment later.
//
// Not port 0's pick: the kernel hands those out of the ephemeral range (32768-60999 on Linux),
// the same range every outgoing connection takes its local port from, so between "free" and
// "listening" a client socket of a parallel test (Kafka, PostgreSQL, HTTP) can take it
// (EADDRINUSE, seen on CI). Ports below that range are only ever taken by listeners.
import net from 'node:net'

const LOW = 20_000
const HIGH = 32_000

function tryListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer()
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}

export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = LOW + Math.floor(Math.random() * (HIGH - LOW))
    if (await tryListen(port)) return port
  }
  throw new Error(`no free port found between ${LOW} and ${HIGH}`)
}
