/**
 * Where the worker process spends its CPU: a V8 CPU profile (`node --cpu-prof`) summed by function
 * (self time) and by area (the workflow sandbox, the Temporal SDK, process spawning, ...).
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileSummary {
  totalMs: number;
  /** CPU time the profile saw (idle excluded), ms. */
  busyMs: number;
  top: { name: string; selfMs: number }[];
  areas: { area: string; selfMs: number }[];
}

/** The area a function belongs to, from its script URL. */
export function areaOf(url: string, fn: string): string {
  if (fn === '(idle)' || fn === '(program)' || fn === '(garbage collector)') return fn;
  if (url.includes('workflow-bundle') || url.includes('/workflows/')) return 'workflow code (in the sandbox)';
  if (url.includes('@temporalio/worker')) return 'Temporal SDK: worker';
  if (url.includes('@temporalio/')) return 'Temporal SDK: other';
  if (url.includes('execa') || url.startsWith('node:child_process') || url.includes('internal/child_process'))
    return 'spawning helm/kubectl';
  if (url.includes('/activities/')) return 'activities';
  if (url.includes('protobufjs') || url.includes('proto')) return 'protobuf';
  if (url.startsWith('node:') || url === '') return 'node internals';
  if (url.includes('node_modules')) return `library: ${url.split('node_modules/')[1]?.split('/')[0] ?? '?'}`;
  return 'other';
}

export function summarizeProfile(p: CpuProfile, topN = 15): ProfileSummary {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  p.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0) / 1000));
  const byName = new Map<string, number>();
  const byArea = new Map<string, number>();
  let busy = 0;
  for (const [id, ms] of self) {
    const n = byId.get(id);
    if (!n) continue;
    const { functionName, url, lineNumber } = n.callFrame;
    const area = areaOf(url, functionName);
    if (area !== '(idle)') busy += ms;
    byArea.set(area, (byArea.get(area) ?? 0) + ms);
    const file = url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*?\/(workflows|activities|worker)\//, '$1/');
    const name = `${functionName || '(anonymous)'} ${file}:${lineNumber + 1}`;
    byName.set(name, (byName.get(name) ?? 0) + ms);
  }
  const sorted = <K>(m: Map<K, number>) => [...m.entries()].sort((a, b) => b[1] - a[1]);
  return {
    totalMs: (p.endTime - p.startTime) / 1000,
    busyMs: busy,
    top: sorted(byName)
      .filter(([n]) => !n.startsWith('(idle)'))
      .slice(0, topN)
      .map(([name, selfMs]) => ({ name, selfMs })),
    areas: sorted(byArea).map(([area, selfMs]) => ({ area, selfMs })),
  };
}

/** The profiles `node --cpu-prof --cpu-prof-dir DIR` wrote when the worker exited: one per thread. */
export async function readProfiles(dir: string): Promise<{ file: string; profile: CpuProfile }[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile')).sort();
  if (files.length === 0) throw new Error(`no .cpuprofile in ${dir}: did the worker exit cleanly?`);
  return Promise.all(
    files.map(async (file) => ({
      file,
      profile: JSON.parse(await readFile(path.join(dir, file), 'utf8')) as CpuProfile,
    }))
  );
}

/** Markdown: per thread, where its CPU went (areas), and its top functions by self time. */
export function renderProfiles(summaries: { file: string; summary: ProfileSummary }[]): string {
  return summaries
    .filter(({ summary }) => summary.busyMs > 0)
    .map(({ file, summary }) =>
      [
        `Thread profile \`${file}\`: ${(summary.busyMs / 1000).toFixed(1)} s of CPU in ${(summary.totalMs / 1000).toFixed(1)} s.`,
        '',
        ...summary.areas
          .filter((a) => a.area !== '(idle)' && a.selfMs >= 0.01 * summary.busyMs)
          .map(
            (a) => `- ${a.area}: ${(a.selfMs / 1000).toFixed(1)} s (${((100 * a.selfMs) / summary.busyMs).toFixed(0)}%)`
          ),
        '',
        'Top functions (self time):',
        '',
        ...summary.top.slice(0, 10).map((t) => `- ${(t.selfMs / 1000).toFixed(2)} s \`${t.name}\``),
        '',
      ].join('\n')
    )
    .join('\n');
}
