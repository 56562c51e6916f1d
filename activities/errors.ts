/**
 * Turns a failed helm/kubectl process into a Temporal failure an operator can act on: what ran
 * (secrets redacted), the exit code, the telling stderr lines, and whether retrying can help.
 */
import { ApplicationFailure } from '@temporalio/common';

export interface FailureKind {
  type: string;
  nonRetryable: boolean;
  hint?: string;
}

/** First match wins: specific, permanent causes before the transient ones they may contain. */
const KINDS: [RegExp, FailureKind][] = [
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

const SECRET_KEY = /pass(word|wd)?|secret|token|credential|private|apikey|api-key/i;

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

export interface CommandFailure {
  tool: string;
  argv: readonly string[];
  exitCode?: number;
  stderr: string;
  timedOut?: boolean;
}

export function commandFailure(f: CommandFailure): ApplicationFailure {
  const command = `${f.tool} ${redactArgv(f.argv).join(' ')}`;
  const lines = tellingLines(f.stderr);
  const kind = f.timedOut ? { type: 'CommandTimedOut', nonRetryable: false } : classifyStderr(f.stderr);
  const why = f.timedOut ? 'timed out' : `exited ${f.exitCode ?? '?'}`;
  const verb = subcommand(f.argv);
  const message = `${f.tool} ${verb} ${why}: ${lines.at(-1) ?? '(no output)'}${kind.hint ? ` (${kind.hint})` : ''}`;
  return ApplicationFailure.create({
    message,
    type: kind.type,
    nonRetryable: kind.nonRetryable,
    details: [{ command, exitCode: f.exitCode, stderr: lines }],
  });
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
]);

/** `upgrade skoala-init` out of `--kubeconfig k upgrade --install -n ns skoala-init ...`. */
function subcommand(argv: readonly string[]): string {
  const words: string[] = [];
  for (let i = 0; i < argv.length && words.length < 2; i++) {
    const a = argv[i] as string;
    if (VALUE_FLAGS.has(a)) i++;
    else if (!a.startsWith('-')) words.push(a);
  }
  return words.join(' ');
}
