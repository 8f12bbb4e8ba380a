package com.example.digits.core;

/**
 * Preprocessing kind "digits8x8" (docs/artifacts.md): an 8x8 grid, row-major, each cell the fraction of
 * ink in that cell, in [0, 1], fed as a (1, 1, 8, 8) tensor. The model holds its own normalisation.
 *
 * <p>This is how scikit-learn's digits were made (the model's training data): a 32x32 binary bitmap cut
 * into 4x4 blocks, each block's count of ink pixels (0..16) divided by 16 in training. Here the ink image
 * may have any size and grey levels (anti-aliased strokes), so each cell is the area-weighted mean ink of
 * the pixels it covers; on a 32x32 binary bitmap that is exactly count / 16.
 */
public final class Digits8x8 {
    public static final String KIND = "digits8x8";
    public static final int SIDE = 8;

    private Digits8x8() {}

    /**
     * The grid of the whole frame. {@code ink} is row-major, {@code width * height} values in [0, 1],
     * 0 = background.
     */
    public static float[] grid(float[] ink, int width, int height) {
        checkInk(ink, width, height);
        return cells(ink, width, height, 0, 0, width / (double) SIDE, height / (double) SIDE);
    }

    /**
     * The grid of the ink's bounding box, widened to a square around its centre. The training bitmaps were
     * size-normalised digits that fill their box, whereas a finger drawing sits anywhere on a large canvas;
     * fitting the box first makes a drawing look like the training data.
     */
    public static float[] centeredGrid(float[] ink, int width, int height) {
        checkInk(ink, width, height);
        int minX = width, minY = height, maxX = -1, maxY = -1;
        for (int y = 0; y < height; y++) {
            for (int x = 0; x < width; x++) {
                if (ink[y * width + x] > 0) {
                    minX = Math.min(minX, x);
                    maxX = Math.max(maxX, x);
                    minY = Math.min(minY, y);
                    maxY = Math.max(maxY, y);
                }
            }
        }
        if (maxX < 0) {
            return new float[SIDE * SIDE];
        }
        double side = Math.max(maxX - minX + 1, maxY - minY + 1);
        double left = (minX + maxX + 1) / 2.0 - side / 2;
        double top = (minY + maxY + 1) / 2.0 - side / 2;
        return cells(ink, width, height, left, top, side / SIDE, side / SIDE);
    }

    /**
     * Mean ink of each of the 8x8 cells of the box at (left, top) with cells cellW x cellH pixels; a pixel
     * contributes by the area it shares with the cell, and area outside the image counts as background.
     */
    private static float[] cells(float[] ink, int width, int height, double left, double top, double cellW, double cellH) {
        float[] grid = new float[SIDE * SIDE];
        for (int row = 0; row < SIDE; row++) {
            double y0 = top + row * cellH;
            double y1 = y0 + cellH;
            for (int col = 0; col < SIDE; col++) {
                double x0 = left + col * cellW;
                double x1 = x0 + cellW;
                double sum = 0;
                for (int y = Math.max(0, (int) Math.floor(y0)); y < Math.min(height, Math.ceil(y1)); y++) {
                    double wy = Math.min(y1, y + 1) - Math.max(y0, y);
                    for (int x = Math.max(0, (int) Math.floor(x0)); x < Math.min(width, Math.ceil(x1)); x++) {
                        double wx = Math.min(x1, x + 1) - Math.max(x0, x);
                        sum += wx * wy * ink[y * width + x];
                    }
                }
                grid[row * SIDE + col] = (float) Math.min(1.0, sum / (cellW * cellH));
            }
        }
        return grid;
    }

    private static void checkInk(float[] ink, int width, int height) {
        if (width <= 0 || height <= 0 || ink.length != width * height) {
            throw new IllegalArgumentException("ink has " + ink.length + " values for " + width + "x" + height);
        }
    }
}
