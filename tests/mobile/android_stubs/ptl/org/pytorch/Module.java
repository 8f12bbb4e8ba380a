package org.pytorch;
public class Module {
    public IValue forward(IValue... inputs) { throw new UnsupportedOperationException(); }
    public void destroy() {}
}
