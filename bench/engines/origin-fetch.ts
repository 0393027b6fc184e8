import { createWriteStream } from 'node:fs';
import http from 'node:http';
import { pipeline } from 'node:stream/promises';
import { rssBytes } from '../../spec/support/process-stats';

// An artifact-origin fetch as the cache fills (argv: client, url, count, [proxy URL]), in a
// process of its own: `count` downloads one after the other, streamed to /dev/null (the disk is
// the same for every client). Reports MB/s and the peak RSS over the start, by IPC.
//   agent  : http.get with a keep-alive http.Agent (https-proxy-agent behind a proxy): the gateway's
//   undici : undici.request on a Pool (ProxyAgent behind a proxy)

const [client, url, countArg, proxyUrl] = process.argv.slice(2);
const count = Number(countArg);

async function viaAgent(): Promise<void> {
  let agent: http.Agent;
  if (proxyUrl) {
    const { HttpsProxyAgent } = require('https-proxy-agent') as typeof import('https-proxy-agent');
    agent = new HttpsProxyAgent(proxyUrl, { keepAlive: true }) as unknown as http.Agent;
  } else agent = new http.Agent({ keepAlive: true });
  for (let i = 0; i < count; i++) {
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => http.get(url, { agent }, resolve).on('error', reject));
    await pipeline(res, createWriteStream('/dev/null'));
  }
}

async function viaUndici(): Promise<void> {
  const { Pool, ProxyAgent, request } = require('undici') as typeof import('undici');
  const dispatcher = proxyUrl ? new ProxyAgent(proxyUrl) : new Pool(new URL(url).origin);
  for (let i = 0; i < count; i++) {
    const { body } = await request(url, { dispatcher });
    await pipeline(body, createWriteStream('/dev/null'));
  }
}

async function main(): Promise<void> {
  const start = rssBytes(process.pid);
  let peak = start;
  const sampler = setInterval(() => (peak = Math.max(peak, rssBytes(process.pid))), 50);
  const t0 = process.hrtime.bigint();
  await (client === 'undici' ? viaUndici() : viaAgent());
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  clearInterval(sampler);
  process.send?.({ seconds, peakGrowth: peak - start });
  process.exit(0);
}

void main();
