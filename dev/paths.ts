import { fileURLToPath } from 'node:url'

/** The repository's root folder, wherever the command was started from. */
export const REPO_ROOT = fileURLToPath(new URL('../', import.meta.url))
