/**
 * Whether the namespace has the Skoala* search attributes registered: start-upgrade sets them only
 * then (a start naming an unregistered attribute is refused by the server).
 */
import type { Client } from '@temporalio/client';
import type { SearchAttributePair } from '@temporalio/common';
import {
  SKOALA_FLEET,
  SKOALA_PHASE,
  SKOALA_SEARCH_ATTRIBUTES,
  SKOALA_VERSION,
  createSearchAttributesCommand,
} from '../../runbook/search-attributes';

export interface Registration {
  ok: boolean;
  /** What is missing and the command that registers it (when not ok). */
  hint?: string;
}

export async function searchAttributesRegistered(client: Client, namespace: string): Promise<Registration> {
  let names: string[];
  try {
    const res = await client.connection.operatorService.listSearchAttributes({ namespace });
    names = Object.keys(res.customAttributes ?? {});
  } catch (err) {
    // Listing is an operator call: a client without that permission starts without them.
    return { ok: false, hint: `cannot list search attributes (${(err as Error).message.split('\n')[0]})` };
  }
  const missing = SKOALA_SEARCH_ATTRIBUTES.filter((k) => !names.includes(k.name)).map((k) => k.name);
  if (missing.length === 0) return { ok: true };
  return {
    ok: false,
    hint: `search attributes ${missing.join(', ')} are not registered in namespace ${namespace}; the UI cannot filter upgrades by phase until they are: ${createSearchAttributesCommand(namespace)}`,
  };
}

/** The attributes an upgrade starts with. */
export const startAttributes = (fleet: string, version: string): SearchAttributePair[] => [
  { key: SKOALA_FLEET, value: fleet },
  { key: SKOALA_VERSION, value: version },
  { key: SKOALA_PHASE, value: 'preflight' },
];
