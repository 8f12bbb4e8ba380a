package android.app;
public class Activity extends android.content.Context {
    protected void onCreate(android.os.Bundle savedInstanceState) {}
    protected void onDestroy() {}
    public void setContentView(int layoutResID) {}
    public <T extends android.view.View> T findViewById(int id) { throw new UnsupportedOperationException(); }
    public final void runOnUiThread(Runnable action) {}
    @Override public android.content.res.AssetManager getAssets() { throw new UnsupportedOperationException(); }
    @Override public java.io.File getFilesDir() { throw new UnsupportedOperationException(); }
}
