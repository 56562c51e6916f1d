/**
 * What runs in each sandbox cluster, one line per cluster, for the demo on real nodes:
 * `worker-1: nacos-operator v0.19.2 ready, skoala-agent v0.19.2 ready, ...` (Jobs' pods left out).
 */
import { execa } from 'execa';
import type { Sandbox } from '../../sandbox';

interface PodList {
  items: {
    metadata: { name: string; labels?: Record<string, string>; deletionTimestamp?: string };
    spec: { containers: { image: string }[] };
    status: { phase?: string; containerStatuses?: { ready: boolean; restartCount?: number }[] };
  }[];
}

export async function podLines(sandbox: Sandbox, namespace: string): Promise<string[]> {
  const clusters = [sandbox.controlPlane, ...sandbox.workers];
  return Promise.all(
    clusters.map(async (c) => {
      const r = await execa(
        sandbox.tools.kubectl,
        ['--kubeconfig', c.kubeconfig, '--context', c.context, 'get', 'pods', '-n', namespace, '-o', 'json'],
        { reject: false }
      );
      if (r.exitCode !== 0) return `${c.name}: pods not readable (${r.stderr.split('\n')[0] ?? ''})`;
      const pods = (JSON.parse(r.stdout) as PodList).items
        .filter((p) => p.status.phase !== 'Succeeded')
        .map((p) => {
          const tag = p.spec.containers[0]?.image.split(':').at(-1) ?? '?';
          const st = p.status.containerStatuses ?? [];
          const restarts = st.reduce((n, s) => n + (s.restartCount ?? 0), 0);
          const state = p.metadata.deletionTimestamp
            ? 'terminating'
            : st.length > 0 && st.every((s) => s.ready)
              ? 'ready'
              : `not ready${restarts ? `, ${restarts} restart(s)` : ''}`;
          return `${p.metadata.labels?.['app.kubernetes.io/name'] ?? p.metadata.name} ${tag} ${state}`;
        })
        .sort();
      return `${c.name}: ${pods.join(', ') || 'no pods'}`;
    })
  );
}

/** The pod lines once no pod is still coming up (or after timeoutMs: then as they are). */
export async function settledPodLines(sandbox: Sandbox, namespace: string, timeoutMs = 30_000): Promise<string[]> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const lines = await podLines(sandbox, namespace);
    if (Date.now() > end || !lines.some((l) => /not ready|terminating/.test(l))) return lines;
    await new Promise((r) => setTimeout(r, 500));
  }
}
