/**
 * The custom search attributes the workflows keep current, so the Temporal UI's workflow list and
 * `temporal workflow list --query` can filter upgrades: `SkoalaPhase = "waiting-approval"`.
 * A namespace must have them registered (the dev server of the demo and tests does it at start;
 * for a real server: `temporal operator search-attribute create`, see README). Upgrades started
 * where they are missing run without them.
 */
import type { SearchAttributeKey } from '@temporalio/common/lib/search-attributes';

const key = <T extends 'KEYWORD' | 'KEYWORD_LIST'>(name: string, type: T): SearchAttributeKey<T> => ({ name, type });

/** Target version of the upgrade (parent and children). */
export const SKOALA_VERSION = key('SkoalaVersion', 'KEYWORD');
/** The fleet: the fleet file's `name` (parent and children). */
export const SKOALA_FLEET = key('SkoalaFleet', 'KEYWORD');
/** What the upgrade is doing now; see upgradePhaseOf. */
export const SKOALA_PHASE = key('SkoalaPhase', 'KEYWORD');
/** Worker clusters whose CRD step waits for approval (parent). */
export const SKOALA_WAITING_APPROVAL = key('SkoalaWaitingApproval', 'KEYWORD_LIST');
/** Worker clusters that failed or were rolled back (parent). */
export const SKOALA_FAILED_CLUSTERS = key('SkoalaFailedClusters', 'KEYWORD_LIST');
/** The cluster a child workflow upgrades. */
export const SKOALA_CLUSTER = key('SkoalaCluster', 'KEYWORD');

export const SKOALA_SEARCH_ATTRIBUTES = [
  SKOALA_VERSION,
  SKOALA_FLEET,
  SKOALA_PHASE,
  SKOALA_WAITING_APPROVAL,
  SKOALA_FAILED_CLUSTERS,
  SKOALA_CLUSTER,
] as const;

/** `temporal operator search-attribute create` type names. */
export const CLI_TYPE_NAME: Record<'KEYWORD' | 'KEYWORD_LIST', string> = {
  KEYWORD: 'Keyword',
  KEYWORD_LIST: 'KeywordList',
};

/**
 * The commands that register them on a real server (README, and the hint start-upgrade prints):
 * one per attribute: one `--type` for several `--name`s registered only the first (temporal 1.9, checked).
 */
export const createSearchAttributesCommand = (namespace: string): string =>
  SKOALA_SEARCH_ATTRIBUTES.map(
    (k) =>
      `temporal operator search-attribute create --namespace ${namespace} --name ${k.name} --type ${CLI_TYPE_NAME[k.type]}`
  ).join(' && ');

/**
 * SkoalaPhase values: the parent's Phase, except `waiting-approval` while any cluster waits at
 * its gate and `paused` while the rollout is paused; children: running, waiting-approval, or their outcome.
 */
export type SkoalaPhase = string;
