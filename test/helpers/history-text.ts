/**
 * Workflow histories as searchable text. Raw history holds every payload (inputs, results,
 * failure details, memos) as bytes, which JSON shows as base64: a search for a secret in it
 * could never find one. Here each payload's bytes are decoded to the value they encode.
 */
import type { Client, WorkflowHandle } from '@temporalio/client';

type History = Awaited<ReturnType<WorkflowHandle['fetchHistory']>>;

/** Bytes as they reach a JSON replacer: base64 (protobuf toJSON), Buffer.toJSON, or a Uint8Array. */
function bytesOf(v: unknown): Buffer | undefined {
  if (typeof v === 'string') return Buffer.from(v, 'base64');
  if (v instanceof Uint8Array) return Buffer.from(v);
  if (v && typeof v === 'object' && (v as { type?: unknown }).type === 'Buffer') {
    const data = (v as { data?: unknown }).data;
    if (Array.isArray(data)) return Buffer.from(data as number[]);
  }
  return undefined;
}

/** A Payload: `metadata` with an `encoding` entry, and (unless binary/null) `data`. */
function isPayload(v: unknown): v is { metadata: Record<string, unknown>; data?: unknown } {
  const metadata = (v as { metadata?: unknown } | null)?.metadata;
  return typeof metadata === 'object' && metadata !== null && 'encoding' in metadata;
}

/** JSON payloads become their value; anything else its text. */
function decodedData(data: unknown): unknown {
  const text = bytesOf(data)?.toString('utf8');
  if (text === undefined) return data;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

function decodePayloads(_key: string, value: unknown): unknown {
  if (!isPayload(value)) return value;
  const metadata = Object.fromEntries(
    Object.entries(value.metadata).map(([k, v]) => [k, bytesOf(v)?.toString('utf8') ?? v])
  );
  return { ...value, metadata, data: decodedData(value.data) };
}

/** One history (events and all) as JSON, every payload decoded. */
export function decodedHistoryText(history: History): string {
  return JSON.stringify(history, decodePayloads);
}

/** The histories of a workflow and of the given child workflow IDs (current runs), decoded, one per line. */
export async function decodedHistoriesText(client: Client, workflowId: string, childIds: string[]): Promise<string> {
  const texts = await Promise.all(
    [workflowId, ...childIds].map(async (id) => decodedHistoryText(await client.workflow.getHandle(id).fetchHistory()))
  );
  return texts.join('\n');
}
