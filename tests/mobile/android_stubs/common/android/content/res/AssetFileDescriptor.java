package android.content.res;
public class AssetFileDescriptor implements java.io.Closeable {
    public java.io.FileDescriptor getFileDescriptor() { throw new UnsupportedOperationException(); }
    public long getStartOffset() { throw new UnsupportedOperationException(); }
    public long getDeclaredLength() { throw new UnsupportedOperationException(); }
    @Override public void close() throws java.io.IOException {}
}
