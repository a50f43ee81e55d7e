// Runs a real Unleash server (npm unleash-server 7) for the proxy tests, as a child process:
//   UNLEASH_DB_URL, PORT, ADMIN_TOKEN, CLIENT_TOKEN from the environment.
// The suite starts it on a throw-away database and stops it with SIGTERM.
import { start } from 'unleash-server'

const db = new URL(process.env.UNLEASH_DB_URL!)
const unleash = await start({
  db: {
    host: db.hostname,
    port: Number(db.port || 5432),
    user: decodeURIComponent(db.username),
    password: decodeURIComponent(db.password),
    database: db.pathname.slice(1),
    ssl: false,
  },
  server: { port: Number(process.env.PORT), host: '127.0.0.1', gracefulShutdownEnable: true },
  authentication: {
    initApiTokens: [
      { environment: '*', projects: ['*'], secret: process.env.ADMIN_TOKEN!, type: 'admin', tokenName: 'suite-admin' },
      { environment: 'development', projects: ['default'], secret: process.env.CLIENT_TOKEN!, type: 'backend', tokenName: 'proxy' },
    ],
  },
  versionCheck: { enable: false },
  telemetry: false,
  logLevel: 'warn',
} as Parameters<typeof start>[0])

const stop = async () => {
  await unleash.stop()
  process.exit(0)
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
