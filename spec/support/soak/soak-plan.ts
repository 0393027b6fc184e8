// What happens to the site during a soak, in seconds from its start: the month compressed. The
// same plan scales from the two-minute run in `make test` to the half hour of `make soak`; the
// events are placed at fixed fractions of the run so that the middle and the last third (what
// the plateau check compares) each see outages, reloads and a restart.

export type SoakEventKind =
  | 'outage' // the Mender server stops answering for `seconds`, then comes back
  | 'reload' // SIGHUP with the configuration unchanged
  | 'server-certificate' // a new server certificate in place, then SIGHUP
  | 'blocklist' // one device certificate's serial onto the blocklist, then SIGHUP
  | 'kill' // kill -9, then the gateway started again on the same folders
  | 'clock-forward' // the gateway's wall clock stepped a day ahead (NTP after a boot in the past)
  | 'clock-back'; // and back to the true time

export interface SoakEvent {
  at: number;
  kind: SoakEventKind;
  /** For an outage: how long upstream is gone. */
  seconds?: number;
}

export interface SoakPlan {
  seconds: number;
  events: SoakEvent[];
  /** Seconds between two samples of the gateway's figures. */
  sampleEvery: number;
  /** When the CRL's nextUpdate falls (seconds from the start): a CRL going stale mid-run. */
  crlDueAt: number;
}

const ONCE: [number, SoakEventKind][] = [
  [0.2, 'blocklist'],
  [0.28, 'kill'],
  [0.35, 'server-certificate'],
  [0.45, 'clock-forward'],
  [0.55, 'clock-back'],
  [0.75, 'server-certificate'],
  [0.85, 'kill'],
];

export function soakPlan(seconds: number): SoakPlan {
  const events: SoakEvent[] = ONCE.map(([f, kind]) => ({ at: Math.round(seconds * f), kind }));
  // An outage every four minutes of the run (at least three), 2 % of the run long (10–30 s).
  const outages = Math.max(3, Math.round(seconds / 240));
  const outage = Math.min(30, Math.max(10, Math.round(seconds * 0.02)));
  for (let k = 0; k < outages; k++)
    events.push({ at: Math.round((seconds * (k + 0.6)) / (outages + 0.4)), kind: 'outage', seconds: outage });
  const reloads = Math.max(2, Math.round(seconds / 120));
  for (let k = 0; k < reloads; k++) events.push({ at: Math.round((seconds * (k + 0.5)) / reloads), kind: 'reload' });
  // A third kill in the middle third of a long run: restarts in both thirds compared.
  if (seconds >= 600) events.push({ at: Math.round(seconds * 0.62), kind: 'kill' });
  events.sort((a, b) => a.at - b.at);
  return { seconds, events, sampleEvery: seconds >= 600 ? 5 : 2, crlDueAt: Math.round(seconds * 0.4) };
}
