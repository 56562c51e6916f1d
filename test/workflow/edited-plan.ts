/**
 * The design the recorded rules replaced, as the replay test's positive control: the plan computed
 * again from the current rules (here the edited ones) at every replay, ignoring the recorded
 * decision. Replay must catch the changed plan of a running upgrade.
 */
import * as real from '../../runbook/plan';
import { decideRules } from './edited-rules';

export * from '../../runbook/plan';

export const planUpgrade: typeof real.planUpgrade = (request, facts) =>
  real.planUpgrade(
    request,
    facts,
    decideRules(real.installedVersion(facts.controlPlane), request.options.targetVersion, request.options)
  );
