// Latency measurement shared by both runtimes so their numbers are comparable.

export const WARMUP_RUNS = 5;

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

// `run` must resolve only once the outputs are on the CPU, so GPU backends are timed to completion.
export async function medianLatencyMs(run, runs) {
  for (let i = 0; i < WARMUP_RUNS; i++) await run();
  const times = [];
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    await run();
    times.push(performance.now() - start);
  }
  return median(times);
}
