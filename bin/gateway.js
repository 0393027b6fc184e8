#!/usr/bin/env node
'use strict';
// Thin shim: the gateway is written in TypeScript and compiled to dist/ by `make build`.
require('../dist/lib/cli.js').main(process.argv.slice(2));
