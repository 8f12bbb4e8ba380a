package com.example.digits.core;

import java.util.Locale;

/**
 * The error measure every consumer uses (docs/artifacts.md), accumulated over all outputs of all cases.
 *
 * <p>max_abs_err = max |y - ref|; max_rel_err = max_abs_err / max(max |ref|, 1e-12), so that a model with
 * tiny outputs cannot pass on an absolute tolerance alone; a comparison passes when max_rel_err is within
 * the tolerance and neither side held a NaN or an Inf. For score outputs ([N, C], C > 1) it also counts how
 * many rows pick the same class as the reference.
 */
public final class Parity {
    private double maxAbs;
    private double maxRef;
    private int nonFinite;
    private int rows;
    private int rowsAgreeing;

    /** Adds one output tensor of one case; both in PyTorch's layout. */
    public void add(float[] y, float[] ref, int[] shape) {
        if (y.length != ref.length) {
            throw new IllegalArgumentException("output has " + y.length + " values, reference " + ref.length);
        }
        for (int i = 0; i < y.length; i++) {
            if (!Float.isFinite(y[i]) || !Float.isFinite(ref[i])) {
                nonFinite++;
                continue;
            }
            maxAbs = Math.max(maxAbs, Math.abs((double) y[i] - ref[i]));
            maxRef = Math.max(maxRef, Math.abs((double) ref[i]));
        }
        if (shape.length == 2 && shape[1] > 1) {
            int classes = shape[1];
            for (int row = 0; row < shape[0]; row++) {
                rows++;
                if (Scores.argmax(y, row * classes, classes) == Scores.argmax(ref, row * classes, classes)) {
                    rowsAgreeing++;
                }
            }
        }
    }

    public Result result(double tolerance) {
        return new Result(maxAbs, maxAbs / Math.max(maxRef, 1e-12), tolerance, nonFinite, rows, rowsAgreeing);
    }

    /** The numbers behind a verdict, never a bare boolean. */
    public static final class Result {
        public final double maxAbsErr;
        public final double maxRelErr;
        public final double tolerance;
        public final int nonFiniteValues;
        public final int scoreRows;
        public final int scoreRowsAgreeing;

        Result(double maxAbsErr, double maxRelErr, double tolerance, int nonFiniteValues, int scoreRows, int scoreRowsAgreeing) {
            this.maxAbsErr = maxAbsErr;
            this.maxRelErr = maxRelErr;
            this.tolerance = tolerance;
            this.nonFiniteValues = nonFiniteValues;
            this.scoreRows = scoreRows;
            this.scoreRowsAgreeing = scoreRowsAgreeing;
        }

        public boolean passed() {
            return nonFiniteValues == 0 && maxRelErr <= tolerance;
        }

        @Override
        public String toString() {
            String text = String.format(Locale.ROOT, "%s max_abs_err=%.3g max_rel_err=%.3g tolerance=%.3g",
                    passed() ? "PASS" : "FAIL", maxAbsErr, maxRelErr, tolerance);
            if (scoreRows > 0) {
                text += String.format(Locale.ROOT, " top1=%d/%d", scoreRowsAgreeing, scoreRows);
            }
            if (nonFiniteValues > 0) {
                text += " non_finite=" + nonFiniteValues;
            }
            return text;
        }
    }
}
