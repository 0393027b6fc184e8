// The configuration as the gateway uses it: the commercial product's mender-gateway.conf
// shape (same key names), every default filled in, validated once and frozen.
// Keys marked "ours" are extensions of the open gateway; the rest are the product's.

export interface DefaultInventoryItem {
  Name: string;
  Value: string | number | boolean | (string | number | boolean)[];
}

export interface ArtifactsCacheConfig {
  Enabled: boolean;
  Path: string;
  /** Base64 HMAC-SHA256 key; empty = generate one and keep it in Path (0600). */
  SignatureSecret: string;
  /** Go duration ("30m", "1h30m"). */
  LinkExpireDuration: string;
  /** ours: cap on the cache's size in bytes, 0 = the filesystem's free space is the only limit. */
  MaxSize: number;
  /** ours: start filling the cache as soon as a deployment instruction names an artifact. */
  Prewarm: boolean;
  /** ours: HH:MM-HH:MM local hours for filling ahead of demand; "" = any time. */
  PrewarmWindow?: string;
  /** ours: bytes per second all cache fills on the path take from the origin together, 0 = no cap. */
  FillRateLimit: number;
  /** ours: shared second-level cache in a bucket; the loader always sets it (schema default). */
  S3?: ArtifactsCacheS3Config;
}

export interface ArtifactsCacheS3Config {
  Enabled: boolean;
  /** http(s) URL of the S3 endpoint. */
  Endpoint: string;
  Bucket: string;
  Region: string;
  AccessKeyID: string;
  SecretAccessKey: string;
  /** Key prefix of the cache's objects, e.g. "mender-gateway-cache/". */
  Prefix: string;
}

export interface GatewayConfig {
  Features: {
    ArtifactsProxy: {
      Enabled: boolean;
      GatewayURL: string;
      DomainWhitelist: string[];
      ArtifactsCache: ArtifactsCacheConfig;
    };
    mTLS: {
      Enabled: boolean;
      CACertificate: string;
      BlacklistPath: string;
      /** ours: the CA's CRL file (PEM or DER). */
      CRLPath: string;
      MenderUsername: string;
      MenderPassword: string;
      EnableCache: boolean;
      InsecureSkipClientExpireAfter: boolean;
      /** ours: Go duration a preauthorization stays cached (EnableCache). */
      CacheLifetime: string;
      /** ours: the auth request's key must be the client certificate's key (ambassador rule). */
      RequireAuthKeyMatchesCertificate: boolean;
      /** ours: id_data attribute that must equal IdentityCertificateField of the certificate; '' = off. */
      IdentityAttribute: string;
      /** ours: the certificate field IdentityAttribute is compared with. */
      IdentityCertificateField: 'CN' | 'SAN' | 'serial';
      /** ours: a forced preauthorization may replace the key upstream holds for the identity. */
      AllowKeyReplacement: boolean;
      /** ours: the device API over the HTTP listener too, without a client certificate. */
      AllowPlainHTTP: boolean;
    };
    DeviceSystem: {
      Enabled: boolean;
      SystemID: string;
      DefaultInventory: DefaultInventoryItem[];
    };
    /** ours: reports kept on disk while upstream is unreachable, replayed later. */
    ReportJournal: {
      Enabled: boolean;
      /** '' = <ArtifactsCache.Path>/journal with the cache on, else /var/lib/mender-gateway/journal */
      Path: string;
      /** bytes of waiting reports */
      MaxSize: number;
      /** Go duration */
      MaxAge: string;
      /** bytes of waiting reports of one device */
      MaxDeviceSize: number;
    };
  };
  HTTP: { Enabled: boolean; Listen: string };
  HTTPS: {
    Enabled: boolean;
    Listen: string;
    MinimumTLSVersion: '1.0' | '1.1' | '1.2' | '1.3';
    ServerCertificate: string;
    ServerKey: string;
  };
  UpstreamServer: {
    URL: string;
    CACertificate: string;
    InsecureSkipVerify: boolean;
    /** ours: Go duration; no response headers from upstream within it → 504. */
    Timeout: string;
  };
  Metrics: {
    Enabled: boolean;
    Listen: string;
    /** ours: the status page and /api/status answer peers off loopback. */
    StatusPageAllowRemote: boolean;
  };
  /** ours: log level at start and on SIGHUP; '' = info (debug with DebugLog); --log-level wins. */
  LogLevel: '' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';
  /** Legacy top-level key of the 1.x product: true means log level debug. */
  DebugLog: boolean;
  /** ours: Go duration; how long SIGTERM waits for requests in flight. */
  ShutdownTimeout: string;
  /** ours: worker processes (node:cluster); 0 = auto (lib/server/worker-count.ts). */
  Workers: number;
}

export interface LoadedConfig {
  config: Readonly<GatewayConfig>;
  /** The file read, or null when none (missing default path, environment only). */
  file: string | null;
  /** Non-fatal findings, e.g. unknown keys. One line each. */
  warnings: string[];
  /** Environment variables that overrode the file or the defaults, in table order. */
  fromEnv: string[];
}
