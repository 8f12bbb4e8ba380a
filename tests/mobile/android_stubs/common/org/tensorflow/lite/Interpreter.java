package org.tensorflow.lite;
public final class Interpreter implements AutoCloseable {
    public static class Options {
        public Options setNumThreads(int numThreads) { return this; }
    }
    public Interpreter(java.nio.ByteBuffer byteBuffer, Options options) {}
    public void runSignature(java.util.Map<String, Object> inputs, java.util.Map<String, Object> outputs) {}
    @Override public void close() {}
}
