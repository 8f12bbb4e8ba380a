package android.content.res;
public final class AssetManager {
    public java.io.InputStream open(String fileName) throws java.io.IOException { throw new UnsupportedOperationException(); }
    public String[] list(String path) throws java.io.IOException { throw new UnsupportedOperationException(); }
    public AssetFileDescriptor openFd(String fileName) throws java.io.IOException { throw new UnsupportedOperationException(); }
}
