/** jest runs the ESM specs in __test__/ against real services (see scripts/services.sh). */
module.exports = {
  testEnvironment: 'node',
  testMatch: ['<rootDir>/__test__/**/*.spec.mjs'],
  transform: {},
  testTimeout: 60000,
  maxWorkers: 1,
}
