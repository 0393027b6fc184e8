#!/usr/bin/env node
// Figures of lib/'s shape: files and lines, import circles, folder-to-folder edges, imports
// against the layer order (layers.cjs) and folder pairs importing each other. Reads
// dependency-cruiser's JSON (every import, type-only ones included) on stdin:
//   npx depcruise --no-config --ts-config tsconfig.json --ts-pre-compilation-deps --output-type json lib | node support/lint/measure.cjs
const { readFileSync } = require('node:fs');
const layers = require('./layers.cjs');

// stdin read as a stream: readFileSync(0) on a pipe whose writer is still busy aborted Node 24
// here (`free(): invalid next size`, `make layers` exit 134).
async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

readStdin().then((text) => measure(JSON.parse(text)));

function measure(cruise) {
  const layerOf = (file) => {
    const m = /^lib\/([^/]+)/.exec(file);
    return m ? m[1] : file;
  };
  const rank = (file) => layers.indexOf(layerOf(file));
  const linesOf = (file) => readFileSync(file, 'utf8').split('\n').length - 1;

  const files = cruise.modules.map((m) => m.source).filter((s) => /^lib\/.*\.ts$/.test(s));
  const total = (list) => list.reduce((sum, f) => sum + linesOf(f), 0);
  const journal = files.filter((f) => f.startsWith('lib/journal/'));

  // dependency-cruiser marks every import on a circle: each circle is counted once, written from
  // its alphabetically first file.
  const circleOf = (source, cycle) => {
    const files = [source, ...cycle.map((c) => c.name ?? c)];
    if (files[files.length - 1] === source) files.pop();
    const first = files.indexOf([...files].sort()[0]);
    const turned = [...files.slice(first), ...files.slice(0, first)];
    return [...turned, turned[0]].join(' → ');
  };
  const circles = new Set();
  const edges = new Map();
  const upward = new Set();
  for (const m of cruise.modules) {
    if (!m.source.startsWith('lib/')) continue;
    for (const d of m.dependencies) {
      if (!d.resolved.startsWith('lib/')) continue;
      if (d.circular) circles.add(circleOf(m.source, d.cycle ?? []));
      const [from, to] = [layerOf(m.source), layerOf(d.resolved)];
      if (from === to) continue;
      edges.set(`${from} → ${to}`, true);
      if (rank(m.source) < 0 || rank(d.resolved) < 0) upward.add(`${m.source} → ${d.resolved} (folder not in layers.cjs)`);
      else if (rank(m.source) < rank(d.resolved)) upward.add(`${m.source} → ${d.resolved}`);
    }
  }
  const mutual = [...edges.keys()].filter((e) => {
    const [a, b] = e.split(' → ');
    return a < b && edges.has(`${b} → ${a}`);
  });

  console.log(`lib/: ${files.length} files, ${total(files)} lines; lib/journal/: ${journal.length} files, ${total(journal)} lines`);
  console.log(`import circles (file level): ${circles.size}`);
  for (const c of circles) console.log(`  ${c}`);
  console.log(`folder-to-folder edges: ${edges.size}`);
  const upwardEdges = new Set([...upward].map((u) => u.split(' → ').map(layerOf).join(' → ')));
  console.log(`imports against the layer order: ${upward.size} (${upwardEdges.size} folder edges)`);
  for (const u of upward) console.log(`  ${u}`);
  console.log(`folder pairs importing each other: ${mutual.length}`);
  for (const p of mutual) console.log(`  ${p.replace(' → ', ' ↔ ')}`);
}
