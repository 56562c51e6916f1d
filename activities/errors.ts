/**
 * Turns a failed helm/kubectl process into a Temporal failure an operator can act on: what ran
 * (secrets redacted), the exit code, the telling stderr lines (secrets scrubbed, truncated), and
 * whether retrying can help. Messages and details land in workflow history and worker logs.
 */
import { ApplicationFailure } from '@temporalio/common';

export interface FailureKind {
  type: string;
  nonRetryable: boolean;
  hint?: string;
}

/** First match wins: specific, permanent causes before the transient ones they may contain. */
const KINDS: [RegExp, FailureKind][] = [
  // The webhook's own error text says "connection refused", "Invalid", ...: this must win.
  [
    /failed calling webhook/i,
    {
      type: 'AdmissionWebhookUnavailable',
      nonRetryable: false,
      hint: "the cluster's admission webhook is not answering; the step will be retried",
    },
  ],
  [/another operation \(install\/upgrade\/rollback\) is in progress/i, { type: 'ReleaseLocked', nonRetryable: false }],
  [
    /chart "[^"]*" (version "[^"]*" )?(matching [^ ]+ )?not found|no chart version found|invalid chart reference|chart version .* not found/i,
    { type: 'ChartVersionNotFound', nonRetryable: true, hint: 'check --version and the fleet chartRepo' },
  ],
  [/field is immutable/i, { type: 'ImmutableField', nonRetryable: true }],
  [/storedVersions|is invalid:|Invalid value/i, { type: 'Invalid', nonRetryable: true }],
  [
    /spawn .* ENOENT|command not found/i,
    { type: 'ToolMissing', nonRetryable: true, hint: 'check SKOALA_HELM / SKOALA_KUBECTL' },
  ],
  [
    /x509:|certificate signed by unknown authority|certificate is not valid/i,
    { type: 'BadKubeconfig', nonRetryable: true, hint: 'the cluster certificate is not trusted by this kubeconfig' },
  ],
  [
    /\bforbidden\b|unauthorized|you must be logged in/i,
    { type: 'AccessDenied', nonRetryable: true, hint: 'check the kubeconfig credentials and RBAC' },
  ],
  [
    /context "[^"]*" does not exist|error loading config file|no configuration has been provided|kubeconfig.*no such file|invalid configuration/i,
    { type: 'BadKubeconfig', nonRetryable: true, hint: 'check kubeconfig and context in the fleet file' },
  ],
  [
    /YAML parse error|error converting YAML|values don't meet the specifications|failed parsing --set|cannot unmarshal|execution error at/i,
    { type: 'InvalidValues', nonRetryable: true, hint: 'check the values files' },
  ],
  [/no such file or directory|does not exist/i, { type: 'FileNotFound', nonRetryable: true }],
  [
    /connection refused|connection to the server .* was refused|i\/o timeout|connection reset|TLS handshake timeout|EOF|service unavailable|the server is currently unable|context deadline exceeded|too many requests|etcdserver|cluster unreachable/i,
    { type: 'ClusterUnreachable', nonRetryable: false },
  ],
];

export function classifyStderr(stderr: string): FailureKind {
  for (const [re, kind] of KINDS) if (re.test(stderr)) return kind;
  return { type: 'CommandFailed', nonRetryable: false };
}

const SECRET_KEY = /pass(?:word|wd)?|secret|token|credential|private|apikey|api-key/i;

/** Masks `--set key=value` values whose key looks secret, and any `--password`/`--token` flag value. */
export function redactArgv(argv: readonly string[]): string[] {
  return argv.map((arg, i) => {
    const prev = argv[i - 1] ?? '';
    const inline = /^(--set(?:-string|-file|-json|-literal)?=)(.*)$/.exec(arg);
    if (inline) return `${inline[1]}${maskPairs(inline[2] ?? '')}`;
    if (/^--set(-string|-file|-json|-literal)?$/.test(prev)) return maskPairs(arg);
    if (/^--(password|token|client-key)$/.test(prev)) return '***';
    return arg.replace(/^(--(password|token)=).*/, '$1***');
  });
}

/** `a=1,db.password=x` -> `a=1,db.password=***`; a secret value is masked to the end, commas and all. */
function maskPairs(arg: string): string {
  const out: string[] = [];
  for (const pair of arg.split(',')) {
    const eq = pair.indexOf('=');
    if (eq > 0) out.push(SECRET_KEY.test(pair.slice(0, eq)) ? `${pair.slice(0, eq)}=***` : pair);
    else if (out.length > 0 && /=\*\*\*$/.test(out[out.length - 1] as string))
      continue; // rest of a masked value
    else out.push(pair);
  }
  return out.join(',');
}

/** The lines of stderr worth showing: helm's `Error:` lines or, failing that, the last few. */
export function tellingLines(stderr: string, max = 5): string[] {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const errors = lines.filter((l) => /^(Error|error)\b|Error from server/.test(l));
  return (errors.length > 0 ? errors : lines).slice(-max);
}

const MASK = '***';
const KEY = String.raw`[\w.-]*(?:${SECRET_KEY.source})[\w.-]*`;
// An unterminated quote (a cut line) masks to the end of the line.
const QUOTED = String.raw`"(?:[^"\\\n]|\\.)*"?|'[^'\n]*'?`;
const rule = (re: string, flags: string, to: string): [RegExp, string] => [new RegExp(re, flags), to];

/** Each rule masks one way a secret gets printed; the key and everything around the value stay. */
const SCRUB_RULES: [RegExp, string][] = [
  // URL credentials: https://user:pass@host
  rule(String.raw`(\b[a-z][\w+.-]*://[^\s:@/]+:)[^\s@/]+@`, 'gi', `$1${MASK}@`),
  // Authorization: Bearer x, and a bearer token anywhere
  rule(String.raw`(\bauthorization\s*[:=]\s*(?:(?:bearer|basic|token)\s+)?)[^\s",]+`, 'gi', `$1${MASK}`),
  rule(String.raw`(\bbearer\s+)[\w.~+/=-]+`, 'gi', `$1${MASK}`),
  // --password=x, --token x, --client-secret "x y"
  rule(String.raw`(--${KEY}(?:=|\s+))(?:${QUOTED}|\S+)`, 'gi', `$1${MASK}`),
  // JSON and Go maps: "password":"x", "token": 42
  rule(String.raw`("${KEY}"\s*:\s*)(?:${QUOTED}|[^,}\s]+)`, 'gi', `$1"${MASK}"`),
  // The same escaped inside a JSON string: \"password\":\"x\"
  rule(String.raw`(\\"${KEY}\\"\s*:\s*)(?:\\".*?\\"|[^,}\s\\]+)`, 'gi', `$1\\"${MASK}\\"`),
  // An env var's or a field's value, whatever its name: core.EnvVar{Name:"DB_PASSWORD", Value:"x"},
  // Invalid value: "x", {"name":"DB_PASSWORD","value":"x"}
  rule(String.raw`(\bvalue"?\s*:\s*)(?:${QUOTED})`, 'gi', `$1"${MASK}"`),
  // A YAML line of its own: `  password: two words` (the value runs to the end of the line)
  rule(String.raw`^([ \t]*(?:-[ \t]+)?${KEY}:[ \t]+)\S.*$`, 'gim', `$1${MASK}`),
  // Inline key: value and key=value: Go %+v, flow YAML, query strings, --set pairs
  rule(String.raw`((?:^|[\s{(\[,;&?])${KEY}(?:\s*:\s*|=))(?:${QUOTED}|[^\s,;&}\])]+)`, 'gim', `$1${MASK}`),
];

/** Masks secret values in tool output (one line or many); everything around them stays readable. */
export function scrubSecrets(text: string): string {
  return SCRUB_RULES.reduce((out, [re, to]) => out.replace(re, to), text);
}

export const MAX_LINE_CHARS = 300;
export const MAX_STDERR_CHARS = 1_000;
/** Bounds the regex work on a pathological line. Only its end is cut: that never parts a value from its key. */
const MAX_SCANNED_CHARS = 4_000;

/** Keeps the head of a line. */
const cutEnd = (line: string, max: number) => (line.length <= max ? line : `${line.slice(0, max - 1)}…`);

/** Keeps both ends of a line: the API server puts the cause (`connection refused`) last. */
function cutMiddle(line: string, max = MAX_LINE_CHARS): string {
  if (line.length <= max) return line;
  const tail = Math.floor(max / 3);
  return `${line.slice(0, max - tail - 1)}…${line.slice(-tail)}`;
}

/** The telling lines of stderr, scrubbed, then truncated: each line and the total. */
function shownStderr(stderr: string): string[] {
  const lines = tellingLines(stderr).map((l) => cutMiddle(scrubSecrets(cutEnd(l, MAX_SCANNED_CHARS))));
  // The last lines tell most: drop from the front until the total fits.
  while (lines.length > 1 && lines.join('\n').length > MAX_STDERR_CHARS) lines.shift();
  return lines;
}

/** A chart repository or registry as failures name it: where it is and where its credentials come from. */
export interface ChartSource {
  name: string;
  url: string;
  /** e.g. `env HARBOR_PASSWORD`: said in the hint, never the value. */
  passwordFrom?: string;
}

/**
 * A failure that is the chart source's, not the cluster's: stderr names the source's host (helm
 * quotes the URL it could not fetch) and says TLS, 401/403 or unreachable.
 */
export function classifyChartSourceFailure(stderr: string, repo: ChartSource): FailureKind | undefined {
  const host = repo.url.replace(/^[a-z][\w+.-]*:\/\//i, '').split(/[/?#]/)[0] ?? '';
  if (!host) return undefined;
  // The host as a whole name: 10.0.0.5 must not match 10.0.0.50 or 10.0.0.5:6443 (a cluster).
  const named = new RegExp(`(?<![\\w.-])${host.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?![\\w.-]|:\\d)`);
  // Only the lines about the repository decide: another line may be a cluster's own error.
  const lines = stderr.split('\n').filter((l) => named.test(l));
  if (lines.length === 0) return undefined;
  const about = lines.join('\n');
  const where = `chart repository ${repo.name} (${repo.url})`;
  if (
    /x509:|certificate signed by unknown authority|tls: failed to verify|certificate is not valid|certificate required|bad certificate/i.test(
      about
    )
  )
    return {
      type: 'ChartRepoTlsFailed',
      nonRetryable: true,
      hint: `${where}: its TLS certificate is not trusted or a client certificate is missing; set chartRepo.caFile to the site's CA (certFile/keyFile for mutual TLS)`,
    };
  if (/\b401\b|\b403\b|unauthorized|authentication required|forbidden|denied/i.test(about))
    return {
      type: 'ChartRepoUnauthorized',
      nonRetryable: true,
      hint: `${where} refused the credentials; check chartRepo.username and chartRepo.password${repo.passwordFrom ? ` (${repo.passwordFrom})` : ''} on this worker host`,
    };
  if (/connection refused|no such host|i\/o timeout|network is unreachable|context deadline exceeded|EOF/i.test(about))
    return {
      type: 'ChartRepoUnreachable',
      nonRetryable: false,
      hint: `${where} cannot be reached from this worker host`,
    };
  return undefined;
}

export interface CommandFailure {
  tool: string;
  argv: readonly string[];
  exitCode?: number;
  stderr: string;
  timedOut?: boolean;
  /** The fleet cluster the command ran against, named in the message. */
  cluster?: string;
  /** The chart source the command reached, if any. */
  chartRepo?: ChartSource;
}

/** The one `details` entry of a command failure: every string in it is redacted or scrubbed. */
export interface CommandFailureDetails {
  tool: string;
  command: string;
  /** `helm upgrade`, `kubectl apply`: for grouping failures without parsing `command`. */
  commandKind: string;
  exitCode?: number;
  cluster?: string;
  stderr: string[];
}

export function commandFailure(f: CommandFailure): ApplicationFailure {
  const argv = redactArgv(f.argv);
  const stderr = shownStderr(f.stderr);
  // Classified on the raw text: masking must not change what kind of failure it is.
  const kind = f.timedOut
    ? { type: 'CommandTimedOut', nonRetryable: false }
    : ((f.chartRepo && classifyChartSourceFailure(f.stderr, f.chartRepo)) ?? classifyStderr(f.stderr));
  const why = f.timedOut ? 'timed out' : `exited ${f.exitCode ?? '?'}`;
  const where = f.cluster ? ` on ${f.cluster}` : '';
  const hint = kind.hint ? ` (${kind.hint})` : '';
  // Scrubbed again as a whole: the command's words come from the argv too.
  const message = scrubSecrets(
    `${f.tool} ${subcommand(argv)}${where} ${why}: ${stderr.at(-1) ?? '(no output)'}${hint}`
  );
  const details: CommandFailureDetails = {
    tool: f.tool,
    command: scrubSecrets(`${f.tool} ${argv.join(' ')}`),
    commandKind: scrubSecrets([f.tool, ...commandWords(argv)].join(' ')),
    exitCode: f.exitCode,
    ...(f.cluster ? { cluster: f.cluster } : {}),
    stderr,
  };
  return ApplicationFailure.create({ message, type: kind.type, nonRetryable: kind.nonRetryable, details: [details] });
}

/** Flags whose next argument is their value, not a word of the command. */
const VALUE_FLAGS = new Set([
  '--kubeconfig',
  '--kube-context',
  '--context',
  '-n',
  '--namespace',
  '--field-manager',
  '--filter',
  '--repo',
  '--version',
  '-o',
  '--output',
  '--revision',
  '-f',
  '--filename',
  '--values',
  '--set',
  '--set-string',
  '--untardir',
  '--history-max',
  '--username',
  '--ca-file',
  '--cert-file',
  '--key-file',
]);

/** The leading words of a command, skipping flags and their values. */
function commandWords(argv: readonly string[], max = 1): string[] {
  const words: string[] = [];
  for (let i = 0; i < argv.length && words.length < max; i++) {
    const a = argv[i] as string;
    if (VALUE_FLAGS.has(a)) i++;
    else if (!a.startsWith('-')) words.push(a);
  }
  return words;
}

/** `upgrade skoala-init` out of `--kubeconfig k upgrade --install -n ns skoala-init ...`. */
function subcommand(argv: readonly string[]): string {
  return commandWords(argv, 2).join(' ');
}
