/** A real Temporal dev server for a test file. */
export { startDevServer as startTemporal } from '../../scripts/lib/dev-server';
