/**
 * The dev server's command line: every search attribute registered, the log kept quiet, the UI
 * only when asked. (Starting it, and its log staying out of our output, are test/e2e/demo.test.ts.)
 */
import { describe, expect, it } from 'vitest';
import { SKOALA_SEARCH_ATTRIBUTES } from '../../runbook/search-attributes';
import { devServerArgs } from '../../scripts/lib/dev-server';

/** The values of a repeatable flag. */
const valuesOf = (args: string[], flag: string) => args.flatMap((a, i) => (args[i - 1] === flag ? [a] : []));

describe('devServerArgs', () => {
  it('registers every search attribute with its CLI type', () => {
    const args = devServerArgs({ port: 7233 });
    expect(valuesOf(args, '--search-attribute')).toEqual([
      'SkoalaVersion=Keyword',
      'SkoalaFleet=Keyword',
      'SkoalaPhase=Keyword',
      'SkoalaWaitingApproval=KeywordList',
      'SkoalaFailedClusters=KeywordList',
      'SkoalaCluster=Keyword',
    ]);
    expect(valuesOf(args, '--search-attribute')).toHaveLength(SKOALA_SEARCH_ATTRIBUTES.length);
  });

  it('binds loopback, logs warnings only, and is headless unless a UI port is given', () => {
    const args = devServerArgs({ port: 7233 });
    expect(args.slice(0, 2)).toEqual(['server', 'start-dev']);
    expect(valuesOf(args, '--ip')).toEqual(['127.0.0.1']);
    expect(valuesOf(args, '--port')).toEqual(['7233']);
    expect(valuesOf(args, '--log-level')).toEqual(['warn']);
    expect(args).toContain('--headless');
    expect(args).not.toContain('--ui-port');
    expect(args).not.toContain('--db-filename');
  });

  it('serves the UI on the port given and keeps state in the SQLite file given', () => {
    const args = devServerArgs({ port: 7233, uiPort: 8233, dbFilename: '/tmp/t.db' });
    expect(valuesOf(args, '--ui-port')).toEqual(['8233']);
    expect(valuesOf(args, '--db-filename')).toEqual(['/tmp/t.db']);
    expect(args).not.toContain('--headless');
  });
});
