// Components validate their own options where they are created (as Fastify plugins do), so a
// bad value fails at start naming the component and the field, whoever built the options.
import { type Static, type TSchema } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { ConfigError } from '../../lib/config.ts'

export function checkOptions<T extends TSchema>(schema: T, value: unknown, component: string): Static<T> {
  const problems = [...Value.Errors(schema, value)].slice(0, 5).map((e) => `${e.path || '/'}: ${e.message}`)
  if (problems.length) throw new ConfigError(`${component}: invalid options: ${problems.join('; ')}`)
  return value as Static<T>
}
