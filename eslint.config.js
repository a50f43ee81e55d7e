// ESLint (flat config): the recommended rules of ESLint and typescript-eslint, no style rules
// (formatting is left to the author). `npm run lint`, part of `npm test`.
import js from '@eslint/js'
import globals from 'globals'
import tseslint from 'typescript-eslint'

// proxy/ is layered by concern, lowest first; a folder imports only from folders below it (and
// lib/), never from one above, nor from the modules at the top that put the proxy together. The
// model (route map, option schemas) thus imports no runtime module. The one exception: the type
// of the parsed environment (config.ts), which components read their settings from.
const PROXY_LAYERS = ['model', 'observability', 'flags', 'edge', 'routing', 'forward', 'rollout', 'admin']
const PROXY_TOP = ['app.ts', 'server.ts', 'workers.ts', 'proxy-routes.ts']
const proxyLayering = PROXY_LAYERS.map((layer, i) => ({
  files: [`proxy/${layer}/**/*.ts`],
  rules: {
    '@typescript-eslint/no-restricted-imports': ['error', {
      patterns: [
        {
          group: [...PROXY_LAYERS.slice(i + 1).map((higher) => `**/${higher}/**`), ...PROXY_TOP.map((top) => `**/${top}`)],
          message: `proxy/${layer}/ sits below ${PROXY_LAYERS.slice(i + 1).join(', ')} and the top modules: it may not import them (see proxy/README.md, "Layout").`,
        },
        { group: ['**/config.ts', '!**/lib/**'], allowTypeImports: true, message: 'only the type of the parsed environment may be imported from proxy/config.ts below the top' },
      ],
    }],
  },
}))

export default tseslint.config(
  { ignores: ['node_modules/', '.cache/', 'coverage/'] },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    rules: {
      // `catch {}` is how this code says "a failure here is expected and harmless".
      'no-empty': ['error', { allowEmptyCatch: true }],
      // `_name` marks a parameter or binding kept on purpose (a signature, a destructured rest).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true }],
    },
  },
  ...proxyLayering,
  {
    // The migration console's ES modules run in the browser.
    files: ['proxy/admin/console/**/*.js'],
    languageOptions: { globals: globals.browser },
  },
  {
    // Tests walk parsed YAML/JSON documents (charts, compose, workflows) whose shape is checked at run time.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
)
