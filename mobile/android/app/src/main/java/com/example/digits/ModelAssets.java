package com.example.digits;

import android.content.res.AssetManager;
import com.example.digits.core.ArtifactRunner;
import com.example.digits.core.ArtifactSession;
import com.example.digits.core.ArtifactSpec;
import com.example.digits.core.GoldenSet;
import com.example.digits.core.ModelMetadata;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
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

    private ModelAssets(AssetManager assets, ModelMetadata metadata, GoldenSet golden) {
        this.assets = assets;
        this.metadata = metadata;
        this.golden = golden;
    }

    /** Throws IOException when the assets were never installed. */
    static ModelAssets load(AssetManager assets) throws IOException {
        return new ModelAssets(assets,
                ModelMetadata.parse(readText(assets, ROOT + "metadata.json")),
                GoldenSet.parse(readText(assets, ROOT + "golden/golden.json")));
    }

    /** The artifacts this app can run (.ptl, .tflite) that are present, in metadata.json's order. */
    List<ArtifactSpec> mobileArtifacts() throws IOException {
        List<ArtifactSpec> found = new ArrayList<>();
        for (ArtifactSpec spec : metadata.artifacts.values()) {
            if ((spec.path.endsWith(".ptl") || spec.path.endsWith(".tflite")) && exists(spec.path)) {
                found.add(spec);
            }
        }
        return found;
    }

    /** Loads the artifact in its runtime; the caller closes the session. */
    ArtifactSession open(ArtifactSpec spec) throws IOException {
        String asset = ROOT + spec.path;
        ArtifactRunner runner = spec.path.endsWith(".ptl") ? new PtlRunner(assets, asset, spec) : new TfliteRunner(assets, asset, spec);
        return new ArtifactSession(metadata, spec, runner);
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
