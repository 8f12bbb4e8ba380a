package org.pytorch.executorch;
public class Module implements java.io.Closeable {
    public static final int LOAD_MODE_FILE = 0;
    public static final int LOAD_MODE_MMAP = 1;
    public static Module load(String modelPath, int loadMode, int numThreads) { throw new UnsupportedOperationException(); }
    public static Module load(String modelPath, int loadMode) { throw new UnsupportedOperationException(); }
    public static Module load(String modelPath) { throw new UnsupportedOperationException(); }
    public EValue[] forward(EValue... inputs) { throw new UnsupportedOperationException(); }
    public void destroy() {}
    @Override public void close() {}
}
