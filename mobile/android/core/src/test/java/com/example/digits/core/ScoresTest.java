package com.example.digits.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;

import org.junit.Test;

public class ScoresTest {
    @Test
    public void softmaxMatchesTheFormula() {
        float[] p = Scores.softmax(new float[] {1, 2, 3});
        double z = Math.exp(1) + Math.exp(2) + Math.exp(3);
        assertArrayEquals(new float[] {(float) (Math.exp(1) / z), (float) (Math.exp(2) / z), (float) (Math.exp(3) / z)}, p, 1e-7f);
    }

    @Test
    public void softmaxSurvivesLargeLogits() {
        float[] p = Scores.softmax(new float[] {1000, 1000, -1000});
        assertArrayEquals(new float[] {0.5f, 0.5f, 0}, p, 0f);
    }

    @Test
    public void topKIsLargestFirstAndStableOnTies() {
        assertArrayEquals(new int[] {3, 1, 4}, Scores.topK(new float[] {0.1f, 0.5f, 0.2f, 0.9f, 0.5f}, 3));
        assertArrayEquals(new int[] {0, 1}, Scores.topK(new float[] {2, 1}, 5));
    }

    @Test
    public void argmaxWithinARow() {
        float[] rows = {1, 9, 3, 7, 2, 0};
        assertEquals(1, Scores.argmax(rows, 0, 3));
        assertEquals(0, Scores.argmax(rows, 3, 3));
    }
}
