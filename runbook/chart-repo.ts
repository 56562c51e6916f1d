/**
 * Chart sources as sites have them, as helm argument arrays (pure). An HTTP(S) chart repository is
 * added once with `helm repo add` (credentials and TLS files stored by helm for that repo) and its
 * charts are named `<repo>/<chart>`, as the runbook does. An OCI registry is logged into with
 * `helm registry login`, and its charts are named `oci://host/path/<chart>`; helm takes the TLS
 * files on each command for those. Passwords never appear here: they go to helm's stdin.
 */
import type { ChartRepo, RegistryTls, ReleaseName, SecretRef, Version } from './types';

type Argv = string[];

export const isOciRepo = (repo: Pick<ChartRepo, 'url'>): boolean => /^oci:\/\//i.test(repo.url);

/** `host[:port]` of a repository or registry URL: what `helm registry login` and error texts name. */
export function repoHost(url: string): string {
  const rest = url.replace(/^[a-z][\w+.-]*:\/\//i, '');
  return rest.split(/[/?#]/)[0] ?? rest;
}

/** How a chart is named on the command line. */
export const chartRef = (repo: ChartRepo, chart: ReleaseName): string =>
  isOciRepo(repo) ? `${repo.url.replace(/\/+$/, '')}/${chart}` : `${repo.name}/${chart}`;

/** TLS flags of `helm repo add`, `pull`, `show`, `upgrade`, `template`. */
export const helmTlsFlags = (tls: RegistryTls): Argv => [
  ...(tls.caFile ? ['--ca-file', tls.caFile] : []),
  ...(tls.certFile ? ['--cert-file', tls.certFile] : []),
  ...(tls.keyFile ? ['--key-file', tls.keyFile] : []),
  ...(tls.insecureSkipTlsVerify ? ['--insecure-skip-tls-verify'] : []),
];

/**
 * TLS flags a command needs for its chart: for an HTTP(S) repo helm reads them from the repo it
 * added; an OCI chart needs them on every command.
 */
export const chartTlsFlags = (repo: ChartRepo): Argv => (isOciRepo(repo) ? helmTlsFlags(repo) : []);

/** Where a secret comes from, for plans and messages: never its value. */
export const describeSecret = (ref: SecretRef): string => ('env' in ref ? `env ${ref.env}` : `file ${ref.file}`);

export const hasCredentials = (repo: ChartRepo): boolean => repo.username !== undefined && repo.password !== undefined;

/** `helm repo add`; with credentials, the password is read from stdin. `username` is resolved by the caller. */
export const helmRepoAdd = (repo: ChartRepo, username?: string): Argv => [
  'repo',
  'add',
  repo.name,
  repo.url,
  '--force-update',
  ...(username !== undefined ? ['--username', username, '--password-stdin'] : []),
  ...helmTlsFlags(repo),
];

export const helmRepoUpdate = (repo: ChartRepo): Argv => ['repo', 'update', repo.name];

/** `helm registry login HOST --password-stdin`; helm calls the TLS opt-out `--insecure` here. */
export const helmRegistryLogin = (repo: ChartRepo, username: string): Argv => [
  'registry',
  'login',
  repoHost(repo.url),
  '--username',
  username,
  '--password-stdin',
  ...(repo.caFile ? ['--ca-file', repo.caFile] : []),
  ...(repo.certFile ? ['--cert-file', repo.certFile] : []),
  ...(repo.keyFile ? ['--key-file', repo.keyFile] : []),
  ...(repo.insecureSkipTlsVerify ? ['--insecure'] : []),
];

/**
 * What makes the repository usable on a worker host, for plans: the username stays a placeholder
 * naming its source. Empty for an OCI registry without credentials (nothing to log into).
 */
export function repoSetupCommands(repo: ChartRepo): Argv[] {
  const user = repo.username ? `<${describeSecret(repo.username)}>` : undefined;
  if (isOciRepo(repo)) return user && repo.password ? [helmRegistryLogin(repo, user)] : [];
  return [helmRepoAdd(repo, repo.password ? user : undefined)];
}

export const helmShowChart = (repo: ChartRepo, chart: ReleaseName, version: Version): Argv => [
  'show',
  'chart',
  chartRef(repo, chart),
  '--version',
  version,
  ...chartTlsFlags(repo),
];

export const helmPullChart = (repo: ChartRepo, chart: ReleaseName, version: Version, dir: string): Argv => [
  'pull',
  chartRef(repo, chart),
  '--version',
  version,
  ...chartTlsFlags(repo),
  '--untar',
  '--untardir',
  dir,
];

/**
 * `helm pull` of the chart archive itself (no --untar) into `dir`, where helm names it
 * `<chart>-<version>.tgz`: what each worker host keeps in its chart cache.
 */
export const helmPullChartArchive = (repo: ChartRepo, chart: ReleaseName, version: Version, dir: string): Argv => [
  'pull',
  chartRef(repo, chart),
  '--version',
  version,
  ...chartTlsFlags(repo),
  '--destination',
  dir,
];

/** A chart archive's name in a host's chart cache: by content, so a name never changes what it holds. */
export const cachedChartName = (chart: ReleaseName, version: Version, sha256: string): string =>
  `${chart}-${version.replace(/[^\w.+-]/g, '_')}-${sha256}.tgz`;

/** Where `plan` shows the cached archive: its digest once preflight recorded one. */
export const cachedChartPlaceholder = (step: { chart: ReleaseName; version: Version; chartSha256?: string }): string =>
  `<chart cache>/${cachedChartName(step.chart, step.version, step.chartSha256 ?? '<sha256>')}`;

/** Unpacks a chart archive into `dir` (as `dir/<chart>/`), as `helm pull --untar` would; never as its owner. */
export const untarChart = (file: string, dir: string): Argv => ['-xzf', file, '-C', dir, '--no-same-owner'];

/** What `plan` says about how the chart source is reached, warnings included; never a secret. */
export function chartRepoNotes(repo: ChartRepo): string[] {
  const how = isOciRepo(repo) ? 'OCI registry, helm registry login' : 'chart repository, helm repo add';
  const creds =
    repo.username && repo.password
      ? `username from ${describeSecret(repo.username)}, password from ${describeSecret(repo.password)} (to helm on stdin)`
      : 'no credentials';
  const tls = [repo.caFile && `CA ${repo.caFile}`, repo.certFile && `client certificate ${repo.certFile}`]
    .filter(Boolean)
    .join(', ');
  const out = [`charts from ${repo.url} (${how}; ${creds}${tls ? `; ${tls}` : ''})`];
  if (repo.insecureSkipTlsVerify)
    out.push(
      `WARNING: chartRepo.insecureSkipTlsVerify is set: helm will not verify the certificate of ${repo.url}; set chartRepo.caFile to the site's CA instead`
    );
  if (/^http:\/\//i.test(repo.url) && hasCredentials(repo))
    out.push(`WARNING: chartRepo ${repo.url} is plain HTTP: its credentials cross the network unencrypted`);
  return out;
}

/**
 * `helm template` of an upgrade's chart with the values it will get (backup file, operator files,
 * `--set` pairs): the manifests the upgrade would apply, rendered client-side, for the image check.
 * With `chartFile` (the host's cached archive) nothing is fetched: no version or TLS flags.
 */
export const helmTemplate = (
  step: { release: ReleaseName; chart: ReleaseName; repo: ChartRepo; version: Version; set: [string, string][] },
  namespace: string,
  kubeVersion: string,
  valuesFiles: string[],
  chartFile?: string
): Argv => [
  'template',
  step.release,
  ...(chartFile ? [chartFile] : [chartRef(step.repo, step.chart), '--version', step.version]),
  '-n',
  namespace,
  '--kube-version',
  kubeVersion,
  ...(chartFile ? [] : chartTlsFlags(step.repo)),
  ...valuesFiles.flatMap((f) => ['-f', f]),
  ...step.set.flatMap(([k, v]) => ['--set', `${k}=${v}`]),
];
