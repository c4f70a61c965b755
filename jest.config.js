// Jest runs the TypeScript sources through @swc/jest (no type-checking: `npm run typecheck` does that) as ES
// modules, because slonik is ESM-only; package.json runs jest with --experimental-vm-modules for that.
const common = {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  transform: {
    '^.+\\.ts$': ['@swc/jest', { jsc: { parser: { syntax: 'typescript' }, target: 'es2024' }, module: { type: 'es6' } }],
  },
};

export default {
  // Two projects, so that a run of pure-logic tests alone (`npm test -- test/unit`) starts no PostgreSQL: jest
  // runs a project's globalSetup only when at least one of its test files is selected.
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.test.ts'] },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/test/**/*.test.ts'],
      testPathIgnorePatterns: ['<rootDir>/test/unit/'],
      globalSetup: '<rootDir>/test/helpers/global-setup.ts',
      globalTeardown: '<rootDir>/test/helpers/global-teardown.ts',
    },
  ],
  reporters: ['default', '<rootDir>/test/helpers/summary-reporter.js'],
  // Global, not per project: jest reads testTimeout from here only.
  testTimeout: 60_000,
  // Process tests start real servers; two test files at a time fit a 2-core machine.
  maxWorkers: 2,
};
