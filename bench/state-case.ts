// One bounded map as bench/state-sizes.ts measures it (`make state-sizes`).

export interface StateCase {
  name: string;
  cap: number;
  /** What ends an entry besides the cap (printed as is). */
  age: string;
  /** Made before the first measure: what the map shares with others, not its own bytes. */
  prepare?: (n: number) => unknown;
  /** Fill the map with n entries through its owner; returns what keeps it alive. */
  fill: (n: number, prepared: unknown) => unknown;
}
