// A drawing canvas. Pointer events cover mouse, touch and pen with one code path; `touch-action: none` in
// the stylesheet keeps touch strokes from scrolling the page.

const STROKE_WIDTH_PER_CELL = 0.8; // relative to one cell of the 8x8 grid: thick enough to mark a cell

export function attachDrawing(canvas, { grid, onStrokeEnd }) {
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.lineWidth = (canvas.width / grid) * STROKE_WIDTH_PER_CELL;
  ctx.lineCap = 'round';
  ctx.lineJoin = 'round';
  ctx.strokeStyle = '#111';
  let last = null;

  const point = (event) => {
    const rect = canvas.getBoundingClientRect();
    return [
      ((event.clientX - rect.left) * canvas.width) / rect.width,
      ((event.clientY - rect.top) * canvas.height) / rect.height,
    ];
  };
  const lineTo = (next) => {
    ctx.beginPath();
    ctx.moveTo(...last);
    ctx.lineTo(...next);
    ctx.stroke();
    last = next;
  };

  canvas.addEventListener('pointerdown', (event) => {
    canvas.setPointerCapture(event.pointerId);
    last = point(event);
    lineTo(last); // a tap leaves a dot
  });
  canvas.addEventListener('pointermove', (event) => {
    if (last) lineTo(point(event));
  });
  const end = () => {
    if (!last) return;
    last = null;
    onStrokeEnd(ctx.getImageData(0, 0, canvas.width, canvas.height));
  };
  canvas.addEventListener('pointerup', end);
  canvas.addEventListener('pointercancel', end);

  return {
    clear() {
      ctx.clearRect(0, 0, canvas.width, canvas.height);
    },
  };
}

// Draws the 8x8 grid the model sees, darker for more ink.
export function drawPreview(canvas, grid, values) {
  const ctx = canvas.getContext('2d');
  const image = ctx.createImageData(grid, grid);
  values.forEach((v, i) => {
    const shade = Math.round(255 * (1 - v));
    image.data.set([shade, shade, shade, 255], i * 4);
  });
  ctx.putImageData(image, 0, 0);
}
