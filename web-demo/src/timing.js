// Latency measurement shared by the demo and the benchmark so their numbers are comparable.
// Every `run` must resolve only once the outputs are on the CPU, so GPU backends are timed to completion.

export const WARMUP_RUNS = 5;

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

// First runs compile kernels, allocate buffers and fill caches; they are not what a user waits for later.
export async function warmUp(run) {
  for (let i = 0; i < WARMUP_RUNS; i++) await run();
}

// Wall-clock milliseconds of `count` consecutive runs.
export async function timeRuns(run, count) {
  const times = [];
  for (let i = 0; i < count; i++) {
    const start = performance.now();
    await run();
    times.push(performance.now() - start);
  }
  return times;
}

export async function medianLatencyMs(run, runs) {
  await warmUp(run);
  return median(await timeRuns(run, runs));
}
