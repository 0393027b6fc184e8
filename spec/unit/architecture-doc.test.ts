// The documentation pages name the code as it is: every module path a page writes in backticks
// (or links to) exists, and every function, class or constant it names together with a module is
// defined in that module. How a page names code (docs/architecture.md, "How these pages name code"):
//   - a path in backticks: `lib/http/route-table.ts`, or under lib/ without the prefix:
//     `http/route-table.ts`; a folder may end with a slash: `lib/commands/`; a bare file name
//     (`known-tokens.ts`) must be some file of the tree;
//   - a name of a module right after its path: `http/route-table.ts` `buildRouteTable`, a member as
//     `ArtifactCache.serve`; or the path in parentheses right after the name: `proxyFor`
//     (`proxy/upstream.ts`); or names moved into a module: `A`, `B` → `proxy/upstream-handler.ts`;
//   - a file that no longer exists is struck through: ~~`proxy/agent-dial.ts`~~; files of other
//     trees (the release packages, the clients' directory) are listed in OTHER_TREES below.
// Fenced code blocks are examples and are not checked. One failure lists every miss (page:line).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';

const ROOT = join(__dirname, '..', '..', '..');
const PAGES = readdirSync(join(ROOT, 'docs'))
  .filter((f) => f.endsWith('.md'))
  .sort()
  .map((f) => `docs/${f}`);

/** Top folders a path may start with; the folders of lib/ too, as pages name modules without `lib/`. */
const TOP = new Set(['lib', 'bin', 'support', 'spec', 'fixtures', 'bench', 'docs', '.ci']);
const LIB_FOLDERS = new Set(
  readdirSync(join(ROOT, 'lib'), { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => e.name),
);
/** Files of other trees the pages describe, not of this one: the release bundle and packages
 * (docs/operations.md), the client-5 directory (docs/clients.md), the testssl.sh tool. */
const OTHER_TREES = new Set([
  'lib/mender-gateway.js',
  'lib/crl-libs.js',
  'crl-libs.js',
  'bin/mender-gateway',
  'bin/node',
  'bin/mender-update',
  'bin/mender-auth',
  'mkinstance.sh',
  'start-instance.sh',
  'stop-instance.sh',
  'kick-instance.sh',
  'testssl.sh',
]);
const FILE_EXT = /\.(ts|js|cjs|mjs|json|jsonc|sh|md)$/;
const PATH_TOKEN = /^[\w.@-]+(?:\/[\w.@-]+)*\/?$/;
const NAME_TOKEN = /^[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)?(?:\(\))?$/;

/** Whether a backticked token is a path in the tree rather than a URL path, a key or a value. */
function isPathToken(token: string): boolean {
  // `.json` or `.deb` alone is a kind of file, not a file.
  if (!PATH_TOKEN.test(token) || /^\.[\w-]+$/.test(token)) return false;
  if (FILE_EXT.test(token)) return true;
  const first = token.split('/')[0];
  if (!token.includes('/')) return false;
  // `deployments/next` is an API path, `lib/commands/` and `cache/` folders: a lib/ folder
  // counts only with a trailing slash or an extension.
  return TOP.has(first) || (LIB_FOLDERS.has(first) && token.endsWith('/'));
}

interface Mention {
  line: number;
  path: string;
  names: string[];
}

/** The paths and the names tied to them on one page, fenced blocks and struck-through paths left out. */
function mentions(markdown: string): Mention[] {
  const out: Mention[] = [];
  let fence = false;
  markdown.split('\n').forEach((raw, i) => {
    if (/^\s*```/.test(raw)) {
      fence = !fence;
      return;
    }
    if (fence) return;
    const line = i + 1;
    const text = raw.replace(/~~`[^`]*`~~/g, '');
    const tied = new Map<number, string[]>(); // offset of a path token → the names tied to it
    const tie = (offset: number, name: string) => tied.set(offset, [...(tied.get(offset) ?? []), name.replace(/\(\)$/, '')]);
    // `path` `name`
    for (const m of text.matchAll(/`([^`]+)`\s+`([^`]+)`/g)) {
      if (isPathToken(m[1]) && NAME_TOKEN.test(m[2])) tie(m.index, m[2]);
    }
    // `name` (`path`
    for (const m of text.matchAll(/`([^`]+)`\s*\(`([^`]+)`/g)) {
      if (NAME_TOKEN.test(m[1]) && isPathToken(m[2])) tie(m.index + m[0].indexOf(`(\`${m[2]}`) + 1, m[1]);
    }
    // `A`, `B` → `path`
    for (const m of text.matchAll(/((?:`[^`]+`\s*,\s*)*`[^`]+`)\s*→\s*`([^`]+)`/g)) {
      const names = [...m[1].matchAll(/`([^`]+)`/g)].map((n) => n[1]);
      if (isPathToken(m[2]) && names.every((n) => NAME_TOKEN.test(n)))
        for (const n of names) tie(m.index + m[0].lastIndexOf('`' + m[2]), n);
    }
    for (const m of text.matchAll(/`([^`]+)`/g)) {
      if (isPathToken(m[1])) out.push({ line, path: m[1], names: tied.get(m.index) ?? [] });
    }
    for (const m of text.replace(/`[^`]*`/g, '').matchAll(/\]\(([^)\s#]+)[^)]*\)/g)) {
      if (!/^[a-z][a-z0-9+.-]*:/i.test(m[1]) && !m[1].endsWith('.md')) out.push({ line, path: `./${m[1]}`, names: [] });
    }
  });
  return out;
}

/** Top folders that are not sources: installed, built or made by a run. */
const SKIP_DIRS = new Set(['node_modules', 'dist', '.git', 'release', 'coverage']);
let tree: string[] | undefined;
/** Every file of the work tree (relative paths), for bare file names. */
function files(): string[] {
  if (tree) return tree;
  tree = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
      if (dir === '' && SKIP_DIRS.has(e.name)) continue;
      const rel = dir ? `${dir}/${e.name}` : e.name;
      if (e.isDirectory()) walk(rel);
      else tree!.push(rel);
    }
  };
  walk('');
  return tree;
}

/** The files a token may mean: from the root, under lib/, beside the page (links), or by file name. */
function candidates(token: string, page: string): string[] {
  // A folder may be written without its trailing slash; a trailing slash is never a file.
  const fits = (rel: string) => existsSync(join(ROOT, rel)) && (!token.endsWith('/') || statSync(join(ROOT, rel)).isDirectory());
  if (token.startsWith('./')) {
    const rel = relative(ROOT, resolve(dirname(join(ROOT, page)), decodeURI(token)));
    return existsSync(join(ROOT, rel)) ? [rel] : [];
  }
  const direct = [token, `lib/${token}`, `docs/${token}`].filter(fits);
  if (direct.length || token.includes('/')) return direct.slice(0, 1);
  return files().filter((f) => basename(f) === token);
}

const defined = new Map<string, Set<string>>();
/** The names a module defines: declarations, class and object members, enum members, `exports.x`. */
function definedNames(rel: string): Set<string> {
  const known = defined.get(rel);
  if (known) return known;
  const text = readFileSync(join(ROOT, rel), 'utf8');
  const names = new Set<string>();
  if (/\.(ts|js|cjs|mjs)$/.test(rel)) {
    const source = ts.createSourceFile(rel, text, ts.ScriptTarget.Latest, true, rel.endsWith('.ts') ? ts.ScriptKind.TS : ts.ScriptKind.JS);
    const visit = (node: ts.Node) => {
      const name = (node as { name?: ts.Node }).name;
      if (
        name &&
        (ts.isIdentifier(name) || ts.isStringLiteral(name)) &&
        (ts.isFunctionDeclaration(node) ||
          ts.isClassDeclaration(node) ||
          ts.isInterfaceDeclaration(node) ||
          ts.isTypeAliasDeclaration(node) ||
          ts.isEnumDeclaration(node) ||
          ts.isEnumMember(node) ||
          ts.isVariableDeclaration(node) ||
          ts.isBindingElement(node) ||
          ts.isMethodDeclaration(node) ||
          ts.isPropertyDeclaration(node) ||
          ts.isGetAccessorDeclaration(node) ||
          ts.isSetAccessorDeclaration(node) ||
          ts.isPropertySignature(node) ||
          ts.isMethodSignature(node) ||
          ts.isPropertyAssignment(node) ||
          ts.isShorthandPropertyAssignment(node) ||
          (ts.isParameter(node) && ts.isConstructorDeclaration(node.parent)))
      ) {
        names.add(name.text);
      }
      if (
        ts.isBinaryExpression(node) &&
        ts.isPropertyAccessExpression(node.left) &&
        /^(module\.)?exports$/.test(node.left.expression.getText(source))
      ) {
        names.add(node.left.name.text);
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  } else {
    for (const m of text.matchAll(/[A-Za-z_$][\w$-]*/g)) names.add(m[0]);
  }
  defined.set(rel, names);
  return names;
}

/** Every path a page names that leads nowhere, and every name not defined where the page says. */
function misses(page: string, markdown: string): string[] {
  const out: string[] = [];
  for (const m of mentions(markdown)) {
    const where = `${page}:${m.line}`;
    if (OTHER_TREES.has(m.path)) continue;
    const found = candidates(m.path, page);
    if (found.length === 0) {
      out.push(`${where}: no file or folder \`${m.path}\``);
      continue;
    }
    for (const name of m.names) {
      const parts = name.split('.');
      if (!found.some((f) => !f.endsWith('/') && parts.every((p) => definedNames(f).has(p)))) {
        out.push(`${where}: \`${name}\` is not defined in ${found.join(' or ')}`);
      }
    }
  }
  return out;
}

test('the parser finds paths, names tied to them, and misses of both', () => {
  const page = [
    'The router (`http/route-table.ts` `buildRouteTable`) and `proxyFor` (`proxy/upstream.ts`); `deployments/next` is an API path.',
    '`BodyRewrite`, `UpstreamHandler` → `proxy/upstream-handler.ts`; ~~`proxy/agent-dial.ts`~~ was removed.',
    '```',
    '`lib/not-here.ts` inside a fence',
    '```',
    'Missing: `lib/http/no-such-file.ts`, `http/route-table.ts` `noSuchFunction`, and `known-tokens.ts`.',
  ].join('\n');
  assert.deepEqual(
    mentions(page).map((m) => [m.line, m.path, m.names]),
    [
      [1, 'http/route-table.ts', ['buildRouteTable']],
      [1, 'proxy/upstream.ts', ['proxyFor']],
      [2, 'proxy/upstream-handler.ts', ['BodyRewrite', 'UpstreamHandler']],
      [6, 'lib/http/no-such-file.ts', []],
      [6, 'http/route-table.ts', ['noSuchFunction']],
      [6, 'known-tokens.ts', []],
    ],
  );
  assert.deepEqual(misses('docs/example.md', page), [
    'docs/example.md:6: no file or folder `lib/http/no-such-file.ts`',
    'docs/example.md:6: `noSuchFunction` is not defined in lib/http/route-table.ts',
  ]);
});

test('every module path and every name tied to a module in docs/*.md exists', () => {
  const all = PAGES.flatMap((page) => misses(page, readFileSync(join(ROOT, page), 'utf8')));
  assert.equal(all.length, 0, `\n${all.join('\n')}`);
});
