// Go's encoding/json matches object keys to struct fields case-insensitively, so the commercial
// gateway accepts "listen" for "Listen" and "mtls" for "mTLS". Rename such keys to the schema's
// spelling before validation; an exact spelling already present wins.

interface SchemaNode {
  [keyword: string]: unknown;
  properties?: Record<string, SchemaNode>;
  items?: SchemaNode;
}

export function matchKeyCase(data: unknown, schema: SchemaNode): void {
  if (Array.isArray(data)) {
    if (schema.items) for (const item of data) matchKeyCase(item, schema.items);
    return;
  }
  if (typeof data !== 'object' || data === null || !schema.properties) return;
  const object = data as Record<string, unknown>;
  const known = Object.keys(schema.properties);
  for (const key of Object.keys(object)) {
    if (known.includes(key)) continue;
    const match = known.find((name) => name.toLowerCase() === key.toLowerCase());
    if (match !== undefined && !(match in object)) {
      object[match] = object[key];
      delete object[key];
    }
  }
  for (const name of known) {
    if (name in object) matchKeyCase(object[name], schema.properties[name]);
  }
}
