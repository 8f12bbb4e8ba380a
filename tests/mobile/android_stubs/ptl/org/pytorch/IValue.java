package org.pytorch;
public class IValue {
    public static IValue from(Tensor tensor) { throw new UnsupportedOperationException(); }
    public boolean isTuple() { return false; }
    public IValue[] toTuple() { throw new UnsupportedOperationException(); }
    public Tensor toTensor() { throw new UnsupportedOperationException(); }
}
