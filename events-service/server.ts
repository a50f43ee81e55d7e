import { runService } from '../lib/server.ts'
import { loadConfig } from './config.ts'

await runService('events-service', () => loadConfig(), async (config, logger, tracing) => {
  // Imported once tracing has started (lib/server.ts), as every service does.
  const { buildApp } = await import('./app.ts')
  return { app: buildApp(config, { logger, tracing }) }
})
