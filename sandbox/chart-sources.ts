// Fixture chart sources for `skoala` and `skoala-init`, generated from templates per version
// (never hand-kept tarballs). They model what the runbook's rules depend on: value keys, image
// tags, the contour / gateway-api / higress CRDs under crds/, and the immutable admission Jobs.
import semver from 'semver';

/** path inside the chart folder -> file content */
export type ChartFiles = Record<string, string>;

const REGISTRY = `{{ default "release.daocloud.io" .Values.global.imageRegistry }}`;

const chartYaml = (name: string, version: string, description: string): string =>
  `apiVersion: v2\nname: ${name}\ndescription: ${description}\ntype: application\nversion: ${version}\nappVersion: "${version}"\n`;

// Deployments only: with no kubelet or controllers (the status stand-in), nothing else could become
// ready anyway. On a real node the image's server answers the readiness probe (images.ts).
function deployment(name: string, tagExpr: string): string {
  return `---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${name}
  namespace: {{ .Release.Namespace }}
  labels: { app.kubernetes.io/name: ${name}, app.kubernetes.io/instance: {{ .Release.Name }} }
spec:
  replicas: 1
  selector: { matchLabels: { app.kubernetes.io/name: ${name} } }
  template:
    metadata: { labels: { app.kubernetes.io/name: ${name} } }
    spec:
      terminationGracePeriodSeconds: 2
      containers:
        - name: ${name}
          image: "${REGISTRY}/skoala/${name}:{{ ${tagExpr} }}"
          readinessProbe: { httpGet: { path: /ready, port: 8080 }, periodSeconds: 1, failureThreshold: 1 }
`;
}

// Plain (non-hook) Jobs: their pod template is immutable, and its image changes with the chart
// version, so upgrading across versions without deleting them first fails, like the real chart.
function admissionJob(name: string, version: string): string {
  return `---
apiVersion: batch/v1
kind: Job
metadata:
  name: ${name}
  namespace: {{ .Release.Namespace }}
spec:
  backoffLimit: 0
  template:
    metadata: { labels: { app.kubernetes.io/name: ${name} } }
    spec:
      restartPolicy: Never
      containers:
        - name: create
          image: "${REGISTRY}/skoala/gateway-api-admission:v${version}"
          args: ["${name === 'gateway-api-admission' ? 'create' : 'patch'}"]
`;
}

interface CrdSpec {
  group: string;
  kind: string;
  plural: string;
  version: string;
  scope?: 'Cluster';
}

/**
 * The Gateway-API bundle version the fixture chart ships: real CRDs carry it (e.g. v1.2.1), and the
 * CRD step compares it to refuse a downgrade. A later chart version always maps to a later bundle.
 */
export function gatewayBundleVersion(chartVersion: string): string {
  const v = semver.parse(chartVersion);
  if (!v) throw new Error(`not a chart version: ${chartVersion}`);
  return `v${v.major + 1}.${v.minor}.${v.patch}`;
}

function crd(c: CrdSpec, chartVersion: string): string {
  // *.k8s.io groups are protected: the apiserver wants this annotation (the real CRDs carry it too).
  const approval = c.group.endsWith('.k8s.io')
    ? '\n    api-approved.kubernetes.io: https://github.com/kubernetes-sigs/gateway-api/pull/2466'
    : '';
  const bundle =
    c.group === 'gateway.networking.k8s.io'
      ? `\n    gateway.networking.k8s.io/bundle-version: ${gatewayBundleVersion(chartVersion)}`
      : '';
  return `---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: ${c.plural}.${c.group}
  annotations:
    fixtures.skoala-upgrade/chart-version: "${chartVersion}"${approval}${bundle}
spec:
  group: ${c.group}
  scope: ${c.scope ?? 'Namespaced'}
  names: { kind: ${c.kind}, listKind: ${c.kind}List, plural: ${c.plural}, singular: ${c.kind.toLowerCase()} }
  versions:
    - name: ${c.version}
      served: true
      storage: true
      schema:
        openAPIV3Schema: { type: object, x-kubernetes-preserve-unknown-fields: true }
`;
}

const CONTOUR: CrdSpec[] = [
  { group: 'projectcontour.io', kind: 'ContourConfiguration', plural: 'contourconfigurations', version: 'v1alpha1' },
  { group: 'projectcontour.io', kind: 'ContourDeployment', plural: 'contourdeployments', version: 'v1alpha1' },
  { group: 'projectcontour.io', kind: 'ExtensionService', plural: 'extensionservices', version: 'v1alpha1' },
  { group: 'projectcontour.io', kind: 'HTTPProxy', plural: 'httpproxies', version: 'v1' },
  { group: 'projectcontour.io', kind: 'TLSCertificateDelegation', plural: 'tlscertificatedelegations', version: 'v1' },
];
const GATEWAY: CrdSpec[] = [
  {
    group: 'gateway.networking.k8s.io',
    kind: 'GatewayClass',
    plural: 'gatewayclasses',
    version: 'v1',
    scope: 'Cluster',
  },
  { group: 'gateway.networking.k8s.io', kind: 'Gateway', plural: 'gateways', version: 'v1' },
  { group: 'gateway.networking.k8s.io', kind: 'GRPCRoute', plural: 'grpcroutes', version: 'v1' },
  { group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', plural: 'httproutes', version: 'v1' },
  { group: 'gateway.networking.k8s.io', kind: 'ReferenceGrant', plural: 'referencegrants', version: 'v1beta1' },
  { group: 'gateway.networking.k8s.io', kind: 'TCPRoute', plural: 'tcproutes', version: 'v1alpha2' },
  { group: 'gateway.networking.k8s.io', kind: 'TLSRoute', plural: 'tlsroutes', version: 'v1alpha2' },
  { group: 'gateway.networking.k8s.io', kind: 'UDPRoute', plural: 'udproutes', version: 'v1alpha2' },
];
const HIGRESS: CrdSpec[] = [
  { group: 'networking.higress.io', kind: 'Http2Rpc', plural: 'http2rpcs', version: 'v1' },
  { group: 'networking.higress.io', kind: 'McpBridge', plural: 'mcpbridges', version: 'v1' },
];

export const FIXTURE_CRDS = { contour: CONTOUR, gatewayApi: GATEWAY, higress: HIGRESS };

export function skoalaChart(version: string): ChartFiles {
  return {
    'Chart.yaml': chartYaml('skoala', version, 'Fixture of the DCE 5.0 microservice engine control plane'),
    'values.yaml': `global:
  imageRegistry: ""
hive:
  image: { tag: v${version} }
  configMap:
    data:
      database: { host: skoala-mysql.skoala-system, port: 3306, user: skoala, password: changeme, database: skoala }
sesame:
  image: { tag: v${version} }
ui:
  image: { tag: v0.8.0 }   # not the engine version (runbook rule)
sweet:
  enable: ${semver.lt(version, '0.22.0')}
custom: {}
`,
    'templates/deployments.yaml':
      deployment('hive', '.Values.hive.image.tag') +
      deployment('sesame', '.Values.sesame.image.tag') +
      deployment('ui', '.Values.ui.image.tag'),
    'templates/database.yaml': `---
apiVersion: v1
kind: Secret
metadata: { name: skoala-db, namespace: {{ .Release.Namespace }} }
type: Opaque
stringData:
  password: {{ .Values.hive.configMap.data.database.password | quote }}
---
apiVersion: v1
kind: ConfigMap
metadata: { name: skoala-db-config, namespace: {{ .Release.Namespace }} }
data:
  {{- with .Values.hive.configMap.data.database }}
  host: {{ .host | quote }}
  port: {{ .port | quote }}
  user: {{ .user | quote }}
  database: {{ .database | quote }}
  {{- end }}
  sweet-enable: {{ .Values.sweet.enable | quote }}
  custom-marker: {{ .Values.custom.marker | default "" | quote }}
`,
  };
}

export function skoalaInitChart(version: string): ChartFiles {
  const components = ['skoala-agent', 'nacos-operator', 'sentinel-operator'];
  if (semver.gte(version, '0.28.0')) components.push('seata-operator');
  const crdDoc = (specs: CrdSpec[]): string => specs.map((c) => crd(c, version)).join('');
  const files: ChartFiles = {
    'Chart.yaml': chartYaml(
      'skoala-init',
      version,
      'Fixture of the DCE 5.0 microservice engine worker-cluster components'
    ),
    'values.yaml':
      'global:\n  imageRegistry: ""\n' +
      components.map((c) => `${c}:\n  image: { tag: v${version} }\n`).join('') +
      'custom: {}\n',
    // index: the keys have hyphens, which the dot syntax cannot address.
    'templates/deployments.yaml': components.map((c) => deployment(c, `index .Values "${c}" "image" "tag"`)).join(''),
    'templates/marker.yaml': `---
apiVersion: v1
kind: ConfigMap
metadata: { name: skoala-init-marker, namespace: {{ .Release.Namespace }} }
data:
  custom-marker: {{ .Values.custom.marker | default "" | quote }}
`,
    'charts/contour-provisioner/Chart.yaml': chartYaml('contour-provisioner', version, 'contour provisioner (fixture)'),
    'charts/contour-provisioner/crds/contour.yaml': crdDoc(CONTOUR),
    'charts/contour-provisioner-prereq/Chart.yaml': chartYaml(
      'contour-provisioner-prereq',
      version,
      'gateway-api CRDs (fixture)'
    ),
    'charts/contour-provisioner-prereq/crds/gateway-api.yaml': crdDoc(GATEWAY),
  };
  if (semver.gte(version, '0.52.1')) files['charts/contour-provisioner/crds/higress.gen.yaml'] = crdDoc(HIGRESS);
  if (semver.gte(version, '0.26.2')) {
    files['templates/gateway-api-admission.yaml'] =
      admissionJob('gateway-api-admission', version) + admissionJob('gateway-api-admission-patch', version);
  }
  return files;
}
