// Installs (or finds in the cache outside the checkout) every binary the tests and the demo use:
// temporal, helm, kubectl, kine, kube-apiserver, kubelet / kube-controller-manager / kube-scheduler,
// crane, registry, temporal-server (+ sql tool and schemas), temporal-test-server (time skipping),
// the fixture images real nodes run, and the Debian packages the tests use (chromium,
// docker-compose, postgresql, containerd, runc, CNI plugins, gcc). Run first by `npm test`; a warm
// run takes ~1 s.
import { ensureFixtureImages } from '../sandbox/images';
import { ALL_TOOLS, ensureTools } from '../sandbox/tools';
import { ensureSystemPackages } from './lib/system-packages';

try {
  const t0 = Date.now();
  // Debian's packages: installed when root, else one line naming them.
  await ensureSystemPackages((line) => console.log(line));
  const paths = await ensureTools({ only: ALL_TOOLS });
  // Built once here, so test files starting real nodes side by side never build them at once.
  await ensureFixtureImages(paths, (line) => console.log(line));
  for (const [tool, path] of Object.entries(paths)) console.log(`${tool.padEnd(18)} ${path}`);
  console.log(`tools ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
} catch (err) {
  // One clear line: execa errors carry the failing command and its stderr in the message.
  const msg = err instanceof Error ? (err.message.split('\n').find((l) => l.trim()) ?? err.message) : String(err);
  console.error(`setup-tools failed: ${msg}`);
  process.exitCode = 1;
}
