import { workflowInfo } from '@temporalio/workflow';

/** A worker cluster's child workflow: `<upgrade workflow ID>/<cluster>`. */
export const childId = (cluster: string): string => `${workflowInfo().workflowId}/${cluster}`;
