package com.example.digits;

import com.example.digits.core.ArtifactRunner;
import com.example.digits.core.ArtifactSpec;
import com.example.digits.core.MobileRuntime;
import java.io.IOException;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;

/**
 * The runtimes of the {@code executorch} flavor (the default, and the one to ship): ExecuTorch for the .pte
 * and LiteRT for the .tflite files. PyTorch Lite is left out: its AAR and ExecuTorch's bring the same fbjni
 * classes in two incompatible packagings, and its native libraries are not 16 KB-aligned.
 */
final class Runtimes {
    static final String FLAVOR = "executorch";
    static final List<MobileRuntime> AVAILABLE =
            Collections.unmodifiableList(Arrays.asList(MobileRuntime.EXECUTORCH, MobileRuntime.LITERT));

    private Runtimes() {}

    static ArtifactRunner open(ModelAssets assets, ArtifactSpec spec) throws IOException {
        String asset = ModelAssets.ROOT + spec.path;
        MobileRuntime runtime = MobileRuntime.forPath(spec.path);
        if (runtime == MobileRuntime.EXECUTORCH) {
            return new PteRunner(assets.copyToFile(spec.path), spec);
        }
        if (runtime == MobileRuntime.LITERT) {
            return new TfliteRunner(assets.assetManager(), asset, spec);
        }
        throw new IllegalArgumentException(spec.key + ": " + spec.path + " needs a runtime the " + FLAVOR + " build lacks");
    }
}
