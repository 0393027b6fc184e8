import type { GatewayConfig } from '../../lib/config/types';

export type DeepPartial<T> = { [K in keyof T]?: T[K] extends (infer U)[] ? U[] : T[K] extends object ? DeepPartial<T[K]> : T[K] };

/** A complete config for in-process tests: HTTP on 127.0.0.1:0, everything else off; overrides merged in order. */
export function testConfig(...overrides: DeepPartial<GatewayConfig>[]): GatewayConfig {
  const base: GatewayConfig = {
    Features: {
      ArtifactsProxy: {
        Enabled: false,
        GatewayURL: '',
        DomainWhitelist: [],
        ArtifactsCache: {
          Enabled: false,
          Path: '',
          SignatureSecret: '',
          LinkExpireDuration: '24h',
          MaxSize: 0,
          Prewarm: true,
          FillRateLimit: 0,
        },
      },
      mTLS: {
        Enabled: false,
        CACertificate: '',
        BlacklistPath: '',
        CRLPath: '',
        MenderUsername: '',
        MenderPassword: '',
        EnableCache: true,
        InsecureSkipClientExpireAfter: false,
        CacheLifetime: '1h',
        RequireAuthKeyMatchesCertificate: false,
        IdentityAttribute: '',
        IdentityCertificateField: 'CN',
        AllowKeyReplacement: false,
        AllowPlainHTTP: false,
      },
      DeviceSystem: { Enabled: false, SystemID: '', DefaultInventory: [] },
      ReportJournal: { Enabled: false, Path: '', MaxSize: 268435456, MaxAge: '48h', MaxDeviceSize: 4194304 },
    },
    HTTP: { Enabled: true, Listen: '127.0.0.1:0' },
    HTTPS: { Enabled: false, Listen: '127.0.0.1:0', MinimumTLSVersion: '1.2', ServerCertificate: '', ServerKey: '' },
    UpstreamServer: { URL: 'http://127.0.0.1:9', CACertificate: '', InsecureSkipVerify: false, Timeout: '60s' },
    Metrics: { Enabled: false, Listen: '127.0.0.1:0', StatusPageAllowRemote: false },
    LogLevel: '',
    DebugLog: false,
    ShutdownTimeout: '5s',
    Workers: 1,
  };
  return overrides.reduce<unknown>((config, over) => merge(config, over), base) as GatewayConfig;
}

function merge(base: unknown, over: unknown): unknown {
  if (over === undefined) return base;
  if (Array.isArray(over) || typeof over !== 'object' || over === null) return over;
  const out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
  for (const [k, v] of Object.entries(over)) out[k] = merge((base as Record<string, unknown>)[k], v);
  return out;
}
