// The digits8x8 preprocessing of docs/artifacts.md, the only place the web demo defines it:
// an 8x8 grid, row-major, each cell the fraction of ink in that cell in [0, 1] (0 = background).
//
// Ink is the canvas alpha channel: the drawing canvas starts transparent and strokes are opaque, so
// anti-aliased edges count as partial ink instead of depending on stroke or background colours.

export const GRID = 8;

// `image` is an ImageData (or {width, height, data: RGBA bytes}) whose sides are multiples of GRID.
export function inkGrid(image) {
  const { width, height, data } = image;
  if (width % GRID || height % GRID) throw new Error(`canvas ${width}x${height} is not a multiple of ${GRID}`);
  const cellW = width / GRID;
  const cellH = height / GRID;
  const sums = new Float64Array(GRID * GRID);
  for (let y = 0; y < height; y++) {
    const row = Math.floor(y / cellH) * GRID;
    for (let x = 0; x < width; x++) {
      sums[row + Math.floor(x / cellW)] += data[(y * width + x) * 4 + 3] / 255;
    }
  }
  return Float32Array.from(sums, (s) => s / (cellW * cellH));
}
