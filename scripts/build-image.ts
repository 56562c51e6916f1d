/**
 * `npm run image`: the worker's container image from ./Dockerfile, built with podman on a Debian
 * base made from package registries (sandbox/worker-image.ts; no image registry needed). Prints
 * the image's reference and how long the build took; nothing is built when the sources did not change.
 */
import { buildWorkerImage } from '../sandbox/worker-image';

const t0 = Date.now();
try {
  const ref = await buildWorkerImage({ log: (line) => console.log(line) });
  console.log(`${ref} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
} catch (err) {
  console.error(`image: ${(err instanceof Error ? err.message : String(err)).split('\n')[0]}`);
  process.exit(1);
}
