import http from 'node:http';
import https from 'node:https';
import { runMain } from '../part-timer';

// N devices start the same download at once, each exactly once; the wall time until the last
// one has every byte. Input (argv[2], JSON): url, devices, expectBytes. Output: one JSON line.

interface Input {
  url: string;
  devices: number;
  expectBytes: number;
}

function download(url: URL): Promise<{ bytes: number; seconds: number; status: number }> {
  const t0 = performance.now();
  const get = url.protocol === 'https:' ? https.get : http.get;
  return new Promise((resolve) => {
    const req = get(url, { agent: false, rejectUnauthorized: false }, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('close', () => resolve({ bytes, seconds: (performance.now() - t0) / 1000, status: res.statusCode ?? 0 }));
    });
    req.setTimeout(10 * 60_000, () => req.destroy());
    req.on('error', () => resolve({ bytes: 0, seconds: (performance.now() - t0) / 1000, status: 0 }));
  });
}

async function main(): Promise<void> {
  const o = JSON.parse(process.argv[2]) as Input;
  const url = new URL(o.url);
  const t0 = performance.now();
  const all = await Promise.all(Array.from({ length: o.devices }, () => download(url)));
  const seconds = (performance.now() - t0) / 1000;
  const complete = all.filter((d) => d.bytes === o.expectBytes && d.status === 200).length;
  const times = all.map((d) => d.seconds).sort((a, b) => a - b);
  const statuses = [...new Set(all.map((d) => d.status))];
  const bytes = [...new Set(all.map((d) => d.bytes))].slice(0, 5);
  const cpu = process.cpuUsage();
  // Share of one core this client used: near 1 means the client, not the server, set the pace.
  const clientCpu = (cpu.user + cpu.system) / 1e6 / seconds;
  process.stdout.write(
    `${JSON.stringify({ seconds, clientCpu, complete, devices: o.devices, fastest: times[0], slowest: times[times.length - 1], statuses, bytes })}\n`,
  );
}

runMain('burst', main);
