// ESLint flat config. Baseline from the Temporal TypeScript SDK and samples: typescript-eslint's
// recommended rules, type-aware checks on .ts files, and workflow files kept deterministic by
// allowing them only @temporalio/workflow, the pure runbook and each other (type imports aside).
import js from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import { createNodeResolver, importX } from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';

export default defineConfig(
  // .tmp and coverage are git-ignored scratch (tool venvs, reports); sandbox/kube-apiserver is a Go build tree.
  globalIgnores(['node_modules/', 'dist/', 'coverage/', '.tmp/', 'sandbox/kube-apiserver/']),
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    plugins: { 'import-x': importX },
    settings: {
      // tsconfig uses moduleResolution Bundler: extensionless imports of .ts files and directory index files.
      'import-x/resolver-next': [createNodeResolver({ extensions: ['.ts', '.js', '.json'] })],
      // Files import-x parses to follow imports (no-cycle); its default covers .js only.
      'import-x/extensions': ['.ts', '.js'],
    },
    rules: {
      eqeqeq: ['error', 'always'],
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/consistent-type-imports': [
        'error',
        { prefer: 'type-imports', fixStyle: 'inline-type-imports' },
      ],
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' },
      ],
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
    },
  },
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: {
        projectService: true,
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      // A promise nobody awaits loses its errors; in a workflow it also hides a step from the history's order.
      '@typescript-eslint/no-floating-promises': 'error',
    },
  },
  {
    files: ['workflows/**/*.ts'],
    rules: {
      // Workflow code is replayed and must be deterministic: no I/O, no clocks, no activity or client code.
      // Only @temporalio/workflow, ./<module>, ../runbook/<module> and type-only imports of anything else.
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^(?!@temporalio/workflow$|\\./[^/]+$|\\.\\./runbook/[^/]+$)',
              allowTypeImports: true,
              message:
                'workflow code may import only @temporalio/workflow, ./<module> and ../runbook/<module> (use `import type` for anything else): Node builtins, @temporalio/activity|client|worker, execa and ../activities break determinism or the workflow bundle.',
            },
          ],
        },
      ],
    },
  },
  {
    // Plain JS (this file): no type information to check against.
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    extends: [tseslint.configs.disableTypeChecked],
  }
);
