package org.pytorch;
public abstract class Tensor {
    public static Tensor fromBlob(float[] data, long[] shape) { throw new UnsupportedOperationException(); }
    public float[] getDataAsFloatArray() { throw new UnsupportedOperationException(); }
}
