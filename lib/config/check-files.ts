// Read the certificate and key files an enabled feature needs, at start, so a bad file is one
// clear line before any listener opens instead of a TLS failure on the first device.

import { readFileSync } from 'node:fs';
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import type { GatewayConfig } from './types';

const READ_ERRORS: Record<string, string> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EISDIR: 'is a directory, not a file',
};

type Read = { ok: true; text: string } | { ok: false; line: string };

function readPem(key: string, path: string): Read {
  try {
    return { ok: true, text: readFileSync(path, 'utf8') };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    return { ok: false, line: `${key}: cannot read ${path}: ${READ_ERRORS[code] ?? (err as Error).message}` };
  }
}

const CERT_BLOCK = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g;

/** Every certificate in a PEM file (a bundle or a chain); an error line when there is none or one is broken. */
function parseCertificates(key: string, path: string, text: string): X509Certificate[] | string {
  const blocks = text.match(CERT_BLOCK) ?? [];
  if (blocks.length === 0) return `${key}: ${path} is not a PEM certificate (no "BEGIN CERTIFICATE" block)`;
  const certs: X509Certificate[] = [];
  for (const [index, block] of blocks.entries()) {
    try {
      certs.push(new X509Certificate(block));
    } catch (err) {
      return `${key}: ${path}: certificate ${index + 1} cannot be parsed: ${(err as Error).message}`;
    }
  }
  return certs;
}

function parsePrivateKey(key: string, path: string, text: string): KeyObject | string {
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(text)) {
    return `${key}: ${path} is an encrypted private key; the gateway needs it unencrypted`;
  }
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) return `${key}: ${path} is not a PEM private key`;
  try {
    return createPrivateKey(text);
  } catch (err) {
    return `${key}: ${path}: private key cannot be parsed: ${(err as Error).message}`;
  }
}

function checkCertificateFile(key: string, path: string, lines: string[]): X509Certificate | undefined {
  const read = readPem(key, path);
  if (!read.ok) {
    lines.push(read.line);
    return undefined;
  }
  const certs = parseCertificates(key, path, read.text);
  if (typeof certs === 'string') {
    lines.push(certs);
    return undefined;
  }
  return certs[0];
}

function checkServerPair(config: Readonly<GatewayConfig>, lines: string[]): void {
  const { ServerCertificate: certPath, ServerKey: keyPath } = config.HTTPS;
  const leaf = checkCertificateFile('HTTPS.ServerCertificate', certPath, lines);
  const read = readPem('HTTPS.ServerKey', keyPath);
  if (!read.ok) {
    lines.push(read.line);
    return;
  }
  const privateKey = parsePrivateKey('HTTPS.ServerKey', keyPath, read.text);
  if (typeof privateKey === 'string') {
    lines.push(privateKey);
    return;
  }
  if (leaf && !leaf.checkPrivateKey(privateKey)) {
    lines.push(`HTTPS.ServerKey: ${keyPath} does not match the certificate in HTTPS.ServerCertificate ${certPath}`);
  }
}

/** One line per problem, naming the key and the path; empty when every file is usable. */
export function checkConfigFiles(config: Readonly<GatewayConfig>): string[] {
  const lines: string[] = [];
  if (config.HTTPS.Enabled) checkServerPair(config, lines);
  if (config.UpstreamServer.CACertificate !== '') {
    checkCertificateFile('UpstreamServer.CACertificate', config.UpstreamServer.CACertificate, lines);
  }
  if (config.Features.mTLS.Enabled) {
    checkCertificateFile('Features.mTLS.CACertificate', config.Features.mTLS.CACertificate, lines);
  }
  return lines;
}
