package com.example.digits;

import android.content.Context;
import android.content.res.AssetManager;
import com.example.digits.core.ArtifactSession;
import com.example.digits.core.ArtifactSpec;
import com.example.digits.core.GoldenSet;
import com.example.digits.core.MobileRuntime;
import com.example.digits.core.ModelMetadata;
import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The converted folder as `python -m converter android-assets` put it under assets/model/, with the
 * folder's own relative paths, so an artifact's path in metadata.json is also its asset path.
 */
final class ModelAssets {
    static final String ROOT = "model/";

    final ModelMetadata metadata;
    final GoldenSet golden;
    private final AssetManager assets;
    private final File filesDir;

    private ModelAssets(AssetManager assets, File filesDir, ModelMetadata metadata, GoldenSet golden) {
        this.assets = assets;
        this.filesDir = filesDir;
        this.metadata = metadata;
        this.golden = golden;
    }

    /** Throws IOException when the assets were never installed. */
    static ModelAssets load(Context context) throws IOException {
        AssetManager assets = context.getAssets();
        return new ModelAssets(assets, context.getFilesDir(),
                ModelMetadata.parse(readText(assets, ROOT + "metadata.json")),
                GoldenSet.parse(readText(assets, ROOT + "golden/golden.json")));
    }

    AssetManager assetManager() {
        return assets;
    }

    /** The artifacts this build's runtimes can run (Runtimes.AVAILABLE) that are present, in metadata.json's order. */
    List<ArtifactSpec> mobileArtifacts() throws IOException {
        List<ArtifactSpec> found = new ArrayList<>();
        for (ArtifactSpec spec : MobileRuntime.runnable(metadata, Runtimes.AVAILABLE)) {
            if (exists(spec.path)) {
                found.add(spec);
            }
        }
        return found;
    }

    /** Lines naming the mobile artifacts that only the other flavor can run. */
    List<String> notInThisBuild() {
        return MobileRuntime.notInThisBuild(metadata, Runtimes.AVAILABLE, Runtimes.FLAVOR);
    }

    /** Loads the artifact in its runtime; the caller closes the session. */
    ArtifactSession open(ArtifactSpec spec) throws IOException {
        return new ArtifactSession(metadata, spec, Runtimes.open(this, spec));
    }

    /**
     * Copies an asset to the app's files (for runtimes that load from a path, like ExecuTorch's Module) and
     * returns the file. Copied on every start: an app update may bring a new model under the same name.
     */
    File copyToFile(String path) throws IOException {
        File target = new File(filesDir, ROOT + path);
        File parent = target.getParentFile();
        if (parent != null && !parent.isDirectory() && !parent.mkdirs()) {
            throw new IOException("cannot create " + parent);
        }
        File partial = new File(target.getPath() + ".partial");
        try (InputStream in = assets.open(ROOT + path); OutputStream out = new FileOutputStream(partial)) {
            byte[] buffer = new byte[64 * 1024];
            for (int n; (n = in.read(buffer)) > 0; ) {
                out.write(buffer, 0, n);
            }
        }
        if (!partial.renameTo(target)) {
            throw new IOException("cannot move " + partial + " to " + target);
        }
        return target;
    }

    private boolean exists(String path) throws IOException {
        String full = ROOT + path;
        int slash = full.lastIndexOf('/');
        String[] names = assets.list(full.substring(0, slash));
        return names != null && Arrays.asList(names).contains(full.substring(slash + 1));
    }

    private static String readText(AssetManager assets, String name) throws IOException {
        try (InputStream in = assets.open(name)) {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            byte[] buffer = new byte[64 * 1024];
            for (int n; (n = in.read(buffer)) > 0; ) {
                out.write(buffer, 0, n);
            }
            return new String(out.toByteArray(), StandardCharsets.UTF_8);
        }
    }
}
