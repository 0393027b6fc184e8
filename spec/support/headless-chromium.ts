import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';

// Debian's Chromium, headless, for the pages the gateway draws (the status page, the dashboard's
// picture). The flags keep it off the network this machine does not have (background
// networking, component updates, sync, QUIC): without them it tries Google's hosts at every start.

export const CHROMIUM = '/usr/bin/chromium';

/** A browser with a fresh profile in a folder under `dir` (removed with it). */
export function launchChromium(
  dir: string,
  options: { viewport: { width: number; height: number }; timezoneId?: string },
): Promise<BrowserContext> {
  return chromium.launchPersistentContext(mkdtempSync(join(dir, 'chromium-')), {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    timeout: 30_000,
    ...options,
  });
}

/** What a page complains of (console errors and warnings, page errors, failed requests), as it happens. */
export function pageProblems(page: Page): string[] {
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  page.on('requestfailed', (r) => problems.push(`requestfailed: ${r.url()}`));
  return problems;
}
