/**
 * A headless browser for UI tests: Debian's chromium driven by playwright-core (`npx playwright
 * install` cannot work on these machines: no download hosts). Each launch gets a fresh profile:
 * playwright's launch() makes a temporary --user-data-dir and removes it on close.
 *
 * The Temporal UI (2.54.1, in `temporal server start-dev --ui-port U`) is a client-side app: the
 * DOM is there in ~0.1 s, its data 1.5-3 s later on 2 busy cores, so wait for a text, not for load.
 * - The list (workflowListUrl) shows one `table tbody tr` per workflow, the ID as text; skeleton
 *   rows while loading; "No Workflows Found" when the query matches none.
 * - A run's page (workflowUrl) has tabs that are routes: history (activity summaries appear as
 *   "Summary" under each Activity Task Scheduled event), timeline (`<activityType> • <summary>`),
 *   user-metadata, search-attributes (one JSON block), memo, pending-activities, relationships.
 *   `/workflows/<id>` without the run ID redirects to the latest run's timeline.
 * - Summary, Details and Current Details render as markdown inside iframes: userMetadata().
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

/** Git-ignored (test-output/): screenshots a UI test leaves for a person to look at. */
export const SCREENSHOT_DIR = path.join(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  'test-output',
  'screenshots'
);

const ARGS = [
  '--headless',
  '--no-sandbox', // CI runs as root, where chromium's sandbox refuses to start
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface BrowserSession {
  browser: Browser;
  context: BrowserContext;
  /** A new page at this URL (waits for the DOM, not for the app's data: use waitForText). */
  open(url: string): Promise<Page>;
  /** A full-page PNG `<dir>/<name>.png`; returns its path. */
  screenshot(page: Page, name: string): Promise<string>;
  close(): Promise<void>;
}

export interface BrowserOptions {
  /** Where screenshot() writes (default SCREENSHOT_DIR). */
  screenshotDir?: string;
  /** Page size (default 1400x900: the UI's wide layout, every column of the workflow list). */
  viewport?: { width: number; height: number };
}

/** Throws one clear line when Debian's chromium is missing (only tests that need a browser call this). */
export function assertChromium(): void {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `${CHROMIUM} not found: the UI tests need Debian's chromium (apt-get install -y --no-install-recommends chromium; .ci/run does it)`
    );
  }
}

export async function launchBrowser(opts: BrowserOptions = {}): Promise<BrowserSession> {
  assertChromium();
  const dir = opts.screenshotDir ?? SCREENSHOT_DIR;
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, timeout: 60_000 });
  try {
    const context = await browser.newContext({ viewport: opts.viewport ?? { width: 1400, height: 900 } });
    return {
      browser,
      context,
      async open(url) {
        const page = await context.newPage();
        await page.goto(url, { waitUntil: 'domcontentloaded', timeout: 30_000 });
        return page;
      },
      async screenshot(page, name) {
        await mkdir(dir, { recursive: true });
        const file = path.join(dir, `${name.replace(/[^\w.-]+/g, '_')}.png`);
        await page.screenshot({ path: file, fullPage: true });
        return file;
      },
      async close() {
        await browser.close();
      },
    };
  } catch (err) {
    await browser.close();
    throw err;
  }
}

/** The workflow list, optionally filtered by a visibility query (`SkoalaPhase = "done"`). */
export function workflowListUrl(ui: string, query?: string, namespace = 'default'): string {
  const list = `${ui}/namespaces/${encodeURIComponent(namespace)}/workflows`;
  return query ? `${list}?query=${encodeURIComponent(query)}` : list;
}

export type WorkflowTab =
  'history' | 'timeline' | 'user-metadata' | 'search-attributes' | 'memo' | 'pending-activities' | 'relationships';

/** One run's page, on one tab. */
export function workflowUrl(ui: string, workflowId: string, runId: string, tab: WorkflowTab = 'history'): string {
  return `${ui}/namespaces/default/workflows/${encodeURIComponent(workflowId)}/${runId}/${tab}`;
}

/**
 * The text of Summary, Details (set at start) or Current Details (`setCurrentDetails`) on a page
 * at the user-metadata tab, once rendered. Markdown renders (`--x` outside backticks shows as "–x").
 */
export async function userMetadata(
  page: Page,
  which: 'summary' | 'details' | 'current-details',
  timeoutMs = 15_000
): Promise<string> {
  const body = page.frameLocator(`#user-metadata-${which}`).locator('body');
  await body.getByText(/\S/).first().waitFor({ state: 'visible', timeout: timeoutMs });
  return (await body.innerText()).trim();
}

/** Until the text is visible on the page (a string matches a substring). */
export async function waitForText(page: Page, text: string | RegExp, timeoutMs = 15_000): Promise<void> {
  await page.getByText(text).first().waitFor({ state: 'visible', timeout: timeoutMs });
}

/** The page's visible text (for assertions that name what was there when they fail). */
export async function visibleText(page: Page): Promise<string> {
  return await page.locator('body').innerText();
}
