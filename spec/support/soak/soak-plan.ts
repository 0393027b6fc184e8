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
  /** Lifetime of the JWTs the server issues (devices' and the management session's). */
  jwtLifetime: number;
  /** Seconds between two samples of the gateway's figures. */
  sampleEvery: number;
  /** When the CRL's nextUpdate falls (seconds from the start): a CRL going stale mid-run. */
  crlDueAt: number;
}

// The clock's day ahead: in the middle of a long run; in the warm-up of a short one, whose
// middle and last thirds need the outages (the two must not overlap: below).
const clockSteps = (seconds: number): [number, number] => (seconds >= 600 ? [0.45, 0.52] : [0.2, 0.25]);

// kill -9 early (in the warm-up) and late (in the last tenth): the process that runs through the
// middle and most of the last third is the same one, so the plateau check sees one long life.
const ONCE: [number, SoakEventKind][] = [
  [0.12, 'kill'],
  [0.2, 'blocklist'],
  [0.35, 'server-certificate'],
  [0.75, 'server-certificate'],
  [0.92, 'kill'],
];

export function soakPlan(seconds: number): SoakPlan {
  const [CLOCK_AHEAD, CLOCK_BACK] = clockSteps(seconds);
  const events: SoakEvent[] = [
    ...ONCE.map(([f, kind]) => ({ at: Math.round(seconds * f), kind })),
    { at: Math.round(seconds * CLOCK_AHEAD), kind: 'clock-forward' },
    { at: Math.round(seconds * CLOCK_BACK), kind: 'clock-back' },
  ];
  // Short JWT lifetimes: the management session and the devices' tokens expire many times over.
  const jwtLifetime = seconds >= 600 ? 60 : 20;
  // An outage every four minutes of the run (at least two), 2 % of the run long (10–30 s).
  const outages = Math.max(2, Math.round(seconds / 240));
  const outage = Math.min(30, Math.max(10, Math.round(seconds * 0.02)));
  // Clock steps and outages do not overlap: while the gateway's clock is a day ahead of the
  // server's it cannot tell a live device token from an expired one, so it neither hands out kept
  // tokens nor journals reports for them (docs/operations.md "Clock steps";
  // spec/integration/clock-step.test.ts runs that case). Outages start evenly over the time
  // before the step ahead and after a token lifetime past the step back.
  const before = Math.max(0, seconds * CLOCK_AHEAD - outage - 10);
  const after = seconds * CLOCK_BACK + jwtLifetime + 10;
  const span = before + Math.max(0, seconds - outage - 5 - after);
  for (let k = 0; k < outages; k++) {
    const p = (span * (k + 0.6)) / (outages + 0.4);
    events.push({ at: Math.round(p < before ? p : after + p - before), kind: 'outage', seconds: outage });
  }
  const reloads = Math.max(2, Math.round(seconds / 120));
  for (let k = 0; k < reloads; k++) events.push({ at: Math.round((seconds * (k + 0.5)) / reloads), kind: 'reload' });
  // A third kill in a long run, in the warm-up too.
  if (seconds >= 600) events.push({ at: Math.round(seconds * 0.3), kind: 'kill' });
  events.sort((a, b) => a.at - b.at);
  return { seconds, events, jwtLifetime, sampleEvery: seconds >= 600 ? 5 : 2, crlDueAt: Math.round(seconds * 0.4) };
}
