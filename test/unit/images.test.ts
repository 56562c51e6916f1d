/**
 * The preflight image check's pure parts: image references (runbook/images.ts), the images of
 * rendered manifests, the one-line report of missing ones, the registries' WWW-Authenticate
 * challenges (activities/registry-client.ts), and the fleet fields that configure the check.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseChallenge } from '../../activities/registry-client';
import { FleetError, parseFleet } from '../../runbook/fleet';
import { imagesInManifests, missingImagesLine, parseImageRef, type MissingImage } from '../../runbook/images';

describe('parseImageRef', () => {
  it.each([
    // Docker Hub: the default registry, and official images live under library/
    ['nginx', 'docker.io', 'library/nginx', 'latest'],
    ['nginx:1.25', 'docker.io', 'library/nginx', '1.25'],
    ['docker.io/nginx:1.25', 'docker.io', 'library/nginx', '1.25'],
    ['docker.io/library/nginx', 'docker.io', 'library/nginx', 'latest'],
    ['bitnami/redis:7.2', 'docker.io', 'bitnami/redis', '7.2'],
    // a first component with "." or ":" or "localhost" is a registry
    ['release.daocloud.io/skoala/hive:v0.28.1', 'release.daocloud.io', 'skoala/hive', 'v0.28.1'],
    ['harbor.local:8443/skoala/hive:v0.28.1', 'harbor.local:8443', 'skoala/hive', 'v0.28.1'],
    ['registry:5000/app', 'registry:5000', 'app', 'latest'],
    ['localhost/app:v1', 'localhost', 'app', 'v1'],
    ['localhost:5000/a/b/c:v2', 'localhost:5000', 'a/b/c', 'v2'],
    ['10.0.0.5:5000/skoala/ui', '10.0.0.5:5000', 'skoala/ui', 'latest'],
    // digests win over tags
    ['nginx@sha256:0123abcd', 'docker.io', 'library/nginx', 'sha256:0123abcd'],
    ['harbor.local:8443/skoala/hive:v1@sha256:beef', 'harbor.local:8443', 'skoala/hive', 'sha256:beef'],
    ['  harbor.local/x/y:1  ', 'harbor.local', 'x/y', '1'],
  ])('%s', (ref, registry, repository, reference) => {
    expect(parseImageRef(ref)).toEqual({ ref: ref.trim(), registry, repository, reference });
  });

  it('a port colon is not a tag: the tag is looked for after the last "/"', () => {
    expect(parseImageRef('harbor.local:8443/skoala/hive')).toMatchObject({
      registry: 'harbor.local:8443',
      repository: 'skoala/hive',
      reference: 'latest',
    });
  });

  it.each([[''], ['   '], ['a b'], [':v1'], ['harbor.local/:v1']])('refuses %j', (ref) => {
    expect(parseImageRef(ref)).toBeUndefined();
  });
});

describe('imagesInManifests', () => {
  // As `helm template` prints it: a leading "---", "# Source:" comments, documents without containers.
  const RENDERED = `---
# Source: skoala/templates/sa.yaml
apiVersion: v1
kind: ServiceAccount
metadata:
  name: hive
---
# Source: skoala/templates/hive.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: hive
spec:
  template:
    spec:
      initContainers:
        - name: wait-db
          image: release.daocloud.io/skoala/busybox:1.36
      containers:
        - name: hive
          image: release.daocloud.io/skoala/hive:v0.28.1
        - name: sidecar
          image: "  release.daocloud.io/skoala/proxy:v1  "
---
# Source: skoala/templates/cleanup.yaml
apiVersion: batch/v1
kind: CronJob
metadata:
  name: cleanup
spec:
  schedule: "0 * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          containers:
            - name: cleanup
              image: release.daocloud.io/skoala/hive:v0.28.1
---
apiVersion: v1
kind: Pod
metadata:
  name: debug
spec:
  containers:
    - name: main
      image: docker.io/library/alpine:3.20
  ephemeralContainers:
    - name: dbg
      image: busybox
---
# Source: skoala/templates/svc.yaml
apiVersion: v1
kind: Service
metadata:
  name: hive
spec:
  ports:
    - port: 80
---
---
`;

  it('finds every container, init container and ephemeral container image; deduped and sorted', () => {
    expect(imagesInManifests(RENDERED)).toEqual([
      'busybox',
      'docker.io/library/alpine:3.20',
      'release.daocloud.io/skoala/busybox:1.36',
      'release.daocloud.io/skoala/hive:v0.28.1',
      'release.daocloud.io/skoala/proxy:v1',
    ]);
  });

  it('ignores "image" keys outside container lists, and empty or non-string images', () => {
    const text = `apiVersion: v1
kind: ConfigMap
metadata: { name: c }
data:
  image: release.daocloud.io/not/a-container:1
---
apiVersion: example.io/v1
kind: Thing
spec:
  image: release.daocloud.io/not/a-container:2
  containers:
    - name: empty
      image: ""
    - name: number
      image: 42
    - name: none
    - just-a-string
`;
    expect(imagesInManifests(text)).toEqual([]);
  });

  it('no documents, empty documents and comment-only documents give no images', () => {
    expect(imagesInManifests('')).toEqual([]);
    expect(imagesInManifests('---\n---\n')).toEqual([]);
    expect(imagesInManifests('# Source: x\n---\n# nothing\n')).toEqual([]);
  });
});

describe('missingImagesLine', () => {
  const missing = (n: number): MissingImage[] =>
    Array.from({ length: n }, (_, i) => ({
      image: `harbor.local/skoala/img${i}:v1`,
      clusters: i === 0 ? ['w1', 'w2'] : ['w1'],
      reason: i === 1 ? 'access denied' : 'not found',
    }));

  it('names each image, why, and the clusters that need it', () => {
    expect(missingImagesLine(missing(2))).toBe(
      'harbor.local/skoala/img0:v1 (not found; needed by w1, w2); harbor.local/skoala/img1:v1 (access denied; needed by w1)'
    );
  });

  it('cuts after max and says how many more', () => {
    const line = missingImagesLine(missing(5), 2);
    expect(line).toBe(
      'harbor.local/skoala/img0:v1 (not found; needed by w1, w2); harbor.local/skoala/img1:v1 (access denied; needed by w1); and 3 more'
    );
    expect(line).not.toContain('img2');
  });

  it('exactly max: no "more"; the default max is 10', () => {
    expect(missingImagesLine(missing(2), 2)).not.toContain('more');
    expect(missingImagesLine(missing(10))).not.toContain('more');
    const eleven = missingImagesLine(missing(11));
    expect(eleven).toMatch(/; and 1 more$/);
    expect(eleven).toContain('img9:v1');
    expect(eleven).not.toContain('img10:v1');
  });

  it('nothing missing: an empty line', () => {
    expect(missingImagesLine([])).toBe('');
  });
});

describe('parseChallenge', () => {
  it('Bearer with realm, service and scope (a scope may hold commas)', () => {
    expect(
      parseChallenge(
        'Bearer realm="https://harbor.local:8443/service/token",service="harbor-registry",scope="repository:skoala/hive:pull,push"'
      )
    ).toEqual({
      scheme: 'bearer',
      params: {
        realm: 'https://harbor.local:8443/service/token',
        service: 'harbor-registry',
        scope: 'repository:skoala/hive:pull,push',
      },
    });
  });

  it('Docker Hub style, spaces after commas', () => {
    expect(parseChallenge('Bearer realm="https://auth.docker.io/token", service="registry.docker.io"')).toEqual({
      scheme: 'bearer',
      params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io' },
    });
  });

  it('Basic with a realm; the scheme is lowercased', () => {
    expect(parseChallenge('Basic realm="Harbor"')).toEqual({ scheme: 'basic', params: { realm: 'Harbor' } });
    expect(parseChallenge('BASIC realm="Registry Realm"')).toEqual({
      scheme: 'basic',
      params: { realm: 'Registry Realm' },
    });
  });

  it('no header: no scheme, no parameters', () => {
    expect(parseChallenge('')).toEqual({ scheme: '', params: {} });
    expect(parseChallenge('Basic')).toEqual({ scheme: 'basic', params: {} });
  });
});

describe('parseFleet: image registries and the image check', () => {
  const fleetWith = (extra: string) => `name: prod
controlPlane: { name: global, context: g }
workers: [{ name: w1, context: a }]
${extra}
`;
  function fleetError(text: string): FleetError {
    try {
      parseFleet(text, 'fleet.yaml');
    } catch (err) {
      if (err instanceof FleetError) return err;
      throw err;
    }
    throw new Error('the fleet file was accepted');
  }

  it('checkImages is on unless the file turns it off', () => {
    expect(parseFleet(fleetWith(''), 'fleet.yaml').checkImages).toBe(true);
    expect(parseFleet(fleetWith('checkImages: false'), 'fleet.yaml').checkImages).toBe(false);
    expect(parseFleet(fleetWith('checkImages: true'), 'fleet.yaml').checkImages).toBe(true);
    expect(fleetError(fleetWith('checkImages: "no"')).fieldPath).toBe('checkImages');
  });

  it('registries: host, credentials by reference and TLS files, paths resolved', () => {
    const fleet = parseFleet(
      fleetWith(`registries:
  - host: harbor.local:8443
    username: { env: HARBOR_USER }
    password: { file: secrets/harbor-password }
    caFile: tls/ca.pem
  - host: docker.io
  - host: 10.0.0.5:5000
    certFile: /etc/tls/c.pem
    keyFile: tls/c.key
    insecureSkipTlsVerify: true`),
      '/ops/fleet.yaml',
      (p) => path.posix.resolve('/ops', p)
    );
    expect(fleet.registries).toEqual([
      {
        host: 'harbor.local:8443',
        username: { env: 'HARBOR_USER' },
        password: { file: '/ops/secrets/harbor-password' },
        caFile: '/ops/tls/ca.pem',
      },
      { host: 'docker.io' },
      { host: '10.0.0.5:5000', certFile: '/etc/tls/c.pem', keyFile: '/ops/tls/c.key', insecureSkipTlsVerify: true },
    ]);
  });

  it.each([['https://harbor.local'], ['harbor.local/skoala'], ['-harbor.local'], ['harbor.local:'], ['']])(
    'refuses the host %j',
    (host) => {
      const err = fleetError(fleetWith(`registries: [{ host: ${JSON.stringify(host)} }]`));
      expect(err.fieldPath).toBe('registries[0].host');
      expect(err.message).toBe(
        'fleet.yaml: registries[0].host: must be host or host:port, as image references name it'
      );
    }
  );

  it('refuses a plain-string password without echoing it', () => {
    const err = fleetError(
      fleetWith(`registries:
  - host: docker.io
  - host: harbor.local
    username: { env: U }
    password: s3cr3t-Registry-pw`)
    );
    expect(err.fieldPath).toBe('registries[1].password');
    expect(err.message).not.toContain('s3cr3t-Registry-pw');
    expect(err.message).not.toContain('\n');
  });

  it('refuses half a pair: a username without a password, a certFile without a keyFile', () => {
    expect(fleetError(fleetWith('registries: [{ host: h.local, username: { env: U } }]')).message).toBe(
      'fleet.yaml: registries[0]: username and password go together: give both or neither'
    );
    expect(fleetError(fleetWith('registries: [{ host: h.local, keyFile: k.pem }]')).message).toBe(
      'fleet.yaml: registries[0]: certFile and keyFile go together: give both or neither'
    );
  });

  it('refuses an unknown registry field', () => {
    const err = fleetError(fleetWith('registries: [{ host: h.local, url: "https://h.local" }]'));
    expect(err.fieldPath).toBe('registries[0]');
    expect(err.message).toContain("'url'");
  });
});
