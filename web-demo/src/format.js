// Number formatting for the page.

export const ms = (value) => `${value.toFixed(value < 10 ? 2 : 1)} ms`;

export function bytes(value) {
  if (value < 1024) return `${value} B`;
  if (value < 1024 * 1024) return `${(value / 1024).toFixed(1)} KiB`;
  return `${(value / 1024 / 1024).toFixed(2)} MiB`;
}

export const err = (value) => value.toExponential(1);
