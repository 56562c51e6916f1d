/**
 * Every row of the runbook's rules table (shared/runbook.md), tested just below, at and just above
 * the version where it starts to apply.
 */
import { describe, expect, it } from 'vitest';
import {
  ADMISSION_JOBS,
  MIN_WORKER_KUBE_VERSION,
  chartManagesCrds,
  crdFilesInChart,
  dbMigrationNeed,
  decideRules,
  deletesAdmissionJobs,
  imageTag,
  runsDbMigration,
  skoalaImageValues,
  skoalaInitImageValues,
  workerKubeVersionSupported,
  type DbMigrationNeed,
} from '../../runbook/rules';
import { parseKubeVersion, parseVersion } from '../../runbook/version';
import type { DbMigrationMode } from '../../runbook/types';

const CONTOUR = 'charts/contour-provisioner/crds/contour.yaml';
const GATEWAY_API = 'charts/contour-provisioner-prereq/crds/gateway-api.yaml';
const HIGRESS = 'charts/contour-provisioner/crds/higress.gen.yaml';

describe('dbMigrationNeed', () => {
  it.each([
    // from < 0.19.0 to [0.19.0, 0.22.0): the Job is mandatory
    ['0.18.0', '0.19.0', 'required'],
    ['0.18.0', '0.19.2', 'required'],
    ['0.12.2', '0.21.2', 'required'],
    ['0.18.99', '0.21.99', 'required'],
    // target still below 0.19.0: the rule does not apply yet
    ['0.17.1', '0.18.0', 'not-needed'],
    // from >= 0.19.0 to < 0.22.0: only if that release's notes say so
    ['0.19.0', '0.19.2', 'only-if-release-notes-say-so'],
    ['0.19.4', '0.21.2', 'only-if-release-notes-say-so'],
    ['0.21.0', '0.21.99', 'only-if-release-notes-say-so'],
    // to >= 0.22.0: the engine migrates its own tables, whatever the starting version
    ['0.18.0', '0.22.0', 'engine-migrates-itself'],
    ['0.19.0', '0.22.0', 'engine-migrates-itself'],
    ['0.21.2', '0.22.1', 'engine-migrates-itself'],
    ['0.27.2', '0.28.1', 'engine-migrates-itself'],
  ] as const)('from %s to %s: %s', (from, to, need) => {
    expect(dbMigrationNeed(from, to)).toBe(need);
  });

  it('a fresh install creates its own schema below 0.22.0', () => {
    expect(dbMigrationNeed(undefined, '0.19.2')).toBe('not-needed');
    expect(dbMigrationNeed(undefined, '0.21.99')).toBe('not-needed');
  });

  it('a fresh install of 0.22.0 or later: the engine migrates itself', () => {
    expect(dbMigrationNeed(undefined, '0.22.0')).toBe('engine-migrates-itself');
    expect(dbMigrationNeed(undefined, '0.53.0')).toBe('engine-migrates-itself');
  });
});

describe('runsDbMigration', () => {
  const needs: DbMigrationNeed[] = ['required', 'only-if-release-notes-say-so', 'not-needed', 'engine-migrates-itself'];
  const expected: Record<DbMigrationMode, boolean[]> = {
    // auto follows the runbook: only the mandatory case runs the Job
    auto: [true, false, false, false],
    always: [true, true, true, true],
    never: [false, false, false, false],
  };
  for (const mode of ['auto', 'always', 'never'] as const) {
    it(`--db-migration ${mode}`, () => {
      expect(needs.map((need) => runsDbMigration(need, mode))).toEqual(expected[mode]);
    });
  }
});

describe('image values', () => {
  it('tags are v<version>', () => {
    expect(imageTag('0.19.2')).toBe('v0.19.2');
    expect(imageTag('0.19.2-rc.1')).toBe('v0.19.2-rc.1');
  });

  it('skoala: hive and sesame follow the target, ui is left alone unless given', () => {
    expect(skoalaImageValues('0.28.1')).toEqual([
      ['hive.image.tag', 'v0.28.1'],
      ['sesame.image.tag', 'v0.28.1'],
    ]);
  });

  it('skoala: ui gets the version the operator names, not the engine version', () => {
    expect(skoalaImageValues('0.28.1', '0.19.0')).toEqual([
      ['hive.image.tag', 'v0.28.1'],
      ['sesame.image.tag', 'v0.28.1'],
      ['ui.image.tag', 'v0.19.0'],
    ]);
  });

  it('skoala-init below 0.28.0: no seata-operator tag', () => {
    expect(skoalaInitImageValues('0.27.2')).toEqual([
      ['nacos-operator.image.tag', 'v0.27.2'],
      ['skoala-agent.image.tag', 'v0.27.2'],
      ['sentinel-operator.image.tag', 'v0.27.2'],
    ]);
  });

  it.each(['0.28.0', '0.28.1', '0.53.0'])('skoala-init %s: seata-operator tag too', (to) => {
    expect(skoalaInitImageValues(to)).toEqual([
      ['nacos-operator.image.tag', `v${to}`],
      ['skoala-agent.image.tag', `v${to}`],
      ['sentinel-operator.image.tag', `v${to}`],
      ['seata-operator.image.tag', `v${to}`],
    ]);
  });
});

describe('deletesAdmissionJobs', () => {
  it.each([
    ['0.24.2', false],
    ['0.26.1', false],
    ['0.26.2', true],
    ['0.26.3', true],
    ['0.28.1', true],
  ] as const)('to %s: %s', (to, deletes) => {
    expect(deletesAdmissionJobs(to)).toBe(deletes);
  });

  it('names both gateway-api admission Jobs', () => {
    expect(ADMISSION_JOBS).toEqual(['gateway-api-admission', 'gateway-api-admission-patch']);
  });
});

describe('chartManagesCrds', () => {
  it.each([
    ['0.52.0', false],
    ['0.52.1', false],
    ['0.53.0', true],
    ['0.53.1', true],
  ] as const)('to %s: %s', (to, manages) => {
    expect(chartManagesCrds(to)).toBe(manages);
  });
});

describe('crdFilesInChart', () => {
  it('through 0.52.0: contour and gateway-api', () => {
    expect(crdFilesInChart('0.19.2')).toEqual([CONTOUR, GATEWAY_API]);
    expect(crdFilesInChart('0.52.0')).toEqual([CONTOUR, GATEWAY_API]);
  });

  it('0.52.1: higress as well', () => {
    expect(crdFilesInChart('0.52.1')).toEqual([CONTOUR, GATEWAY_API, HIGRESS]);
  });

  it('a forced re-apply on a later chart keeps higress', () => {
    expect(crdFilesInChart('0.53.0')).toEqual([CONTOUR, GATEWAY_API, HIGRESS]);
  });
});

describe('workerKubeVersionSupported', () => {
  it('needs Kubernetes 1.25', () => {
    expect(MIN_WORKER_KUBE_VERSION).toBe('1.25.0');
  });

  it.each([
    ['1.24.0', false],
    ['1.24.17', false],
    ['1.25.0', true],
    ['1.25.1', true],
    ['1.33.13', true],
  ] as const)('%s: %s', (kube, ok) => {
    expect(workerKubeVersionSupported(kube)).toBe(ok);
  });

  it('reads a vendor build string as its major.minor.patch', () => {
    expect(parseKubeVersion('v1.24.17-gke.100')).toBe('1.24.17');
    expect(parseKubeVersion('v1.33.13')).toBe('1.33.13');
    expect(parseKubeVersion('')).toBeUndefined();
    expect(workerKubeVersionSupported(parseKubeVersion('v1.24.17-gke.100') as string)).toBe(false);
  });
});

describe('decideRules: every rule for one upgrade, decided once', () => {
  it('0.18.0 -> 0.19.2: DB Job required and run, CRDs re-applied from the chart, no admission Jobs deleted', () => {
    expect(decideRules('0.18.0', '0.19.2', { dbMigration: 'auto' })).toEqual({
      dbMigrationNeed: 'required',
      runDbMigration: true,
      skoalaSet: [
        ['hive.image.tag', 'v0.19.2'],
        ['sesame.image.tag', 'v0.19.2'],
      ],
      skoalaInitSet: [
        ['nacos-operator.image.tag', 'v0.19.2'],
        ['skoala-agent.image.tag', 'v0.19.2'],
        ['sentinel-operator.image.tag', 'v0.19.2'],
      ],
      deletesAdmissionJobs: false,
      admissionJobs: ADMISSION_JOBS,
      chartManagesCrds: false,
      crdFiles: [CONTOUR, GATEWAY_API],
      minWorkerKubeVersion: '1.25.0',
      healthContainers: {
        skoala: ['hive', 'sesame'],
        'skoala-init': ['skoala-agent', 'nacos-operator', 'sentinel-operator', 'seata-operator'],
      },
    });
  });

  it('0.52.1 -> 0.53.0 with a ui version: the engine migrates itself, the chart manages its CRDs', () => {
    const rules = decideRules('0.52.1', '0.53.0', { dbMigration: 'auto', uiVersion: '0.30.0' });
    expect(rules).toMatchObject({
      dbMigrationNeed: 'engine-migrates-itself',
      runDbMigration: false,
      deletesAdmissionJobs: true,
      chartManagesCrds: true,
      crdFiles: [CONTOUR, GATEWAY_API, HIGRESS],
    });
    expect(rules.skoalaSet).toContainEqual(['ui.image.tag', 'v0.30.0']);
    expect(rules.skoalaInitSet).toContainEqual(['seata-operator.image.tag', 'v0.53.0']);
  });

  it('--db-migration overrides only whether the Job runs, not the need', () => {
    expect(decideRules('0.18.0', '0.19.2', { dbMigration: 'never' })).toMatchObject({
      dbMigrationNeed: 'required',
      runDbMigration: false,
    });
    expect(decideRules('0.27.2', '0.28.1', { dbMigration: 'always' })).toMatchObject({
      dbMigrationNeed: 'engine-migrates-itself',
      runDbMigration: true,
    });
  });

  it('a fresh install (no from) below 0.22.0 needs no DB Job', () => {
    expect(decideRules(undefined, '0.19.2', { dbMigration: 'auto' })).toMatchObject({
      dbMigrationNeed: 'not-needed',
      runDbMigration: false,
    });
  });

  it('is plain data: it survives a JSON round trip (it is recorded in workflow history)', () => {
    const rules = decideRules('0.18.0', '0.19.2', { dbMigration: 'auto', uiVersion: '0.19.0' });
    expect(JSON.parse(JSON.stringify(rules))).toEqual(rules);
  });
});

describe('parseVersion', () => {
  it.each(['0.19.2', '0.19.2-rc.1', '0.53.0'])('accepts %s', (text) => {
    expect(parseVersion(text)).toBe(text);
  });

  it.each([
    'v0.19.2',
    '=0.19.2',
    '0.19',
    '0.19.2 --set x=y',
    ' 0.19.2',
    '0.19.2 ',
    '0.19.2\n',
    '01.19.2',
    'latest',
    '',
  ])('rejects %j', (text) => {
    expect(parseVersion(text)).toBeUndefined();
  });
});
