/**
 * Which images rendered manifests use, and where each one lives (pure). Image references follow
 * the distribution reference grammar: `[registry/]repository[:tag][@digest]`, where the first
 * component is a registry only if it has a "." or ":" or is "localhost", as Docker reads it.
 */
import { parseAllDocuments } from 'yaml';

export interface ImageRef {
  /** As written in the manifest. */
  ref: string;
  /** `host[:port]`; Docker Hub is `docker.io`. */
  registry: string;
  repository: string;
  /** A tag or a digest (`sha256:...`): what the registry's manifest URL takes. */
  reference: string;
}

export function parseImageRef(ref: string): ImageRef | undefined {
  const trimmed = ref.trim();
  if (!trimmed || /\s/.test(trimmed)) return undefined;
  const [name, digest] = trimmed.split('@') as [string, string | undefined];
  const slash = name.indexOf('/');
  const first = slash < 0 ? '' : name.slice(0, slash);
  const hasRegistry = slash >= 0 && (first.includes('.') || first.includes(':') || first === 'localhost');
  const registry = hasRegistry ? first : 'docker.io';
  let rest = hasRegistry ? name.slice(slash + 1) : name;
  let tag = 'latest';
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  if (!rest) return undefined;
  const repository = registry === 'docker.io' && !rest.includes('/') ? `library/${rest}` : rest;
  return { ref: trimmed, registry, repository, reference: digest ?? tag };
}

const CONTAINER_LISTS = new Set(['containers', 'initContainers', 'ephemeralContainers']);

/** Every image of every container in multi-document YAML (Deployments, Jobs, CronJobs, Pods, ...). */
export function imagesInManifests(yamlText: string): string[] {
  const found = new Set<string>();
  const walk = (node: unknown, key?: string): void => {
    if (Array.isArray(node)) {
      for (const item of node) {
        if (key && CONTAINER_LISTS.has(key) && item && typeof item === 'object' && 'image' in item) {
          const image = (item as { image?: unknown }).image;
          if (typeof image === 'string' && image.trim()) found.add(image.trim());
        }
        walk(item);
      }
    } else if (node && typeof node === 'object') {
      for (const [k, v] of Object.entries(node)) walk(v, k);
    }
  };
  for (const doc of parseAllDocuments(yamlText)) {
    if (!('toJS' in doc)) continue; // an empty trailing document
    // A garbled render must not pass as "no images": the check would then check nothing.
    if (doc.errors.length > 0)
      throw new Error(`rendered manifests are not valid YAML: ${doc.errors[0]?.message ?? ''}`);
    walk(doc.toJS());
  }
  return [...found].sort();
}

export interface MissingImage {
  image: string;
  /** Clusters whose upgrade would pull it (a few names at most). */
  clusters: string[];
  /** `not found`, or why it could not be checked (access denied, unreachable). */
  reason: string;
}

export interface ImageCheckResult {
  /** Distinct images asked for. */
  checked: number;
  missing: MissingImage[];
}

/** One line for preflight and plan: each missing image, why, and who needs it. */
export function missingImagesLine(missing: MissingImage[], max = 10): string {
  const shown = missing
    .slice(0, max)
    .map((m) => `${m.image} (${m.reason}; needed by ${m.clusters.join(', ')})`)
    .join('; ');
  return missing.length > max ? `${shown}; and ${missing.length - max} more` : shown;
}
