import { join } from 'node:path';

// The directory holding package.json and lib/observe/status-page/assets: the checkout (this
// module runs from dist/lib/config) or, in a release bundle (support/release; esbuild defines
// MENDER_GATEWAY_BUNDLE), the install directory whose lib/ holds the one bundled file.
declare const MENDER_GATEWAY_BUNDLE: boolean | undefined;

export const INSTALL_ROOT =
  typeof MENDER_GATEWAY_BUNDLE !== 'undefined' && MENDER_GATEWAY_BUNDLE ? join(__dirname, '..') : join(__dirname, '..', '..', '..');
