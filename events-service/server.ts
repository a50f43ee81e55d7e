import { runService } from '../lib/server.ts'
import { buildApp } from './app.ts'
import { loadConfig } from './config.ts'

await runService('events-service', () => loadConfig(), (config, logger) => ({ app: buildApp(config, { logger }) }))
