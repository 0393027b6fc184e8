import { createLogger, type Level, type Logger } from '../../lib/observe/log';

/** A real logger whose lines are kept for assertions (e.g. that no secret was logged). */
export function captureLog(level: Level = 'debug'): { log: Logger; lines: string[]; text(): string } {
  const lines: string[] = [];
  const log = createLogger({ level, sink: { write: (line: string) => lines.push(line) } });
  return { log, lines, text: () => lines.join('') };
}
