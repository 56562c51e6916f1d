/** parseFleet: defaults, path resolution, and one-line errors that name the file, the field and the problem. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DEFAULT_CHART_REPO, FleetError, parseFleet, upgradeWorkflowId } from '../../runbook/fleet';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const resolveIn = (dir: string) => (p: string) => path.resolve(dir, p);

const minimal = `
name: prod
controlPlane:
  name: global
  kubeconfig: kc/global.yaml
workers:
  - name: w1
    kubeconfig: /abs/w1.yaml
  - name: w2
    context: w2-admin
`;

function fleetError(text: string, file = 'fleet.yaml'): FleetError {
  try {
    parseFleet(text, file);
  } catch (err) {
    if (err instanceof FleetError) return err;
    throw err;
  }
  throw new Error('the fleet file was accepted');
}

describe('parseFleet: valid files', () => {
  it('fills the defaults', () => {
    const fleet = parseFleet(minimal, 'fleet.yaml');
    expect(fleet).toEqual({
      name: 'prod',
      chartRepo: { name: 'skoala', url: 'https://release.daocloud.io/chartrepo/skoala' },
      controlPlane: { name: 'global', kubeconfig: 'kc/global.yaml', namespace: 'skoala-system' },
      workers: [
        { name: 'w1', kubeconfig: '/abs/w1.yaml', namespace: 'skoala-system' },
        { name: 'w2', context: 'w2-admin', kubeconfig: undefined, namespace: 'skoala-system' },
      ],
      valuesFiles: { skoala: [], skoalaInit: [] },
      dbMigrationJob: undefined,
      extraCrds: [],
      imageRegistry: undefined,
    });
    expect(DEFAULT_CHART_REPO).toEqual(fleet.chartRepo);
  });

  it('resolves every relative path, leaves absolute ones and contexts alone', () => {
    const text = `${minimal}
valuesFiles:
  skoala: [values/skoala.yaml]
  skoalaInit: [/etc/init.yaml]
dbMigrationJob: job.yaml
extraCrds: [crds/extra.yaml]
`;
    const fleet = parseFleet(text, '/ops/fleet.yaml', resolveIn('/ops'));
    expect(fleet.controlPlane.kubeconfig).toBe('/ops/kc/global.yaml');
    expect(fleet.workers[0]?.kubeconfig).toBe('/abs/w1.yaml');
    expect(fleet.workers[1]).toMatchObject({ context: 'w2-admin', kubeconfig: undefined });
    expect(fleet.valuesFiles).toEqual({ skoala: ['/ops/values/skoala.yaml'], skoalaInit: ['/etc/init.yaml'] });
    expect(fleet.dbMigrationJob).toBe('/ops/job.yaml');
    expect(fleet.extraCrds).toEqual(['/ops/crds/extra.yaml']);
  });

  it('keeps the explicit settings', () => {
    const text = `
name: airgap
chartRepo: { name: harbor, url: "https://harbor.local/chartrepo/skoala" }
controlPlane: { name: global, context: g, namespace: engine, taskQueue: q-global }
workers: [{ name: w1, context: w1, taskQueue: site-a }]
imageRegistry: harbor.local/dce
`;
    const fleet = parseFleet(text, 'f.yaml');
    expect(fleet.chartRepo).toEqual({ name: 'harbor', url: 'https://harbor.local/chartrepo/skoala' });
    expect(fleet.controlPlane).toMatchObject({ namespace: 'engine', taskQueue: 'q-global' });
    expect(fleet.workers[0]).toMatchObject({ name: 'w1', taskQueue: 'site-a', namespace: 'skoala-system' });
    expect(fleet.imageRegistry).toBe('harbor.local/dce');
  });

  it('the workflow ID is one per fleet and version', () => {
    expect(upgradeWorkflowId('prod', '0.28.1')).toBe('skoala-upgrade-prod-0.28.1');
  });
});

describe('parseFleet: errors are one line naming file, field and problem', () => {
  const cases: [string, string, string][] = [
    [
      'duplicate worker name',
      `name: prod
controlPlane: { name: global, context: g }
workers: [{ name: w1, context: a }, { name: w1, context: b }]`,
      'fleet.yaml: workers[1].name: duplicate cluster name "w1"',
    ],
    [
      'worker named like the control plane',
      `name: prod
controlPlane: { name: global, context: g }
workers: [{ name: global, context: a }]`,
      'fleet.yaml: workers[0].name: duplicate cluster name "global"',
    ],
    [
      'neither kubeconfig nor context',
      `name: prod
controlPlane: { name: global, context: g }
workers: [{ name: w1, context: a }, { name: w2 }]`,
      'fleet.yaml: workers[1]: needs a kubeconfig path and/or a context',
    ],
    [
      'bad cluster name',
      `name: prod
controlPlane: { name: global, context: g }
workers: [{ name: Worker_1, context: a }]`,
      'fleet.yaml: workers[0].name: must be a DNS-1123 label (lowercase letters, digits, "-")',
    ],
    [
      'bad fleet name',
      `name: Prod East
controlPlane: { name: global, context: g }
workers: [{ name: w1, context: a }]`,
      'fleet.yaml: name: must be a DNS-1123 label (lowercase letters, digits, "-")',
    ],
    [
      'no workers',
      `name: prod
controlPlane: { name: global, context: g }
workers: []`,
      'fleet.yaml: workers: needs at least one worker cluster',
    ],
    [
      'bad chart repository URL',
      `name: prod
chartRepo: { name: skoala, url: "release.daocloud.io/chartrepo" }
controlPlane: { name: global, context: g }
workers: [{ name: w1, context: a }]`,
      'fleet.yaml: chartRepo.url: Invalid url',
    ],
  ];

  it.each(cases)('%s', (_, text, message) => {
    const err = fleetError(text);
    expect(err.message).toBe(message);
    expect(err.message).not.toContain('\n');
    expect(err.file).toBe('fleet.yaml');
  });

  it('an unknown field is named', () => {
    const err = fleetError(`${minimal}\nworkres: []\n`);
    expect(err.message).toMatch(/^fleet\.yaml: .*'workres'/);
    expect(err.message).not.toContain('\n');
  });

  it('an unknown field inside a cluster names the cluster', () => {
    const err = fleetError(`name: prod
controlPlane: { name: global, context: g }
workers: [{ name: w1, context: a, kubeConfig: /x }]`);
    expect(err.fieldPath).toBe('workers[0]');
    expect(err.message).toMatch(/^fleet\.yaml: workers\[0\]: .*'kubeConfig'/);
  });

  it('a missing required field is named', () => {
    const err = fleetError(`name: prod\nworkers: [{ name: w1, context: a }]`);
    expect(err).toMatchObject({ fieldPath: 'controlPlane', problem: 'Required' });
    expect(err.message).toBe('fleet.yaml: controlPlane: Required');
  });

  it('invalid YAML', () => {
    const err = fleetError('name: prod\nworkers: [\n  - name: w1\n  bad: : :\n', '/ops/fleet.yaml');
    expect(err.message).toMatch(/^\/ops\/fleet\.yaml: not valid YAML: \S/);
    expect(err.message).not.toContain('\n');
    expect(err.fieldPath).toBe('');
  });

  it('an empty file', () => {
    const err = fleetError('');
    expect(err.message).toMatch(/^fleet\.yaml: \w+: Required$/);
  });

  it('a file that is not a mapping', () => {
    const err = fleetError('- just\n- a list\n');
    expect(err.message).toMatch(/^fleet\.yaml: Expected object/);
  });
});

describe('fleet.example.yaml', () => {
  const file = path.join(ROOT, 'fleet.example.yaml');
  const fleet = parseFleet(readFileSync(file, 'utf8'), file, resolveIn(ROOT));

  it('parses: a control plane and three workers, one on its own task queue', () => {
    expect(fleet.controlPlane.name).toBe('kpanda-global-cluster');
    expect(fleet.workers.map((w) => w.name)).toEqual(['worker-1', 'worker-2', 'worker-dc2']);
    expect(fleet.workers.filter((w) => w.taskQueue !== undefined).map((w) => w.taskQueue)).toEqual([
      'skoala-upgrade-dc2',
    ]);
    expect(fleet.chartRepo).toEqual(DEFAULT_CHART_REPO);
  });

  it('its relative paths resolve next to it', () => {
    expect(fleet.controlPlane.kubeconfig).toBe(path.join(ROOT, 'kubeconfigs/global.yaml'));
    expect(fleet.dbMigrationJob).toBe(path.join(ROOT, 'manifests/skoala-db-upgrade-job.yaml'));
  });

  it('documents every field it sets with a comment', () => {
    const text = readFileSync(file, 'utf8');
    for (const key of [
      'name',
      'chartRepo',
      'url',
      'controlPlane',
      'kubeconfig',
      'context',
      'namespace',
      'workers',
      'taskQueue',
      'valuesFiles',
      'skoalaInit',
      'dbMigrationJob',
      'extraCrds',
      'imageRegistry',
    ]) {
      expect(text, key).toMatch(new RegExp(`#.*\\b${key}\\b|#[^\\n]*\\n\\s*(- )?${key}:`));
    }
  });
});
