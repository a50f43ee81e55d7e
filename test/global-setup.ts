// Runs once per `vitest run`: prepares the real infrastructure every suite shares and
// hands its addresses to the tests through `inject()` (see test/helpers/infra.ts).
import type { TestProject } from 'vitest/node'
import { createTemplateDatabase } from './helpers/pg-admin.ts'

declare module 'vitest' {
  export interface ProvidedContext {
    pgAdminUrl: string
    pgTemplateDb: string
    redisUrl: string
  }
}

export default async function setup(project: TestProject) {
  const pgAdminUrl = process.env.TEST_PG_ADMIN_URL ?? 'postgres://postgres:postgres@127.0.0.1:5432/postgres'
  const redisUrl = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'
  const template = await createTemplateDatabase(pgAdminUrl)
  project.provide('pgAdminUrl', pgAdminUrl)
  project.provide('pgTemplateDb', template.name)
  project.provide('redisUrl', redisUrl)

  return async () => {
    await template.drop()
  }
}
