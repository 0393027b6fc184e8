import type { X509Certificate } from 'node:crypto';
import { normaliseSerial } from './serial-blocklist';

// Features.mTLS.IdentityAttribute: the device may only claim the identity its certificate
// names. One attribute of id_data must equal a field of the client certificate: its subject's
// CN, one of its subjectAltNames (DNS, e-mail, URI, IP) or its serial number. Without it, any
// holder of a valid certificate can send any device's id_data. Pure: no I/O.

export type CertificateField = 'CN' | 'SAN' | 'serial';

export interface IdentityBinding {
  /** The id_data attribute, e.g. "mac". */
  attribute: string;
  field: CertificateField;
}

export type BindingVerdict = { ok: true } | { ok: false; reason: string };

/** Does the identity's attribute equal the certificate's field? The reason names the attribute, never a value. */
export function checkIdentityBinding(identity: Record<string, unknown>, cert: X509Certificate, binding: IdentityBinding): BindingVerdict {
  const { attribute, field } = binding;
  const what = `the client certificate's ${field === 'SAN' ? 'subjectAltName' : field}`;
  const claimed = Object.hasOwn(identity, attribute) ? identity[attribute] : undefined;
  if (typeof claimed !== 'string' || claimed === '') {
    return { ok: false, reason: `id_data has no "${attribute}" attribute (a string), which must match ${what}` };
  }
  const matches =
    field === 'serial'
      ? normaliseSerial(claimed) !== null && normaliseSerial(claimed) === normaliseSerial(cert.serialNumber)
      : certificateNames(cert, field).includes(claimed);
  return matches ? { ok: true } : { ok: false, reason: `id_data attribute "${attribute}" does not match ${what}` };
}

/** SAN types that name a device; othername, DirName and Registered ID are never compared. */
const NAME_TYPES = new Set(['DNS', 'email', 'URI', 'IP Address']);

/** Every CN of the subject, or every DNS/e-mail/URI/IP subjectAltName, as the certificate holds it. */
export function certificateNames(cert: X509Certificate, field: 'CN' | 'SAN'): string[] {
  if (field === 'SAN') {
    return parseSubjectAltName(cert.subjectAltName ?? '')
      .filter((n) => NAME_TYPES.has(n.type))
      .map((n) => n.value);
  }
  // The legacy object holds the subject's attributes unescaped (an RDN may repeat: an array);
  // `cert.subject` is printed text with `\,` and `+` escapes that would have to be undone.
  const cn = (cert.toLegacyObject().subject as Record<string, string | string[] | undefined> | undefined)?.CN;
  return cn === undefined ? [] : Array.isArray(cn) ? cn : [cn];
}

export interface AltName {
  type: string;
  value: string;
}

/**
 * Node's subjectAltName text: `TYPE:value` joined by `, `. Since the fix for CVE-2021-44532, a
 * value that holds a comma, a quote or a control character is written as a JSON string
 * (`DNS:"a\u002cb"`), so a name cannot pose as two. Text that does not follow that form
 * yields no names at all rather than a guess.
 */
export function parseSubjectAltName(text: string): AltName[] {
  const names: AltName[] = [];
  let at = 0;
  while (at < text.length) {
    const colon = text.indexOf(':', at);
    if (colon < 0) return [];
    const type = text.slice(at, colon);
    let end: number;
    let value: string;
    if (text[colon + 1] === '"') {
      end = colon + 2;
      while (end < text.length && text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      if (end >= text.length) return [];
      end++;
      try {
        value = JSON.parse(text.slice(colon + 1, end)) as string;
      } catch {
        return [];
      }
    } else {
      const comma = text.indexOf(', ', colon + 1);
      end = comma < 0 ? text.length : comma;
      value = text.slice(colon + 1, end);
    }
    names.push({ type, value });
    if (end === text.length) break;
    if (!text.startsWith(', ', end)) return [];
    at = end + 2;
  }
  return names;
}
