package com.example.digits.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertThrows;

import java.util.Arrays;
import java.util.Random;
import org.junit.Test;

public class Digits8x8Test {
    /** A random 32x32 binary bitmap whose ink touches all four edges, so its bounding box is the frame. */
    private static float[] bitmap32(long seed) {
        Random random = new Random(seed);
        float[] ink = new float[32 * 32];
        for (int i = 0; i < ink.length; i++) {
            ink[i] = random.nextInt(3) == 0 ? 1f : 0f;
        }
        ink[0] = 1f;
        ink[32 * 32 - 1] = 1f;
        return ink;
    }

    /** Nearest-neighbour upscale by {@code k}, placed at (left, top) on a blank canvas. */
    private static float[] onCanvas(float[] ink, int side, int k, int left, int top, int canvas) {
        float[] out = new float[canvas * canvas];
        for (int y = 0; y < side * k; y++) {
            for (int x = 0; x < side * k; x++) {
                out[(top + y) * canvas + left + x] = ink[(y / k) * side + x / k];
            }
        }
        return out;
    }

    @Test
    public void bitmap32IsCountOver16LikeSklearnDigits() {
        float[] ink = bitmap32(1);
        float[] grid = Digits8x8.grid(ink, 32, 32);
        for (int row = 0; row < 8; row++) {
            for (int col = 0; col < 8; col++) {
                int count = 0;
                for (int y = 0; y < 4; y++) {
                    for (int x = 0; x < 4; x++) {
                        count += (int) ink[(row * 4 + y) * 32 + col * 4 + x];
                    }
                }
                assertEquals("cell " + row + "," + col, count / 16f, grid[row * 8 + col], 0f);
            }
        }
    }

    @Test
    public void sizesThatDoNotDivideBy8AreAreaWeighted() {
        float[] full = new float[10 * 10];
        Arrays.fill(full, 1f);
        for (float v : Digits8x8.grid(full, 10, 10)) {
            assertEquals(1f, v, 1e-6f);
        }
        // Left half inked on a 12-wide image: cells 0..3 cover x < 6 exactly.
        float[] half = new float[12 * 4];
        for (int y = 0; y < 4; y++) {
            for (int x = 0; x < 6; x++) {
                half[y * 12 + x] = 1f;
            }
        }
        float[] grid = Digits8x8.grid(half, 12, 4);
        assertEquals(1f, grid[3], 1e-6f);
        assertEquals(0f, grid[4], 1e-6f);
    }

    @Test
    public void centeredGridIgnoresPositionAndScale() {
        float[] ink = bitmap32(2);
        float[] expected = Digits8x8.grid(ink, 32, 32);
        assertArrayEquals(expected, Digits8x8.centeredGrid(onCanvas(ink, 32, 1, 50, 70, 200), 200, 200), 1e-6f);
        assertArrayEquals(expected, Digits8x8.centeredGrid(onCanvas(ink, 32, 3, 7, 90, 200), 200, 200), 1e-6f);
    }

    @Test
    public void centeredGridWidensANarrowStrokeSymmetrically() {
        // A vertical bar 16 wide and 64 tall: the square box is 64 wide, the bar fills the middle quarter.
        int w = 100;
        float[] ink = new float[w * w];
        for (int y = 10; y < 74; y++) {
            for (int x = 30; x < 46; x++) {
                ink[y * w + x] = 1f;
            }
        }
        float[] grid = Digits8x8.centeredGrid(ink, w, w);
        float[] row = {0, 0, 0, 1, 1, 0, 0, 0};
        for (int r = 0; r < 8; r++) {
            assertArrayEquals(row, Arrays.copyOfRange(grid, r * 8, r * 8 + 8), 1e-6f);
        }
    }

    @Test
    public void blankDrawingIsAllBackground() {
        assertArrayEquals(new float[64], Digits8x8.centeredGrid(new float[50 * 40], 50, 40), 0f);
    }

    @Test
    public void rejectsWrongSizes() {
        assertThrows(IllegalArgumentException.class, () -> Digits8x8.grid(new float[10], 4, 4));
    }
}
