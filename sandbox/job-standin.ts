// Stand-in for the Job controller, which does not run in the sandbox (no kube-controller-manager,
// no kubelet). Like envtest suites, it patches each Job's status subresource to a finished state
// that the 1.33 apiserver's strict status validation accepts.
import { execa } from 'execa';

export interface JobStandInOptions {
  kubectl: string;
  kubeconfig: string;
  namespace: string;
  outcome?: 'succeed' | 'fail';
  failReason?: string;
  intervalMs?: number;
  log?: (line: string) => void;
}

interface JobItem {
  metadata: { name: string };
  status?: { conditions?: { type: string; status: string }[] };
}

const FINISHED = new Set(['Complete', 'Failed']);

function isFinished(job: JobItem): boolean {
  return (job.status?.conditions ?? []).some((c) => FINISHED.has(c.type) && c.status === 'True');
}

/**
 * The status patch. Validation rules that shape it (apiserver 1.33): Complete=True needs
 * SuccessCriteriaMet=True first and completionTime set; Failed=True needs FailureTarget=True first
 * and no completionTime; startTime is required once a terminal condition is set; succeeded must
 * reach spec.completions (1 here) for Complete.
 */
export function finishedStatus(outcome: 'succeed' | 'fail', reason: string, now = new Date()): Record<string, unknown> {
  // Whole seconds: the API stores RFC 3339 seconds, and completionTime must not precede startTime.
  const start = new Date(Math.floor(now.getTime() / 1000) * 1000 - 1000).toISOString().replace(/\.\d+Z$/, 'Z');
  const end = new Date(Math.floor(now.getTime() / 1000) * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
  const cond = (type: string, r: string, message: string): Record<string, string> => ({
    type,
    status: 'True',
    reason: r,
    message,
    lastProbeTime: end,
    lastTransitionTime: end,
  });
  if (outcome === 'succeed') {
    return {
      startTime: start,
      completionTime: end,
      active: 0,
      ready: 0,
      terminating: 0,
      succeeded: 1,
      conditions: [
        cond('SuccessCriteriaMet', 'CompletionsReached', 'Reached expected number of succeeded pods'),
        cond('Complete', 'CompletionsReached', 'Reached expected number of succeeded pods'),
      ],
    };
  }
  return {
    startTime: start,
    active: 0,
    ready: 0,
    terminating: 0,
    failed: 1,
    conditions: [
      cond('FailureTarget', reason, 'Job failed (sandbox job stand-in)'),
      cond('Failed', reason, 'Job failed (sandbox job stand-in)'),
    ],
  };
}

export function startJobStandIn(opts: JobStandInOptions): { stop(): Promise<void>; completed: string[] } {
  const outcome = opts.outcome ?? 'succeed';
  const reason = opts.failReason ?? 'BackoffLimitExceeded';
  const log = opts.log ?? (() => undefined);
  const completed: string[] = [];
  const k = (args: string[]) =>
    execa(opts.kubectl, ['--kubeconfig', opts.kubeconfig, '-n', opts.namespace, ...args], {
      reject: false,
      timeout: 20_000,
    });
  let stopped = false;
  let wake: (() => void) | undefined;

  const tick = async (): Promise<void> => {
    const r = await k(['get', 'jobs', '-o', 'json']);
    if (r.exitCode !== 0) return; // e.g. cluster stopped for an outage test: try again later
    const items = (JSON.parse(r.stdout) as { items: JobItem[] }).items;
    for (const job of items.filter((j) => !isFinished(j))) {
      const name = job.metadata.name;
      const p = await k([
        'patch',
        'job',
        name,
        '--subresource=status',
        '--type=merge',
        '-p',
        JSON.stringify({ status: finishedStatus(outcome, reason) }),
      ]);
      if (p.exitCode === 0) {
        completed.push(name);
        log(`[job-standin] ${opts.namespace}/${name}: ${outcome === 'succeed' ? 'Complete' : `Failed (${reason})`}`);
      } else {
        log(`[job-standin] ${opts.namespace}/${name}: status patch refused: ${p.stderr.trim()}`);
      }
    }
  };

  const loop = (async () => {
    while (!stopped) {
      await tick().catch((err: unknown) => log(`[job-standin] ${String(err)}`));
      if (stopped) break;
      await new Promise<void>((res) => {
        wake = res;
        setTimeout(res, opts.intervalMs ?? 500);
      });
    }
  })();

  return {
    completed,
    async stop() {
      stopped = true;
      wake?.();
      await loop;
    },
  };
}
