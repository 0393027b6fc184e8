import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMenderServer, type MenderServer } from '../fixtures/mender-server';
import { startS3Store } from '../fixtures/s3-store';
import { launchChromium } from '../spec/support/headless-chromium';
import { freePort } from '../spec/support/listen';
import { REPO_ROOT, startQuietGateway, type QuietGateway } from '../spec/support/gateway-process';
import { makeTlsMaterial } from '../spec/support/tls-material';
import { CACHE_MAX_SIZE, driveTraffic, OUTAGE } from './dashboard/traffic';
import { JOB, startPrometheus, type RunningPrometheus } from './dashboard/prometheus';
import { DASHBOARD, pageHtml, queryPanels, type Dashboard } from './dashboard/render-page';
import { runMain } from './part-timer';

// The picture of support/monitoring/grafana-dashboard.json in docs/operations.md, where Grafana
// cannot run: one gateway (HTTP and HTTPS, artifact proxy with a small cache, report journal,
// metrics) in front of the Mender server emulator and the S3 store, scraped every second by
// Debian's Prometheus under the job the rules expect, a few minutes of scripted device traffic
// (bench/dashboard/traffic.ts, an upstream outage included), then every panel's own PromQL run
// against that Prometheus over the traffic's time range and drawn on the panels' grid (uPlot),
// opened in headless Chromium and saved as a PNG. Targets that answered no series are listed.
// Knobs: DASHBOARD_SECONDS (traffic, 200), DASHBOARD_PNG (docs/monitoring-dashboard.png).

const print = (line: string): void => void process.stdout.write(`${line}\n`);
const SCRAPE_SECONDS = 1;
const STEP_SECONDS = 2;
// Grafana's $__rate_interval is max($__interval + scrape interval, 4 × scrape interval); a few
// minutes drawn at a 2 s step would give 4 s, so noisy a rate hides the shape: 10 s here.
const RATE_INTERVAL = '10s';

async function main(): Promise<void> {
  const seconds = Number(process.env.DASHBOARD_SECONDS ?? 200);
  const png = process.env.DASHBOARD_PNG ?? join(REPO_ROOT, 'docs', 'monitoring-dashboard.png');
  const dir = mkdtempSync(join(tmpdir(), 'dashboard-picture-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  const tls = makeTlsMaterial(dir);
  const store = await startS3Store();
  let server: MenderServer | undefined;
  let gw: QuietGateway | undefined;
  let prometheus: RunningPrometheus | undefined;
  try {
    server = await startMenderServer({ store, autoAccept: true });
    // GatewayURL names the HTTP listener's port, and Prometheus the metrics port: both chosen first.
    const httpPort = await freePort();
    const metricsAt = `127.0.0.1:${await freePort()}`;
    gw = await startQuietGateway(
      dir,
      'gateway-dashboard',
      {
        HTTP: { Enabled: true, Listen: `127.0.0.1:${httpPort}` },
        HTTPS: { Enabled: true, Listen: '127.0.0.1:0', ServerCertificate: tls.server.cert, ServerKey: tls.server.key },
        UpstreamServer: { URL: server.url, Timeout: '2s' },
        Features: {
          ArtifactsProxy: {
            Enabled: true,
            GatewayURL: `http://127.0.0.1:${httpPort}`,
            DomainWhitelist: [store.host],
            ArtifactsCache: { Enabled: true, Path: join(dir, 'cache'), MaxSize: CACHE_MAX_SIZE },
          },
          ReportJournal: { Enabled: true, Path: join(dir, 'journal') },
        },
        Metrics: { Enabled: true, Listen: metricsAt },
        Workers: 1,
      },
      { waitFor: ['http', 'https'], timeoutMs: 30_000 },
    );
    prometheus = await startPrometheus(join(dir, 'prometheus'), metricsAt, SCRAPE_SECONDS);
    print(
      `# dashboard picture: ${seconds} s of scripted traffic, Prometheus ${prometheus.url} scraping ${metricsAt} every ${SCRAPE_SECONDS} s`,
    );
    const start = Math.floor(Date.now() / 1000);
    await driveTraffic({ dir, server, base: gw.proc.url('http'), seconds });
    // Two more scrapes: the last seconds of traffic are in the TSDB before the queries.
    await new Promise((r) => setTimeout(r, 3000 * SCRAPE_SECONDS));
    const end = Math.floor(Date.now() / 1000);

    const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard;
    const vars = { job: JOB, instance: metricsAt, rateInterval: RATE_INTERVAL, range: `${end - start}s` };
    const { xs, panels, empty } = await queryPanels(dashboard, prometheus.url, vars, { start, end, step: STEP_SECONDS });
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO_ROOT, encoding: 'utf8' }).trim();
    const when = new Date(start * 1000).toISOString().replace(/:\d\d\.\d+Z$/, ' UTC');
    const html = pageHtml({
      title: dashboard.title,
      subtitle: `The dashboard's own queries ($job=${JOB}, $__rate_interval=${RATE_INTERVAL}, $__range=${vars.range}) over real Prometheus data from one gateway under ${seconds} s of scripted traffic with a ${Math.round(seconds * (OUTAGE.to - OUTAGE.from))} s upstream outage; drawn by \`make dashboard-picture\` (uPlot, not Grafana), ${when}, commit ${commit}.`,
      xs,
      panels,
    });

    const browser = await launchChromium(dir, { viewport: { width: 1632, height: 900 }, timezoneId: 'UTC' });
    try {
      const page = await browser.newPage();
      const problems: string[] = [];
      page.on('pageerror', (err) => problems.push(err.message));
      page.on('console', (m) => void (m.type() === 'error' && problems.push(m.text())));
      await page.setContent(html, { waitUntil: 'load' });
      if (problems.length) throw new Error(`the page failed: ${problems.join('; ')}`);
      await page.screenshot({ path: png, fullPage: true });
    } finally {
      await browser.close();
    }
    print(`\nwrote ${png} (${panels.filter((p) => p.type !== 'row').length} panels)`);
    print(empty.length ? `\ntargets that answered no series (${empty.length}):` : '\nevery target answered at least one series');
    for (const e of empty) print(`  ${e.panel} [${e.refId}]: ${e.expr}`);
  } finally {
    await prometheus?.stop();
    await gw?.proc.stop();
    await server?.start().catch(() => undefined);
    await server?.close();
    await store.close();
  }
}

if (require.main === module) runMain('dashboard-picture', main);
