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
  [/\bforbidden\b|unauthorized|you must be logged in/i, { type: 'AccessDenied', nonRetryable: true, hint: 'check the kubeconfig credentials and RBAC' }],
  [
    /context "[^"]*" does not exist|error loading config file|no configuration has been provided|kubeconfig.*no such file|invalid configuration/i,
    { type: 'BadKubeconfig', nonRetryable: true, hint: 'check kubeconfig and context in the fleet file' },
  ],
  [/field is immutable/i, { type: 'ImmutableField', nonRetryable: true }],
  [
    /YAML parse error|error converting YAML|values don't meet the specifications|failed parsing --set|cannot unmarshal|execution error at/i,
    { type: 'InvalidValues', nonRetryable: true, hint: 'check the values files' },
  ],
  [/storedVersions|is invalid:|Invalid value/i, { type: 'Invalid', nonRetryable: true }],
  [/no such file or directory|does not exist/i, { type: 'FileNotFound', nonRetryable: true }],
  [
    /connection refused|i\/o timeout|connection reset|TLS handshake timeout|EOF|service unavailable|the server is currently unable|context deadline exceeded|too many requests|etcdserver|cluster unreachable/i,
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
    if (/^--set(-string|-file|-json|-literal)?$/.test(prev)) {
      return arg
        .split(',')
        .map((pair) => {
          const eq = pair.indexOf('=');
          return eq > 0 && SECRET_KEY.test(pair.slice(0, eq)) ? `${pair.slice(0, eq)}=***` : pair;
        })
        .join(',');
    }
    if (/^--(password|token|client-key)$/.test(prev)) return '***';
    return arg.replace(/^(--(password|token)=).*/, '$1***');
  });
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

const TARGET_FLAGS = new Set(['--kubeconfig', '--kube-context', '--context']);

/** `upgrade skoala-init` out of `--kubeconfig k --kube-context c upgrade --install ... skoala-init ...`. */
function subcommand(argv: readonly string[]): string {
  const words: string[] = [];
  for (let i = 0; i < argv.length && words.length < 2; i++) {
    const a = argv[i] as string;
    if (TARGET_FLAGS.has(a)) i++;
    else if (!a.startsWith('-')) words.push(a);
  }
  return words.join(' ');
}
