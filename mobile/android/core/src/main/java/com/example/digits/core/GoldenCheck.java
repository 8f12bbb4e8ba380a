package com.example.digits.core;

import java.util.List;

/** Runs every golden case through an artifact and measures it against PyTorch's outputs. */
public final class GoldenCheck {
    private GoldenCheck() {}

    public static Parity.Result run(GoldenSet golden, ArtifactSession session) throws Exception {
        Parity parity = new Parity();
        for (GoldenSet.Case c : golden.cases) {
            float[][] outputs = session.run(inputsOf(c, golden.inputs));
            for (int i = 0; i < golden.outputs.size(); i++) {
                TensorSpec spec = golden.outputs.get(i);
                parity.add(outputs[i], c.outputs.get(spec.name), spec.shape);
            }
        }
        return parity.result(golden.tolerance(session.artifact().precision));
    }

    /** A case's inputs in the spec's order, as {@link ArtifactSession#run} takes them. */
    public static float[][] inputsOf(GoldenSet.Case c, List<TensorSpec> specs) {
        float[][] inputs = new float[specs.size()][];
        for (int i = 0; i < inputs.length; i++) {
            inputs[i] = c.inputs.get(specs.get(i).name);
        }
        return inputs;
    }
}
