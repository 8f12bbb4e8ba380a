package com.example.digits.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertThrows;

import org.junit.Test;

public class LayoutTest {
    private static float[] range(int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = i;
        }
        return a;
    }

    @Test
    public void nchwToNhwcMatchesNumpy() {
        // np.transpose(np.arange(24).reshape(1, 2, 3, 4), (0, 2, 3, 1)).ravel()
        float[] expected = {0, 12, 1, 13, 2, 14, 3, 15, 4, 16, 5, 17, 6, 18, 7, 19, 8, 20, 9, 21, 10, 22, 11, 23};
        assertArrayEquals(expected, Layout.transpose(range(24), new int[] {1, 2, 3, 4}, new int[] {0, 2, 3, 1}), 0f);
        assertArrayEquals(new int[] {1, 3, 4, 2}, Layout.permuteShape(new int[] {1, 2, 3, 4}, new int[] {0, 2, 3, 1}));
    }

    @Test
    public void matrixTranspose() {
        // np.arange(6).reshape(2, 3).T.ravel()
        assertArrayEquals(new float[] {0, 3, 1, 4, 2, 5}, Layout.transpose(range(6), new int[] {2, 3}, new int[] {1, 0}), 0f);
    }

    @Test
    public void inverseUndoesThePermutation() {
        int[] shape = {2, 3, 4, 5};
        int[] perm = {3, 0, 2, 1};
        float[] x = range(120);
        float[] moved = Layout.transpose(x, shape, perm);
        assertArrayEquals(x, Layout.transpose(moved, Layout.permuteShape(shape, perm), Layout.inverse(perm)), 0f);
    }

    @Test
    public void identityAndScalars() {
        assertArrayEquals(range(6), Layout.transpose(range(6), new int[] {2, 3}, Layout.identity(2)), 0f);
        assertArrayEquals(new float[] {7}, Layout.transpose(new float[] {7}, new int[0], new int[0]), 0f);
    }

    @Test
    public void rejectsMismatches() {
        assertThrows(IllegalArgumentException.class, () -> Layout.transpose(range(5), new int[] {2, 3}, new int[] {1, 0}));
        assertThrows(IllegalArgumentException.class, () -> Layout.transpose(range(6), new int[] {2, 3}, new int[] {0, 0}));
        assertThrows(IllegalArgumentException.class, () -> Layout.transpose(range(6), new int[] {2, 3}, new int[] {0, 1, 2}));
    }
}
