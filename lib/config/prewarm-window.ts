// ArtifactsCache.PrewarmWindow (ours): the hours of the day, local time, in which the cache may
// be filled ahead of demand ("01:00-05:00"; a window may wrap midnight: "22:00-06:00"). Devices
// asking for an artifact are always served: the window limits prewarming only.

export interface PrewarmWindow {
  /** Minutes after local midnight. */
  start: number;
  end: number;
  text: string;
}

const WINDOW = /^([01][0-9]|2[0-3]):([0-5][0-9])-([01][0-9]|2[0-3]|24):([0-5][0-9])$/;

/** null for "" (any time); throws on anything else that is not HH:MM-HH:MM. */
export function parsePrewarmWindow(text: string): PrewarmWindow | null {
  if (text === '') return null;
  const m = WINDOW.exec(text);
  if (!m) throw new Error(`expected HH:MM-HH:MM (local time, "01:00-05:00"), got ${JSON.stringify(text)}`);
  const start = Number(m[1]) * 60 + Number(m[2]);
  const end = Number(m[3]) * 60 + Number(m[4]);
  if (end > 24 * 60 || start === end) throw new Error(`expected a window of some length, got ${JSON.stringify(text)}`);
  return { start, end, text };
}

export function isPrewarmWindow(text: string): boolean {
  try {
    parsePrewarmWindow(text);
    return true;
  } catch {
    return false;
  }
}

function minuteOfDay(at: Date): number {
  return at.getHours() * 60 + at.getMinutes() + at.getSeconds() / 60;
}

export function inWindow(w: PrewarmWindow | null, at = new Date()): boolean {
  if (w === null) return true;
  const m = minuteOfDay(at);
  return w.start < w.end ? m >= w.start && m < w.end : m >= w.start || m < w.end;
}

/** Milliseconds until the window opens (0 when open now). */
export function msUntilOpen(w: PrewarmWindow | null, at = new Date()): number {
  if (inWindow(w, at)) return 0;
  const m = minuteOfDay(at);
  const minutes = (w!.start - m + 24 * 60) % (24 * 60);
  return Math.ceil(minutes * 60_000);
}

/** Milliseconds until the open window closes (Infinity without a window). */
export function msUntilClose(w: PrewarmWindow | null, at = new Date()): number {
  if (w === null) return Infinity;
  const m = minuteOfDay(at);
  const minutes = (w.end - m + 24 * 60) % (24 * 60);
  return Math.ceil(minutes * 60_000);
}
