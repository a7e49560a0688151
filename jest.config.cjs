/** jest runs the ESM specs in __test__/ against real services (see scripts/services.sh). */
module.exports = {
  testEnvironment: 'node',
  testMatch: ['<rootDir>/__test__/**/*.spec.mjs'],
  // the example app has its own node_modules (motia and its dependencies): keep jest's module map out of it
  modulePathIgnorePatterns: ['<rootDir>/examples/'],
  transform: {},
  testTimeout: 60000,
  maxWorkers: 1,
  // A suite that leaves a handle open (a broker that never answered a close) must fail that suite, never hold
  // the whole run: CI once waited 80 minutes after every test had finished. `--detectOpenHandles` finds them.
  forceExit: true,
}
