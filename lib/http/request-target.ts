// A request target is checked and normalised once, before the route table sees it, and the
// normalised form is what goes upstream (req.url is replaced): a route cannot be skipped by
// spelling its path differently from the way the Mender server will read it (RFC 9112 §3.2,
// RFC 3986 §6.2.2). Only origin-form is taken: devices send nothing else. In the path,
// percent-encoded unreserved characters are decoded (the only unambiguous rewrite); anything
// that another parser could read as a different path (encoded slash, backslash or percent,
// dot segments, empty segments, control characters, bad escapes) is refused with a 400 that
// says why. The query is left byte for byte (signed links are verified on it).

export type TargetCheck = { ok: true; target: string } | { ok: false; reason: string };

// pchar without pct-encoded (RFC 3986 §3.3): unreserved, sub-delims, ':' and '@'.
const PCHAR = "A-Za-z0-9\\-._~!$&'()*+,;=:@";
// A segment that is not '.' or '..'; no '%'. Plain targets (every path a device sends) pass
// this one test and come back unchanged.
const SEGMENT = `(?!\\.\\.?(?:[/?]|$))[${PCHAR}]+`;
const QUERY = `[${PCHAR}/?%]*`;
const PLAIN = new RegExp(`^/(?:${SEGMENT}(?:/${SEGMENT})*/?)?(?:\\?${QUERY})?$`);
const QUERY_ONLY = new RegExp(`^${QUERY}$`);
const PATH_CHAR = new RegExp(`^[${PCHAR}/%]$`);
const UNRESERVED = /^[A-Za-z0-9\-._~]$/;
const HEX = /^[0-9A-Fa-f]{2}$/;

export function checkRequestTarget(raw: string | undefined): TargetCheck {
  if (raw !== undefined && PLAIN.test(raw)) return { ok: true, target: raw };
  return checkSlowly(raw ?? '');
}

function refuse(reason: string): TargetCheck {
  return { ok: false, reason: `request target refused: ${reason}` };
}

function checkSlowly(raw: string): TargetCheck {
  if (raw === '*') return refuse('asterisk-form (*) is not served');
  if (!raw.startsWith('/')) {
    if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(raw)) return refuse('absolute-form (scheme://host/...): send the path only');
    return refuse('not a path (authority-form or garbage): send the path only');
  }
  const q = raw.indexOf('?');
  const path = q < 0 ? raw : raw.slice(0, q);
  const query = q < 0 ? '' : raw.slice(q + 1);
  if (!QUERY_ONLY.test(query)) return refuse('character not allowed in the query (fragment, space, control or non-ASCII)');
  let out = '';
  for (let i = 0; i < path.length; i++) {
    const c = path[i];
    if (c === '%') {
      const hex = path.slice(i + 1, i + 3);
      if (!HEX.test(hex)) return refuse('invalid percent escape');
      const code = Number.parseInt(hex, 16);
      const decoded = String.fromCharCode(code);
      if (code < 0x20 || code === 0x7f) return refuse('encoded control character or NUL in the path');
      if (decoded === '/' || decoded === '\\') return refuse('encoded slash or backslash in the path');
      if (decoded === '%') return refuse('encoded percent sign in the path (double encoding)');
      // Unreserved: the same path decoded or not (RFC 3986 §2.3); upstream gets it decoded.
      out += UNRESERVED.test(decoded) ? decoded : `%${hex.toUpperCase()}`;
      i += 2;
    } else if (c === '\\') {
      return refuse('backslash in the path');
    } else if (!PATH_CHAR.test(c)) {
      return refuse('character not allowed in the path (space, control, quote, bracket or non-ASCII)');
    } else out += c;
  }
  const segments = out.split('/');
  for (let i = 1; i < segments.length; i++) {
    const s = segments[i];
    if (s === '.' || s === '..') return refuse('dot segment (. or ..) in the path');
    if (s === '' && i < segments.length - 1) return refuse('empty segment (//) in the path');
  }
  return { ok: true, target: q < 0 ? out : `${out}?${query}` };
}
