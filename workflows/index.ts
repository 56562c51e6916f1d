/** The workflow bundle's entry point: every workflow type the worker registers. */
export { upgradeEngine } from './upgrade-engine';
export { upgradeWorkerCluster } from './upgrade-worker-cluster';
export { rollbackClusters } from './rollback-clusters';
