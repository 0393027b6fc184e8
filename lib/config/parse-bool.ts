// Go's strconv.ParseBool: exactly these spellings, nothing trimmed, anything else is an error.
// The commercial gateway reads its boolean environment variables this way.

const TRUE = ['1', 't', 'T', 'TRUE', 'true', 'True'];
const FALSE = ['0', 'f', 'F', 'FALSE', 'false', 'False'];

export const BOOL_SPELLINGS = [...TRUE, ...FALSE];

export function parseBool(text: string): boolean {
  if (TRUE.includes(text)) return true;
  if (FALSE.includes(text)) return false;
  throw new Error(`must be a boolean (${BOOL_SPELLINGS.join(', ')}), got ${JSON.stringify(text)}`);
}
