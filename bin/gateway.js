#!/usr/bin/env node
'use strict';
// Thin shim: the gateway is written in TypeScript and compiled to dist/ by `make build`.
// First, a serving process that started without a young generation size starts again with one
// (same pid; lib/server/young-generation.ts says why).
require('../dist/lib/server/young-generation.js').startWithSmallYoungGeneration();
require('../dist/lib/cli.js').main(process.argv.slice(2));
