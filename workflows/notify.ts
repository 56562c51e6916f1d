/**
 * Notifications to the fleet's webhook: sent from an activity with retries on the parent's task
 * queue, never awaited on the upgrade's path, and never able to fail it (a dead hook is logged).
 */
import { log, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { NotificationEvent, NotifyHook, UpgradeRequest, Version } from '../runbook/types';
import type { Activities } from './activities';

/** What a workflow needs to send: the hook and where its activity runs. */
export interface NotifyContext {
  hook: NotifyHook;
  taskQueue: string;
  upgradeId: string;
  fleet: string;
  version: Version;
}

export type Notice = Omit<NotificationEvent, 'upgradeId' | 'fleet' | 'version' | 'at'>;

export interface Notifier {
  send(notice: Notice): void;
  /** Waits for the notices sent so far (before the workflow returns: a closed workflow drops its activities). */
  flush(): Promise<void>;
}

export function notifier(ctx: NotifyContext | undefined): Notifier {
  if (!ctx) return { send: () => undefined, flush: async () => undefined };
  const { notify } = proxyActivities<Activities>({
    taskQueue: ctx.taskQueue,
    startToCloseTimeout: '30 seconds',
    retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 5 },
  });
  const pending = new Set<Promise<void>>();
  return {
    send(notice) {
      const event: NotificationEvent = {
        upgradeId: ctx.upgradeId,
        fleet: ctx.fleet,
        version: ctx.version,
        at: new Date().toISOString(),
        ...notice,
      };
      const p = notify({ hook: ctx.hook, event }).then(
        () => undefined,
        (err: unknown) =>
          log.warn('the notification webhook was not reached', { event: event.event, error: String(err) })
      );
      pending.add(p);
      void p.finally(() => pending.delete(p));
    },
    async flush() {
      await Promise.all([...pending]);
    },
  };
}

/** The webhook context of an upgrade, or undefined when its fleet has no hook. Activities run on the parent's queue. */
export function notifyContextOf(request: UpgradeRequest): NotifyContext | undefined {
  const hook = request.fleet.notify;
  if (!hook) return undefined;
  return {
    hook,
    taskQueue: workflowInfo().taskQueue,
    upgradeId: request.upgradeId,
    fleet: request.fleet.name,
    version: request.options.targetVersion,
  };
}
