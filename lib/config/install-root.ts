import { join } from 'node:path';

// The directory holding package.json and lib/observe/status-page/assets: the checkout (this
// module runs from dist/lib/config) or, in a release bundle (support/release; esbuild defines
// MENDER_GATEWAY_BUNDLE), the install directory whose lib/ holds the one bundled file.
declare const MENDER_GATEWAY_BUNDLE: boolean | undefined;

const BUNDLED = typeof MENDER_GATEWAY_BUNDLE !== 'undefined' && MENDER_GATEWAY_BUNDLE;

export const INSTALL_ROOT = BUNDLED ? join(__dirname, '..') : join(__dirname, '..', '..', '..');

/**
 * uPlot's script and stylesheet, which the status page draws its history with: the npm package's
 * dist/ in a checkout; in a release (no node_modules on the box) support/release/stage.js copies
 * them beside the page's assets.
 */
export const CHART_LIBRARY_DIR = BUNDLED
  ? join(INSTALL_ROOT, 'lib', 'observe', 'status-page', 'assets', 'uplot')
  : join(INSTALL_ROOT, 'node_modules', 'uplot', 'dist');
