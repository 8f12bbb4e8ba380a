package com.example.digits.core;

/** Turns a logits row into what the app shows: probabilities and the best classes. */
public final class Scores {
    private Scores() {}

    /** Softmax in double, shifted by the max so that large logits cannot overflow exp(). */
    public static float[] softmax(float[] logits) {
        double max = Double.NEGATIVE_INFINITY;
        for (float v : logits) {
            max = Math.max(max, v);
        }
        double[] e = new double[logits.length];
        double sum = 0;
        for (int i = 0; i < logits.length; i++) {
            e[i] = Math.exp(logits[i] - max);
            sum += e[i];
        }
        float[] p = new float[logits.length];
        for (int i = 0; i < p.length; i++) {
            p[i] = (float) (e[i] / sum);
        }
        return p;
    }

    /** Indices of the k largest values, largest first; ties keep the lower index first (like a stable sort). */
    public static int[] topK(float[] values, int k) {
        int n = Math.min(k, values.length);
        int[] top = new int[n];
        boolean[] taken = new boolean[values.length];
        for (int rank = 0; rank < n; rank++) {
            int best = -1;
            for (int i = 0; i < values.length; i++) {
                if (!taken[i] && (best < 0 || values[i] > values[best])) {
                    best = i;
                }
            }
            taken[best] = true;
            top[rank] = best;
        }
        return top;
    }

    /** Index of the largest value of {@code values[from, from + length)}, relative to {@code from}. */
    public static int argmax(float[] values, int from, int length) {
        int best = 0;
        for (int i = 1; i < length; i++) {
            if (values[from + i] > values[from + best]) {
                best = i;
            }
        }
        return best;
    }
}
