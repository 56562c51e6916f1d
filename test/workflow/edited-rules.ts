/**
 * runbook/rules.ts as someone might edit it while upgrades run: the DB-migration Job no longer runs
 * for 0.18.0 -> 0.19.2, and 0.19.x "manages its own CRDs" (no gate, no CRD step). The replay test
 * swaps this in for the real module: a running upgrade must keep the plan it recorded.
 */
import * as real from '../../runbook/rules';

export * from '../../runbook/rules';

export const decideRules: typeof real.decideRules = (from, to, opts) => ({
  ...real.decideRules(from, to, opts),
  runDbMigration: false,
  chartManagesCrds: true,
  crdFiles: [],
});
