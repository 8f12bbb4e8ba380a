package com.example.digits.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import org.junit.Test;

public class ParityTest {
    private static final int[] ROW = {1, 3};

    @Test
    public void relativeErrorIsAgainstTheReferenceScale() {
        Parity parity = new Parity();
        parity.add(new float[] {1.0f, -2.0f, 4.001f}, new float[] {1.0f, -2.0f, 4.0f}, ROW);
        Parity.Result r = parity.result(1e-3);
        assertEquals(0.001, r.maxAbsErr, 1e-6);
        assertEquals(0.001 / 4.0, r.maxRelErr, 1e-6);
        assertTrue(r.toString(), r.passed());
        assertFalse(parity.result(1e-4).passed());
    }

    @Test
    public void tinyOutputsCannotPassOnAbsoluteErrorAlone() {
        Parity parity = new Parity();
        parity.add(new float[] {2e-8f, 0, 0}, new float[] {1e-8f, 0, 0}, ROW);
        Parity.Result r = parity.result(1e-4);
        assertEquals(1.0, r.maxRelErr, 1e-6);
        assertFalse(r.passed());
    }

    @Test
    public void nanOrInfOnEitherSideFails() {
        Parity parity = new Parity();
        parity.add(new float[] {Float.NaN, 1, 2}, new float[] {0, 1, 2}, ROW);
        parity.add(new float[] {0, 1, 2}, new float[] {Float.POSITIVE_INFINITY, 1, 2}, ROW);
        Parity.Result r = parity.result(1.0);
        assertEquals(2, r.nonFiniteValues);
        assertFalse(r.passed());
        assertTrue(r.toString(), r.toString().contains("non_finite=2"));
    }

    @Test
    public void countsTop1AgreementPerRow() {
        Parity parity = new Parity();
        parity.add(new float[] {0, 1, 5, 4}, new float[] {1, 0, 4, 5}, new int[] {2, 2});
        Parity.Result r = parity.result(1.0);
        assertEquals(2, r.scoreRows);
        assertEquals(0, r.scoreRowsAgreeing);
        assertTrue(r.toString(), r.toString().contains("top1=0/2"));
    }
}
