/** parseFleet: defaults, path resolution, and one-line errors that name the file, the field and the problem. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_CHART_REPO,
  FleetError,
  MAX_WORKER_CLUSTERS,
  parseFleet,
  upgradeWorkflowId,
} from '../../runbook/fleet';

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
      registries: [],
      checkImages: true,
      backupStore: 'dir',
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
imageRegistry: harbor.local:5000/dce/skoala-images
`;
    const fleet = parseFleet(text, 'f.yaml');
    expect(fleet.chartRepo).toEqual({ name: 'harbor', url: 'https://harbor.local/chartrepo/skoala' });
    expect(fleet.controlPlane).toMatchObject({ namespace: 'engine', taskQueue: 'q-global' });
    expect(fleet.workers[0]).toMatchObject({ name: 'w1', taskQueue: 'site-a', namespace: 'skoala-system' });
    expect(fleet.imageRegistry).toBe('harbor.local:5000/dce/skoala-images');
  });

  it('the workflow ID is one per fleet and version', () => {
    expect(upgradeWorkflowId('prod')).toBe('skoala-upgrade-prod');
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
      'an image registry with a comma (it would add --set pairs that override the image tags)',
      `name: prod
controlPlane: { name: global, context: g }
workers: [{ name: w1, context: a }]
imageRegistry: "harbor.example,hive.image.tag=v9.9.9"`,
      'fleet.yaml: imageRegistry: must be a registry host[:port][/path], e.g. harbor.example.com:5000/skoala',
    ],
    [
      'an image registry with a scheme',
      `name: prod
controlPlane: { name: global, context: g }
workers: [{ name: w1, context: a }]
imageRegistry: "https://harbor.example"`,
      'fleet.yaml: imageRegistry: must be a registry host[:port][/path], e.g. harbor.example.com:5000/skoala',
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
      'fleet.yaml: chartRepo.url: must be an http://, https:// or oci:// URL with a host (got "release.daocloud.io/chartrepo")',
    ],
    [
      'chart repository name that is not a simple name',
      `name: prod
chartRepo: { name: "--debug", url: "https://h/c" }
controlPlane: { name: global, context: g }
workers: [{ name: w1, context: a }]`,
      'fleet.yaml: chartRepo.name: must be a simple repository name (letters, digits, "-", "_", "."), as in helm repo add NAME',
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

describe('parseFleet: chart repository URL', () => {
  const withUrl = (url: string) => `name: prod
chartRepo: { name: skoala, url: ${JSON.stringify(url)} }
controlPlane: { name: global, context: g }
workers: [{ name: w1, context: a }]`;
  const accepted = (url: string) =>
    `fleet.yaml: chartRepo.url: must be an http://, https:// or oci:// URL with a host (got ${JSON.stringify(url)})`;

  it.each([
    ['file:///etc', accepted('file:///etc')],
    ['javascript:alert(1)', accepted('javascript:alert(1)')],
    ['ftp://h/x', accepted('ftp://h/x')],
    ['https://', accepted('https://')],
    ['oci://', accepted('oci://')],
    ['oci:///skoala', accepted('oci:///skoala')],
    ['http:h/charts', accepted('http:h/charts')],
    ['http://0x7f.1/', accepted('http://0x7f.1/')],
    ['http://-h/', accepted('http://-h/')],
    ['http://x;id', 'fleet.yaml: chartRepo.url: must not contain ";" (got "http://x;id")'],
    ['http://h/$(id)', 'fleet.yaml: chartRepo.url: must not contain "$" (got "http://h/$(id)")'],
    ['http://h/`id`', 'fleet.yaml: chartRepo.url: must not contain "`" (got "http://h/`id`")'],
    ["http://h/'x'", `fleet.yaml: chartRepo.url: must not contain "'" (got "http://h/'x'")`],
    ['http://h /x', 'fleet.yaml: chartRepo.url: must not contain " " (got "http://h /x")'],
    ['http:\\h/x', 'fleet.yaml: chartRepo.url: must not contain "\\\\" (got "http:\\\\h/x")'],
    ['http://h:99999/', accepted('http://h:99999/')],
    [
      'http://user:pw@h/',
      'fleet.yaml: chartRepo.url: credentials do not belong in the URL: it is shown in plans, logs and workflow history (got "http://***@h/")',
    ],
    [
      'oci://robot@harbor.example.com/skoala',
      'fleet.yaml: chartRepo.url: credentials do not belong in the URL: it is shown in plans, logs and workflow history (got "oci://***@harbor.example.com/skoala")',
    ],
  ])('refuses %s', (url, message) => {
    const err = fleetError(withUrl(url));
    expect(err.message).toBe(message);
    expect(err.message).not.toContain('pw');
  });

  it.each([
    'https://release.daocloud.io/chartrepo/skoala',
    'http://127.0.0.1:8080',
    'oci://harbor.example.com/skoala',
    'https://[::1]:8443/charts',
    'https://Harbor.Example.COM:443/chartrepo/skoala?x=1#y',
  ])('accepts %s as written', (url) => {
    expect(parseFleet(withUrl(url), 'fleet.yaml').chartRepo).toEqual({ name: 'skoala', url });
  });

  it.each(['harbor', 'my_repo.v2', 'Skoala-1'])('accepts the repository name %s', (repo) => {
    const text = withUrl('https://h/c').replace('name: skoala', `name: ${repo}`);
    expect(parseFleet(text, 'fleet.yaml').chartRepo.name).toBe(repo);
  });

  it.each(['my repo', 'a/b', '.hidden', ''])('refuses the repository name %j', (repo) => {
    const text = withUrl('https://h/c').replace('name: skoala', `name: ${JSON.stringify(repo)}`);
    expect(fleetError(text).message).toBe(
      'fleet.yaml: chartRepo.name: must be a simple repository name (letters, digits, "-", "_", "."), as in helm repo add NAME'
    );
  });
});

describe('parseFleet: fleet size', () => {
  const fleetOf = (n: number, worker = (i: number) => `{ name: w${i}, context: c }`) =>
    `name: prod\ncontrolPlane: { name: global, context: g }\nworkers:\n${Array.from(
      { length: n },
      (_, i) => `  - ${worker(i)}\n`
    ).join('')}`;

  it(`takes ${MAX_WORKER_CLUSTERS} workers`, () => {
    expect(parseFleet(fleetOf(MAX_WORKER_CLUSTERS), 'fleet.yaml').workers).toHaveLength(MAX_WORKER_CLUSTERS);
  });

  it('refuses one more, naming the count and the limit', () => {
    expect(fleetError(fleetOf(MAX_WORKER_CLUSTERS + 1)).message).toBe(
      `fleet.yaml: workers: ${MAX_WORKER_CLUSTERS + 1} clusters is more than the ${MAX_WORKER_CLUSTERS} one upgrade can take; split the fleet file`
    );
  });

  it('counts before it looks at any cluster, so bad entries do not hide the count (nor crash)', () => {
    const text = fleetOf(20_000, (i) => (i % 2 ? 'null' : `{ name: w${i % 7}, context: c }`));
    expect(fleetError(text).message).toBe(
      'fleet.yaml: workers: 20000 clusters is more than the 5000 one upgrade can take; split the fleet file'
    );
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

describe('parseFleet: cluster labels', () => {
  const withLabels = (labels: string, cp = '') => `name: prod
controlPlane: { name: global, context: g${cp} }
workers:
  - name: w1
    context: a
    labels: ${labels}
  - name: w2
    context: b
`;

  it('a valid label map is kept on the cluster; a cluster without labels has none', () => {
    const fleet = parseFleet(
      withLabels('{ site: east, "example.com/tier": prod, canary: "", version: "1.2", on: "true" }'),
      'fleet.yaml'
    );
    expect(fleet.workers[0]).toEqual({
      name: 'w1',
      context: 'a',
      kubeconfig: undefined,
      namespace: 'skoala-system',
      labels: { site: 'east', 'example.com/tier': 'prod', canary: '', version: '1.2', on: 'true' },
    });
    expect(fleet.workers[1]?.labels).toBeUndefined();
    expect(fleet.controlPlane.labels).toBeUndefined();
  });

  it('labels in block style, and on the control plane', () => {
    const text = `name: prod
controlPlane:
  name: global
  context: g
  labels:
    role: control-plane
workers:
  - name: w1
    context: a
    labels:
      site: east
      tier: prod
`;
    const fleet = parseFleet(text, 'fleet.yaml');
    expect(fleet.controlPlane.labels).toEqual({ role: 'control-plane' });
    expect(fleet.workers[0]?.labels).toEqual({ site: 'east', tier: 'prod' });
  });

  it('an empty label map is kept', () => {
    expect(parseFleet(withLabels('{}'), 'fleet.yaml').workers[0]?.labels).toEqual({});
  });

  it('the labels are the ones a selector then matches', () => {
    const fleet = parseFleet(withLabels('{ site: east, tier: prod }'), 'fleet.yaml');
    expect(fleet.workers.map((w) => w.labels ?? {})).toEqual([{ site: 'east', tier: 'prod' }, {}]);
  });

  it.each([
    ['{ "-site": east }', 'fleet.yaml: workers[0].labels: "-site" is not a valid label key'],
    ['{ "site name": east }', 'fleet.yaml: workers[0].labels: "site name" is not a valid label key'],
    ['{ "Example.com/tier": prod }', 'fleet.yaml: workers[0].labels: "Example.com/tier" is not a valid label key'],
    [`{ ${'k'.repeat(64)}: x }`, `fleet.yaml: workers[0].labels: "${'k'.repeat(64)}" is not a valid label key`],
    ['{ "": x }', 'fleet.yaml: workers[0].labels: "" is not a valid label key'],
    ['{ site: "-east" }', 'fleet.yaml: workers[0].labels: label site: "-east" is not a valid label value'],
    ['{ site: "east west" }', 'fleet.yaml: workers[0].labels: label site: "east west" is not a valid label value'],
    ['{ tier: "a/b" }', 'fleet.yaml: workers[0].labels: label tier: "a/b" is not a valid label value'],
    [
      `{ tier: ${'v'.repeat(64)} }`,
      `fleet.yaml: workers[0].labels: label tier: "${'v'.repeat(64)}" is not a valid label value`,
    ],
    ['{ ok: fine, "-bad": x }', 'fleet.yaml: workers[0].labels: "-bad" is not a valid label key'],
  ])('refuses %s with one line naming the cluster field and the label', (labels, message) => {
    const err = fleetError(withLabels(labels));
    expect(err.message).toBe(message);
    expect(err.message).not.toContain('\n');
    expect(err.fieldPath).toBe('workers[0].labels');
  });

  it('names the worker that has the bad label', () => {
    const text = `name: prod
controlPlane: { name: global, context: g }
workers:
  - { name: w1, context: a, labels: { site: east } }
  - { name: w2, context: b, labels: { site: east } }
  - { name: w3, context: c, labels: { site: "_west" } }
`;
    expect(fleetError(text).message).toBe(
      'fleet.yaml: workers[2].labels: label site: "_west" is not a valid label value'
    );
  });

  it('names the control plane when its label is bad', () => {
    const err = fleetError(withLabels('{ site: east }', ', labels: { "-role": x }'));
    expect(err.message).toBe('fleet.yaml: controlPlane.labels: "-role" is not a valid label key');
  });

  it.each([
    ['{ canary: true }', 'canary'],
    ['{ version: 1.2 }', 'version'],
    ['{ site: null }', 'site'],
    ['{ site: [east] }', 'site'],
  ])('a value that YAML reads as no string (%s) is refused, naming the label', (labels, key) => {
    const err = fleetError(withLabels(labels));
    expect(err.fieldPath).toBe(`workers[0].labels.${key}`);
    expect(err.message).toMatch(new RegExp(`^fleet\\.yaml: workers\\[0\\]\\.labels\\.${key}: Expected string`));
    expect(err.message).not.toContain('\n');
  });

  it.each(['[site=east]', 'site=east', 'null'])('labels that are not a map (%s) are refused', (labels) => {
    const err = fleetError(withLabels(labels));
    expect(err.fieldPath).toBe('workers[0].labels');
    expect(err.message).toMatch(/^fleet\.yaml: workers\[0\]\.labels: Expected object/);
  });
});

describe('parseFleet: approvals, notify and windows', () => {
  const base = `name: prod
controlPlane: { name: global, context: g }
workers:
  - { name: w1, context: a, labels: { tier: prod } }
  - { name: w2, context: b }
`;
  const withKey = (yaml: string) => `${base}${yaml}\n`;
  const refused = (yaml: string) => fleetError(withKey(yaml)).message;

  describe('approvals', () => {
    it('reads every key, turning durations into milliseconds', () => {
      const fleet = parseFleet(
        withKey(`approvals:
  approvers: [alice, " Bob "]
  notStarter: true
  rules:
    - { select: "tier=prod", distinct: 2 }
    - { select: "", distinct: 1 }
  deadline: 24h
  onDeadline: fail
  remindEvery: 1h`),
        'fleet.yaml'
      );
      expect(fleet.approvals).toEqual({
        approvers: ['alice', 'Bob'],
        notStarter: true,
        rules: [
          { select: 'tier=prod', distinct: 2 },
          { select: '', distinct: 1 },
        ],
        deadlineMs: 86_400_000,
        onDeadline: 'fail',
        remindEveryMs: 3_600_000,
      });
    });

    it('a deadline without onDeadline rejects', () => {
      expect(parseFleet(withKey('approvals: { deadline: 90m }'), 'fleet.yaml').approvals).toEqual({
        deadlineMs: 5_400_000,
        onDeadline: 'reject',
      });
    });

    it('notStarter: false and an empty approvals map leave nothing behind', () => {
      expect(parseFleet(withKey('approvals: { notStarter: false }'), 'fleet.yaml')).not.toHaveProperty('approvals');
      expect(parseFleet(withKey('approvals: {}'), 'fleet.yaml')).not.toHaveProperty('approvals');
      expect(parseFleet(base, 'fleet.yaml')).not.toHaveProperty('approvals');
    });

    it('a rule may need as many distinct approvers as are listed', () => {
      const fleet = parseFleet(
        withKey('approvals: { approvers: [a, b], rules: [{ select: "tier=prod", distinct: 2 }] }'),
        'fleet.yaml'
      );
      expect(fleet.approvals).toEqual({ approvers: ['a', 'b'], rules: [{ select: 'tier=prod', distinct: 2 }] });
    });

    it('the shortest and longest durations accepted', () => {
      expect(parseFleet(withKey('approvals: { deadline: 1m, remindEvery: 7d }'), 'fleet.yaml').approvals).toEqual({
        deadlineMs: 60_000,
        onDeadline: 'reject',
        remindEveryMs: 604_800_000,
      });
      expect(parseFleet(withKey('approvals: { deadline: 30d }'), 'fleet.yaml').approvals?.deadlineMs).toBe(
        2_592_000_000
      );
    });

    it.each([
      ['approvals: { onDeadline: fail }', 'fleet.yaml: approvals: onDeadline needs a deadline'],
      [
        'approvals: { approvers: [a, b], rules: [{ select: "tier=prod", distinct: 3 }] }',
        'fleet.yaml: approvals: a rule needs 3 distinct approvers but only 2 are allowed',
      ],
      [
        // One person written twice: the gates count people, names without case.
        'approvals: { approvers: [alice, Alice], rules: [{ select: "", distinct: 2 }] }',
        'fleet.yaml: approvals: a rule needs 2 distinct approvers but only 1 are allowed',
      ],
      [
        'approvals: { deadline: 30s }',
        'fleet.yaml: approvals.deadline: "30s" must be a duration from 1m to 30d, such as 30m, 4h or 1h30m',
      ],
      [
        'approvals: { deadline: 31d }',
        'fleet.yaml: approvals.deadline: "31d" must be a duration from 1m to 30d, such as 30m, 4h or 1h30m',
      ],
      [
        'approvals: { deadline: soon }',
        'fleet.yaml: approvals.deadline: "soon" must be a duration from 1m to 30d, such as 30m, 4h or 1h30m',
      ],
      [
        'approvals: { remindEvery: 8d }',
        'fleet.yaml: approvals.remindEvery: "8d" must be a duration from 1m to 7d, such as 30m, 4h or 1h30m',
      ],
      [
        'approvals: { rules: [{ select: "tier in (prod", distinct: 2 }] }',
        'fleet.yaml: approvals.rules[0].select: unbalanced "(" in "tier in (prod"',
      ],
      [
        'approvals: { rules: [{ select: "-tier=prod", distinct: 2 }] }',
        'fleet.yaml: approvals.rules[0].select: "-tier" is not a valid label key (in "-tier=prod")',
      ],
      [
        'approvals: { approvers: [] }',
        'fleet.yaml: approvals.approvers: lists nobody: leave it out to let anyone approve',
      ],
      ['approvals: { approvrs: [a] }', "fleet.yaml: approvals: Unrecognized key(s) in object: 'approvrs'"],
      [
        'approvals: { rules: [{ select: "", distinct: 2, extra: 1 }] }',
        "fleet.yaml: approvals.rules[0]: Unrecognized key(s) in object: 'extra'",
      ],
    ])('refuses %s', (yaml, message) => {
      const got = refused(yaml);
      expect(got).toBe(message);
      expect(got).not.toContain('\n');
    });
  });

  describe('notify', () => {
    it.each(['https://hooks.example.com/skoala?channel=ops', 'http://10.0.0.5:8080/hook'])('accepts %s', (url) => {
      expect(parseFleet(withKey(`notify: { url: "${url}" }`), 'fleet.yaml').notify).toEqual({ url });
    });

    it('keeps the header named by an environment variable', () => {
      const fleet = parseFleet(
        withKey('notify: { url: "https://h/x", header: { name: Authorization, env: SKOALA_HOOK_TOKEN } }'),
        'fleet.yaml'
      );
      expect(fleet.notify).toEqual({ url: 'https://h/x', header: { name: 'Authorization', env: 'SKOALA_HOOK_TOKEN' } });
    });

    it('absent: no notify key', () => {
      expect(parseFleet(base, 'fleet.yaml')).not.toHaveProperty('notify');
    });

    it('refuses credentials in the URL without echoing the password', () => {
      const got = refused('notify: { url: "https://bot:s3cr3t@hooks.example.com/x" }');
      expect(got).toBe(
        'fleet.yaml: notify.url: credentials do not belong in the URL: it is shown in plans, logs and workflow history (got "https://***@hooks.example.com/x")'
      );
      expect(got).not.toContain('s3cr3t');
      expect(got).not.toContain('bot');
    });

    it.each([
      ['ftp://h/x', 'fleet.yaml: notify.url: must be an http:// or https:// URL'],
      ['oci://h/x', 'fleet.yaml: notify.url: must be an http:// or https:// URL'],
      ['hooks.example.com', 'fleet.yaml: notify.url: must be an http:// or https:// URL'],
      ['https://', 'fleet.yaml: notify.url: must be an http:// or https:// URL with a host (got "https://")'],
      ['https://h/$(id)', 'fleet.yaml: notify.url: must not contain "$" (got "https://h/$(id)")'],
    ])('refuses the URL %s', (url, message) => {
      expect(refused(`notify: { url: ${JSON.stringify(url)} }`)).toBe(message);
    });

    it.each([
      ['header: { name: "X Token", env: T }', 'fleet.yaml: notify.header.name: must be an HTTP header name'],
      ['header: { name: "X-Token:", env: T }', 'fleet.yaml: notify.header.name: must be an HTTP header name'],
      [
        'header: { name: X-Token, env: "1TOKEN" }',
        'fleet.yaml: notify.header.env: must name an environment variable of the worker (the value is read there)',
      ],
      [
        'header: { name: X-Token, env: "Bearer abc" }',
        'fleet.yaml: notify.header.env: must name an environment variable of the worker (the value is read there)',
      ],
      [
        'header: { name: X-Token, env: T, value: abc }',
        "fleet.yaml: notify.header: Unrecognized key(s) in object: 'value'",
      ],
      ['secret: abc', "fleet.yaml: notify: Unrecognized key(s) in object: 'secret'"],
    ])('refuses %s', (yaml, message) => {
      expect(refused(`notify: { url: "https://h/x", ${yaml} }`)).toBe(message);
    });
  });

  describe('windows', () => {
    const win = (extra: string) => `windows:
  - { ${extra}days: [mon, Tue], start: "22:00", duration: 4h, timeZone: Europe/Berlin }`;
    const read = { days: ['Mon', 'Tue'], start: '22:00', durationMs: 14_400_000, timeZone: 'Europe/Berlin' };

    it('a window for named clusters', () => {
      expect(parseFleet(withKey(win('clusters: [w1, w2], ')), 'fleet.yaml').windows).toEqual([
        { clusters: ['w1', 'w2'], ...read },
      ]);
    });

    it('a window for a selector', () => {
      expect(parseFleet(withKey(win('select: "tier=prod", ')), 'fleet.yaml').windows).toEqual([
        { select: 'tier=prod', ...read },
      ]);
    });

    it('a window for every worker', () => {
      expect(parseFleet(withKey(win('')), 'fleet.yaml').windows).toEqual([read]);
    });

    it('no windows, or an empty list: no windows key', () => {
      expect(parseFleet(base, 'fleet.yaml')).not.toHaveProperty('windows');
      expect(parseFleet(withKey('windows: []'), 'fleet.yaml')).not.toHaveProperty('windows');
    });

    it('refuses a cluster that is not a worker of the fleet, naming its place', () => {
      const err = fleetError(withKey(win('clusters: [w9], ')));
      expect(err.fieldPath).toBe('windows[0].clusters[0]');
      expect(err.message).toBe('fleet.yaml: windows[0].clusters[0]: "w9" is not a worker cluster of this fleet');
    });

    it('names the second entry of the second window', () => {
      const text = withKey(`windows:
  - { days: [Sat], start: "01:00", duration: 2h, timeZone: UTC }
  - { clusters: [w2, nope], days: [Sun], start: "01:00", duration: 2h, timeZone: UTC }`);
      expect(fleetError(text).message).toBe(
        'fleet.yaml: windows[1].clusters[1]: "nope" is not a worker cluster of this fleet'
      );
    });

    it('the control plane is not a worker cluster', () => {
      expect(refused(win('clusters: [global], '))).toBe(
        'fleet.yaml: windows[0].clusters[0]: "global" is not a worker cluster of this fleet'
      );
    });

    it('a bad time zone is refused with its field path', () => {
      const err = fleetError(
        withKey('windows:\n  - { days: [Mon], start: "22:00", duration: 4h, timeZone: Mars/Olympus }')
      );
      expect(err.fieldPath).toBe('windows[0].timeZone');
      expect(err.message).toBe(
        'fleet.yaml: windows[0].timeZone: "Mars/Olympus" is not an IANA time zone (e.g. Europe/Berlin, America/New_York, UTC)'
      );
    });

    it('clusters and select together are refused', () => {
      expect(refused(win('clusters: [w1], select: "tier=prod", '))).toBe(
        'fleet.yaml: windows[0]: give clusters or select, not both'
      );
    });
  });
});
