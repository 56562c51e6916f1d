/** Reading sandbox clusters with the real helm and kubectl, for end-to-end assertions. */
import { execa } from 'execa';
import { parse } from 'yaml';
import type { Client } from '@temporalio/client';
import type { LocalStack } from '../../scripts/lib/local-stack';
import type { SandboxCluster } from '../../sandbox';
import { decodedHistoriesText } from '../helpers/history-text';

export const NS = 'skoala-system';

export function kube(stack: LocalStack) {
  const { tools, helmEnv } = stack.sandbox;
  const helm = async (c: SandboxCluster, args: string[]) =>
    (await execa(tools.helm, ['--kubeconfig', c.kubeconfig, '--kube-context', c.context, ...args], { env: helmEnv }))
      .stdout;
  const kubectl = async (c: SandboxCluster, args: string[]) =>
    (await execa(tools.kubectl, ['--kubeconfig', c.kubeconfig, '--context', c.context, ...args])).stdout;
  return {
    helm,
    kubectl,
    async release(c: SandboxCluster, name: string) {
      const [r] = JSON.parse(await helm(c, ['list', '-n', NS, '-a', '--filter', `^${name}$`, '-o', 'json'])) as {
        status: string;
        chart: string;
        revision: string;
      }[];
      return r;
    },
    async revisions(c: SandboxCluster, name: string): Promise<number> {
      return (JSON.parse(await helm(c, ['history', name, '-n', NS, '-o', 'json'])) as unknown[]).length;
    },
    async values(c: SandboxCluster, name: string): Promise<unknown> {
      return parse(await helm(c, ['get', 'values', name, '-n', NS, '-o', 'yaml']));
    },
    async image(c: SandboxCluster, deployment: string): Promise<string> {
      return kubectl(c, [
        'get',
        'deployment',
        deployment,
        '-n',
        NS,
        '-o',
        'jsonpath={.spec.template.spec.containers[0].image}',
      ]);
    },
    async crdChartVersion(c: SandboxCluster, crd: string): Promise<string> {
      return kubectl(c, [
        'get',
        'crd',
        crd,
        '-o',
        'jsonpath={.metadata.annotations.fixtures\\.skoala-upgrade/chart-version}',
      ]);
    },
  };
}

/** Every event of the upgrade's workflows (parent and children) as JSON text, payloads decoded. */
export async function historiesText(client: Client, workflowId: string, children: string[]): Promise<string> {
  return decodedHistoriesText(
    client,
    workflowId,
    children.map((c) => `${workflowId}/${c}`)
  );
}
