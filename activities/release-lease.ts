/**
 * A Kubernetes Lease (coordination.k8s.io/v1) per release, held while a helm of ours changes it and
 * renewed with the activity's heartbeat. A pending revision of ours then says by itself whether its
 * helm is still there: a lease held means wait; a lease expired or released means the worker that
 * ran it is gone (helm runs under `setpriv --pdeathsig`, see exec.ts, so it went with it) and the
 * revision can be rolled back at once, instead of guessing from its age. A pending revision with no
 * lease, or a lease for another revision, was not made under one (before leases, or a helm run by
 * hand): the age rule still applies to it.
 */
import { log } from '@temporalio/activity';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import * as cmd from '../runbook/commands';
import type { ClusterRef, ReleaseName } from '../runbook/types';
import type { CommandRunner } from './exec';

/** A holder that stopped renewing is taken for gone this long after its last renewal. */
export const LEASE_SECONDS = 30;
/** Renewed well within LEASE_SECONDS: two renewals may fail before it lapses. */
export const RENEW_MS = 10_000;

export const leaseName = (release: ReleaseName): string => `skoala-upgrade.${release}`;

/** The revision the lease covers: the one its helm creates. */
export const LEASE_REVISION = 'skoala-upgrade.io/revision';

export interface LeaseState {
  holder: string;
  /** The revision its helm creates: a pending revision under another number was not made under it. */
  revision?: number;
  /** When it lapses (ms since the epoch); a released lease has lapsed. */
  expiresAt: number;
}

/** Kubernetes MicroTime: RFC 3339 with six fractional digits. */
const microTime = (ms: number): string => new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');

export interface LeaseDeps {
  run: CommandRunner;
  workDir: string;
  /** Who holds it: the upgrade, this host and process (for a person reading `kubectl get lease`). */
  holder: (upgradeId: string) => string;
}

export const defaultHolder = (upgradeId: string): string => `${upgradeId}@${hostname()}/${process.pid}`;

export function releaseLeases(deps: LeaseDeps) {
  const { run } = deps;

  async function write(
    cluster: ClusterRef,
    release: ReleaseName,
    holder: string,
    revision: number,
    held: boolean
  ): Promise<void> {
    const now = Date.now();
    const dir = await mkdtemp(path.join(deps.workDir, 'lease-'));
    try {
      const file = path.join(dir, 'lease.yaml');
      await writeFile(
        file,
        stringify({
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: {
            name: leaseName(release),
            labels: { 'app.kubernetes.io/managed-by': 'skoala-upgrade' },
            annotations: { [LEASE_REVISION]: String(revision) },
          },
          spec: {
            // Released: no holder, and a renewal time already past its duration.
            holderIdentity: held ? holder : '',
            leaseDurationSeconds: LEASE_SECONDS,
            renewTime: microTime(held ? now : now - LEASE_SECONDS * 1000),
          },
        })
      );
      await run('kubectl', cmd.kubectlApplyFile(cluster, file), { cluster: cluster.name });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  return {
    /** The release's lease, or undefined when there is none (a revision made before leases). */
    async read(cluster: ClusterRef, release: ReleaseName): Promise<LeaseState | undefined> {
      const out = (
        await run('kubectl', cmd.kubectlGetIfExists(cluster, 'lease', leaseName(release)), {
          cluster: cluster.name,
        })
      ).stdout.trim();
      if (!out) return undefined;
      const lease = JSON.parse(out) as {
        metadata?: { annotations?: Record<string, string> };
        spec?: { holderIdentity?: string; renewTime?: string; leaseDurationSeconds?: number };
      };
      const spec = lease.spec;
      const revision = Number(lease.metadata?.annotations?.[LEASE_REVISION]);
      const renewed = Date.parse(spec?.renewTime ?? '');
      const holder = spec?.holderIdentity ?? '';
      return {
        holder,
        ...(Number.isInteger(revision) ? { revision } : {}),
        expiresAt:
          holder && Number.isFinite(renewed) ? renewed + (spec?.leaseDurationSeconds ?? LEASE_SECONDS) * 1000 : 0,
      };
    },

    /**
     * Runs `work` (a helm that creates revision `revision` of the release) holding the release's
     * lease, renewed until it ends.
     */
    async holding<T>(
      cluster: ClusterRef,
      release: ReleaseName,
      upgradeId: string,
      revision: number,
      work: () => Promise<T>
    ): Promise<T> {
      const holder = deps.holder(upgradeId);
      await write(cluster, release, holder, revision, true);
      const renew = setInterval(() => {
        write(cluster, release, holder, revision, true).catch((err: unknown) =>
          log.warn('could not renew the release lease', { cluster: cluster.name, release, error: String(err) })
        );
      }, RENEW_MS);
      try {
        return await work();
      } finally {
        clearInterval(renew);
        // Released whether helm ended or was killed: either way no helm of ours runs on it now.
        await write(cluster, release, holder, revision, false).catch((err: unknown) =>
          log.warn('could not release the release lease', { cluster: cluster.name, release, error: String(err) })
        );
      }
    },
  };
}

export type ReleaseLeases = ReturnType<typeof releaseLeases>;
