package com.example.digits;

import com.example.digits.core.ArtifactRunner;
import com.example.digits.core.ArtifactSpec;
import com.example.digits.core.MobileRuntime;
import java.io.IOException;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;

/**
 * The runtimes of the {@code ptl} flavor: the DEPRECATED PyTorch Lite interpreter and LiteRT. Not for Google
 * Play (pytorch_android_lite is not 16 KB-aligned); the {@code executorch} flavor is the one to ship.
 */
final class Runtimes {
    static final String FLAVOR = "ptl";
    static final List<MobileRuntime> AVAILABLE =
            Collections.unmodifiableList(Arrays.asList(MobileRuntime.PYTORCH_LITE, MobileRuntime.LITERT));

    private Runtimes() {}

    static ArtifactRunner open(ModelAssets assets, ArtifactSpec spec) throws IOException {
        String asset = ModelAssets.ROOT + spec.path;
        MobileRuntime runtime = MobileRuntime.forPath(spec.path);
        if (runtime == MobileRuntime.PYTORCH_LITE) {
            return new PtlRunner(assets.assetManager(), asset, spec);
        }
        if (runtime == MobileRuntime.LITERT) {
            return new TfliteRunner(assets.assetManager(), asset, spec);
        }
        throw new IllegalArgumentException(spec.key + ": " + spec.path + " needs a runtime the " + FLAVOR + " build lacks");
    }
}
