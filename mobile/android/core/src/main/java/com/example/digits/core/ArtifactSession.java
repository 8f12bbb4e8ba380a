package com.example.digits.core;

import java.util.Arrays;
import java.util.List;

/**
 * Runs an artifact on data in PyTorch's layout: transposes inputs into the artifact's layout, runs it,
 * transposes outputs back. The app, the golden check and the on-device test all go through here, so the
 * layout handling is the one the JVM tests cover.
 */
public final class ArtifactSession implements AutoCloseable {
    private final ArtifactSpec artifact;
    private final List<TensorSpec> torchInputs;
    private final List<TensorSpec> torchOutputs;
    private final ArtifactRunner runner;

    public ArtifactSession(ModelMetadata metadata, ArtifactSpec artifact, ArtifactRunner runner) {
        this.artifact = artifact;
        this.torchInputs = metadata.inputs;
        this.torchOutputs = metadata.outputs;
        this.runner = runner;
        checkMatches(metadata.inputs, artifact.inputs, artifact.key + " inputs");
        checkMatches(metadata.outputs, artifact.outputs, artifact.key + " outputs");
    }

    public ArtifactSpec artifact() {
        return artifact;
    }

    /** Inputs and outputs in PyTorch's layout and in metadata.json's order. */
    public float[][] run(float[][] inputs) throws Exception {
        float[][] fed = new float[inputs.length][];
        for (int i = 0; i < inputs.length; i++) {
            fed[i] = toArtifact(inputs[i], torchInputs.get(i), artifact.inputs.get(i));
        }
        float[][] got = runner.run(fed);
        if (got.length != torchOutputs.size()) {
            throw new IllegalStateException(artifact.key + " gave " + got.length + " outputs, expected " + torchOutputs.size());
        }
        float[][] outputs = new float[got.length][];
        for (int i = 0; i < got.length; i++) {
            TensorSpec out = artifact.outputs.get(i);
            if (got[i].length != out.size()) {
                throw new IllegalStateException(artifact.key + " output " + out.name + " has " + got[i].length + " values, expected " + out.size());
            }
            outputs[i] = Layout.transpose(got[i], out.shape, Layout.inverse(out.perm));
        }
        return outputs;
    }

    /** Frees the runtime's model. */
    @Override
    public void close() {
        runner.close();
    }

    static float[] toArtifact(float[] torchData, TensorSpec torch, TensorSpec art) {
        return Layout.transpose(torchData, torch.shape, art.perm);
    }

    /**
     * Same names in the same order, and each artifact shape equal to the PyTorch shape under its perm:
     * a mismatch here means metadata.json and the artifact disagree, found before any number is compared.
     */
    private static void checkMatches(List<TensorSpec> torch, List<TensorSpec> art, String what) {
        if (torch.size() != art.size()) {
            throw new IllegalArgumentException(what + ": " + art.size() + " tensors, the model has " + torch.size());
        }
        for (int i = 0; i < torch.size(); i++) {
            TensorSpec t = torch.get(i);
            TensorSpec a = art.get(i);
            int[] expected = Layout.permuteShape(t.shape, a.perm);
            if (!t.name.equals(a.name) || !Arrays.equals(expected, a.shape)) {
                throw new IllegalArgumentException(what + "[" + i + "]: " + a.name + Arrays.toString(a.shape)
                        + " does not match " + t.name + Arrays.toString(t.shape) + " under perm " + Arrays.toString(a.perm));
            }
        }
    }
}
