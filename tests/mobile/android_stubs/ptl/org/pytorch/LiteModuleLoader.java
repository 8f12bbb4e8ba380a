package org.pytorch;
public class LiteModuleLoader {
    public static Module loadModuleFromAsset(android.content.res.AssetManager assetManager, String assetName) { throw new UnsupportedOperationException(); }
}
