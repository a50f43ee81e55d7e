// ESLint (flat config): the recommended rules of ESLint and typescript-eslint, no style rules
// (formatting is left to the author). `npm run lint`, part of `npm test`.
import js from '@eslint/js'
import globals from 'globals'
import tseslint from 'typescript-eslint'

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
