/**
 * What the Temporal UI shows of the parent: its current details (a Markdown table) and the Skoala*
 * search attributes, so the workflow list filters on `SkoalaPhase = "waiting-approval"`.
 *
 * Search attributes are upserted only when the upgrade was started with them (start-upgrade sets
 * them when the namespace has them registered): a namespace without them never sees an upsert,
 * which the server would refuse, and upgrades started before this existed replay unchanged.
 */
import { setCurrentDetails, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import { SKOALA_FAILED_CLUSTERS, SKOALA_PHASE, SKOALA_WAITING_APPROVAL } from '../runbook/search-attributes';
import { detailsMarkdown, phaseOf } from './details-markdown';
import type { FleetStatus } from './fleet-status';

/** Whether this workflow was started with the Skoala search attributes. */
export const hasSearchAttributes = (): boolean => workflowInfo().typedSearchAttributes.get(SKOALA_PHASE) !== undefined;

export interface FleetView {
  /** Shows the status now; `notes` add one-line facts (wave, holds, why the rollout stopped). */
  publish(notes?: string[]): void;
  /** Coalesces the changes of one activation into one publish. */
  changed(): void;
}

export function fleetView(status: FleetStatus): FleetView {
  const indexed = hasSearchAttributes();
  let lastNotes: string[] = [];
  let lastDetails = '';
  let lastIndexed = '';
  let scheduled = false;
  const publish = (notes: string[] = lastNotes) => {
    lastNotes = notes;
    const s = status.status();
    const details = detailsMarkdown(s, workflowInfo().workflowId, notes);
    if (details !== lastDetails) setCurrentDetails((lastDetails = details));
    if (!indexed) return;
    const phase = phaseOf(s);
    const waiting = s.pendingApprovals;
    const failed = s.failures.map((f) => f.cluster);
    const key = JSON.stringify([phase, waiting, failed]);
    if (key === lastIndexed) return;
    lastIndexed = key;
    upsertSearchAttributes([
      { key: SKOALA_PHASE, value: phase },
      // An empty list removes the attribute: `SkoalaWaitingApproval IS NULL` finds upgrades nobody waits on.
      { key: SKOALA_WAITING_APPROVAL, value: waiting.length > 0 ? waiting : null },
      { key: SKOALA_FAILED_CLUSTERS, value: failed.length > 0 ? failed : null },
    ]);
  };
  return {
    publish,
    changed() {
      if (scheduled) return;
      scheduled = true;
      // A microtask runs before the activation completes: many changes in one activation, one upsert.
      void Promise.resolve().then(() => {
        scheduled = false;
        publish();
      });
    },
  };
}
