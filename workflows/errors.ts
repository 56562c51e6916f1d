/** The message worth showing from a failure that crossed activity or child boundaries. */
import { ChildWorkflowFailure } from '@temporalio/workflow';

export const errorMessage = (err: unknown): string => {
  if (err instanceof ChildWorkflowFailure && err.cause) return err.cause.message;
  if (err instanceof Error) return err.cause instanceof Error ? err.cause.message : err.message;
  return String(err);
};
