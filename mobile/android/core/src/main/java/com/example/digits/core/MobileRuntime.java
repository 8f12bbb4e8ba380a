package com.example.digits.core;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;

/**
 * The Android runtime an artifact needs, chosen by its file type, and what the app says about it.
 *
 * <p>The app is built in two flavors (app/build.gradle): {@code executorch} runs .pte and .tflite files,
 * {@code ptl} runs .ptl and .tflite files. The two PyTorch runtimes cannot share one APK: their AARs bring
 * the same fbjni classes in two incompatible packagings. Which runtimes a build has is passed in as
 * {@code available}, so that this logic stays plain Java and is tested on the JVM.
 */
public enum MobileRuntime {
    /** model.pte in ExecuTorch (org.pytorch:executorch-android), XNNPACK on the CPU. */
    EXECUTORCH(".pte", "ExecuTorch", "executorch", ""),
    /** .tflite in LiteRT (com.google.ai.edge.litert), the classic Interpreter. */
    LITERT(".tflite", "LiteRT", "executorch", ""),
    /** model.ptl in the PyTorch Lite interpreter (org.pytorch:pytorch_android_lite), deprecated. */
    PYTORCH_LITE(".ptl", "PyTorch Lite", "ptl",
            "PyTorch Lite is deprecated (pytorch#163289) and no longer supported (pytorch#154449); "
                    + "pytorch_android_lite's native libraries are not 16 KB-aligned, which Google Play requires "
                    + "since November 2025 for apps targeting Android 15+. Use the .pte (ExecuTorch) or .tflite.");

    public final String suffix;
    public final String displayName;
    /** The app flavor (app/build.gradle) that has this runtime; LiteRT is in both, executorch is the default. */
    public final String flavor;
    /** Why this runtime should not be shipped; empty when it may be. */
    public final String deprecation;

    MobileRuntime(String suffix, String displayName, String flavor, String deprecation) {
        this.suffix = suffix;
        this.displayName = displayName;
        this.flavor = flavor;
        this.deprecation = deprecation;
    }

    public boolean deprecated() {
        return !deprecation.isEmpty();
    }

    /** The runtime a file of this path needs, or null when no Android runtime of this app reads it. */
    public static MobileRuntime forPath(String path) {
        String lower = path.toLowerCase(Locale.ROOT);
        for (MobileRuntime runtime : values()) {
            if (lower.endsWith(runtime.suffix)) {
                return runtime;
            }
        }
        return null;
    }

    /** The text of an artifact's radio button, e.g. "ptl (model.ptl, PyTorch Lite, DEPRECATED)". */
    public String label(ArtifactSpec spec) {
        return spec.key + " (" + spec.path + ", " + displayName + (deprecated() ? ", DEPRECATED" : "") + ")";
    }

    /** The artifacts of metadata.json that a runtime in {@code available} can run, in metadata.json's order. */
    public static List<ArtifactSpec> runnable(ModelMetadata metadata, List<MobileRuntime> available) {
        List<ArtifactSpec> found = new ArrayList<>();
        for (ArtifactSpec spec : metadata.artifacts.values()) {
            MobileRuntime runtime = forPath(spec.path);
            if (runtime != null && available.contains(runtime)) {
                found.add(spec);
            }
        }
        return Collections.unmodifiableList(found);
    }

    /**
     * One line per mobile artifact that this build cannot run, so that the app says why it is missing
     * instead of silently leaving it out.
     */
    public static List<String> notInThisBuild(ModelMetadata metadata, List<MobileRuntime> available, String flavor) {
        List<String> lines = new ArrayList<>();
        for (ArtifactSpec spec : metadata.artifacts.values()) {
            MobileRuntime runtime = forPath(spec.path);
            if (runtime != null && !available.contains(runtime)) {
                lines.add(spec.key + ": not run, " + runtime.displayName + " is not in the " + flavor
                        + " build (the " + runtime.flavor + " flavor has it)"
                        + (runtime.deprecated() ? "; " + runtime.displayName + " is DEPRECATED" : ""));
            }
        }
        return Collections.unmodifiableList(lines);
    }
}
