// The documentation pages against the code: every configuration key and variable is
// in docs/configuration.md, the help of every command is quoted verbatim in docs/operations.md,
// every relative link (and heading anchor) of README.md and docs/*.md leads somewhere, and the
// README stays a front door of at most 200 lines.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { configKeys } from '../../lib/config/config-table';
import { ENV_OVERRIDES } from '../../lib/config/env-overrides';

const ROOT = join(__dirname, '..', '..', '..');
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');
const PAGES = [
  'README.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .sort()
    .map((f) => `docs/${f}`),
];

/** The commands whose `--help` docs/operations.md quotes, each under a heading `mender-gateway <args>`.
 * A subcommand joins this list once it is built and its subsection holds its help. */
const HELP_COMMANDS: string[][] = [
  [],
  ['check-config'],
  ['cache'],
  ['cache', 'list'],
  ['cache', 'evict'],
  ['cache', 'verify'],
  ['cache', 'prewarm'],
];

interface Line {
  text: string;
  inFence: boolean;
}

/** Lines of a Markdown file, each marked whether it is inside a fenced code block (fence lines too). */
function lines(markdown: string): Line[] {
  let fence = false;
  return markdown.split('\n').map((text) => {
    const isFence = /^\s*```/.test(text);
    const line = { text, inFence: fence || isFence };
    if (isFence) fence = !fence;
    return line;
  });
}

interface Heading {
  level: number;
  text: string;
  index: number;
}

function headings(markdown: string): Heading[] {
  const out: Heading[] = [];
  lines(markdown).forEach((line, index) => {
    const m = /^(#{1,6})\s+(.*?)\s*#*\s*$/.exec(line.text);
    if (m && !line.inFence) out.push({ level: m[1].length, text: m[2], index });
  });
  return out;
}

/** GitHub's heading anchors: lowercase, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const h of headings(markdown)) {
    const text = h.text.replace(/\[([^\]]*)\]\([^)]*\)/g, '$1');
    const slug = text
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\p{M}\- _]/gu, '')
      .replace(/ /g, '-');
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    out.add(n === 0 ? slug : `${slug}-${n}`);
  }
  return out;
}

/** The fenced code blocks between a heading and the next heading of its level or above. */
function blocksUnder(markdown: string, heading: Heading): string[] {
  const all = lines(markdown);
  const next = headings(markdown).find((h) => h.index > heading.index && h.level <= heading.level);
  const section = all.slice(heading.index + 1, next ? next.index : all.length);
  const blocks: string[] = [];
  let current: string[] | undefined;
  for (const line of section) {
    if (/^\s*```/.test(line.text)) {
      if (current) {
        blocks.push(current.join('\n'));
        current = undefined;
      } else current = [];
    } else if (current) current.push(line.text);
  }
  return blocks;
}

test('every configuration key and environment variable is in docs/configuration.md', () => {
  const page = read('docs/configuration.md');
  for (const key of configKeys()) assert.ok(page.includes(`\`${key.path}\``), key.path);
  for (const row of ENV_OVERRIDES) assert.ok(page.includes(`\`${row.env}\``), row.env);
});

for (const args of HELP_COMMANDS) {
  const command = ['mender-gateway', ...args].join(' ');
  test(`docs/operations.md quotes \`${command} --help\` under a heading naming it`, () => {
    const help = execFileSync(process.execPath, [join(ROOT, 'bin', 'gateway.js'), ...args, '--help'], {
      env: { PATH: process.env.PATH ?? '' },
      encoding: 'utf8',
    }).trimEnd();
    assert.ok(help.length > 0, `${command} --help printed nothing`);
    const page = read('docs/operations.md');
    const heading = headings(page).find((h) => h.text.replace(/`/g, '').trim() === command);
    assert.ok(heading, `docs/operations.md has a heading "${command}"`);
    const blocks = blocksUnder(page, heading);
    assert.ok(
      blocks.some((block) => block.includes(help)),
      `the help of ${command} is not quoted verbatim under its heading; it is now:\n${help}`,
    );
  });
}

test('every relative link of README.md and docs/*.md leads to a file, and to a heading when it names one', () => {
  const broken: string[] = [];
  for (const page of PAGES) {
    for (const line of lines(read(page))) {
      if (line.inFence) continue;
      const text = line.text.replace(/`[^`]*`/g, '');
      for (const m of text.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
        const target = m[1];
        if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:
        const [path, anchor] = target.split('#', 2);
        const file = path === '' ? join(ROOT, page) : resolve(dirname(join(ROOT, page)), decodeURI(path));
        if (!existsSync(file)) {
          broken.push(`${page}: ${target} (no ${relative(ROOT, file)})`);
          continue;
        }
        if (anchor && statSync(file).isFile() && file.endsWith('.md') && !anchors(readFileSync(file, 'utf8')).has(anchor)) {
          broken.push(`${page}: ${target} (no heading #${anchor} in ${relative(ROOT, file)})`);
        }
      }
    }
  }
  assert.deepEqual(broken, []);
});

test('README.md is at most 200 lines', () => {
  const count = read('README.md').replace(/\n$/, '').split('\n').length;
  assert.ok(count <= 200, `README.md has ${count} lines`);
});
