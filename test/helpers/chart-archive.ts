/** Chart archives as helm packages them (`<chart>/...` in a .tgz), and a stand-in for `helm pull --destination`. */
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** A .tgz holding `<chart>/Chart.yaml` and `files` (paths inside the chart). */
export async function chartArchive(
  chart: string,
  version: string,
  files: Record<string, string> = {}
): Promise<Buffer> {
  const src = await mkdtemp(path.join(tmpdir(), 'chart-archive-'));
  try {
    const all = { 'Chart.yaml': `apiVersion: v2\nname: ${chart}\nversion: ${version}\n`, ...files };
    for (const [file, text] of Object.entries(all)) {
      await mkdir(path.dirname(path.join(src, chart, file)), { recursive: true });
      await writeFile(path.join(src, chart, file), text);
    }
    await execa('tar', ['-czf', path.join(src, 'chart.tgz'), '-C', src, chart]);
    return await readFile(path.join(src, 'chart.tgz'));
  } finally {
    await rm(src, { recursive: true, force: true });
  }
}

export const sha256Hex = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex');

/** Stands in for `helm pull <ref> --version V --destination DIR`: writes `archive` where helm would name it. */
export function pullInto(archive: Buffer): (argv: string[]) => Promise<string> {
  return async (argv) => {
    const at = argv.indexOf('--destination');
    if (argv[0] !== 'pull' || at < 0) throw new Error(`not a helm pull --destination: ${argv.join(' ')}`);
    const chart = argv[1]?.split('/').at(-1) ?? '';
    const version = argv[argv.indexOf('--version') + 1] ?? '';
    await writeFile(path.join(argv[at + 1] as string, `${chart}-${version}.tgz`), archive);
    return '';
  };
}
