package com.example.digits.core;

/**
 * A loaded model in one runtime (PyTorch Lite, LiteRT). Everything in the artifact's own layout: flat,
 * row-major float32 tensors, in the order of the artifact's inputs and outputs in metadata.json.
 * {@link ArtifactSession} does the layout work, so a runner only feeds and fetches.
 */
public interface ArtifactRunner extends AutoCloseable {
    float[][] run(float[][] inputs) throws Exception;

    /** Frees the native model; narrowed from AutoCloseable so that try-with-resources needs no catch. */
    @Override
    void close();
}
