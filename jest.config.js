// Jest runs the TypeScript sources through @swc/jest (no type-checking: `npm run typecheck` does that) as ES
// modules, because slonik is ESM-only; package.json runs jest with --experimental-vm-modules for that.
export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  transform: {
    '^.+\\.ts$': ['@swc/jest', { jsc: { parser: { syntax: 'typescript' }, target: 'es2024' }, module: { type: 'es6' } }],
  },
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  globalSetup: '<rootDir>/test/helpers/global-setup.ts',
  globalTeardown: '<rootDir>/test/helpers/global-teardown.ts',
  reporters: ['default', '<rootDir>/test/helpers/summary-reporter.js'],
  testTimeout: 60_000,
  // Process tests start real servers; two test files at a time fit a 2-core machine.
  maxWorkers: 2,
};
