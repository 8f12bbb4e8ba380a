package com.example.digits.core;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * One input or output as metadata.json or golden.json describes it.
 *
 * <p>For the PyTorch model itself {@code perm} is the identity and {@code artifactName} the model's own
 * name; for an artifact, {@code perm} maps PyTorch's layout to the artifact's
 * ({@code artifact = transpose(torch, perm)}, docs/artifacts.md) and {@code shape} is the artifact's.
 */
public final class TensorSpec {
    public final String name;
    public final String artifactName;
    public final int[] shape;
    public final String layout;
    public final int[] perm;

    TensorSpec(String name, String artifactName, int[] shape, String layout, int[] perm) {
        if (perm.length != shape.length) {
            throw new IllegalArgumentException(name + ": perm " + perm.length + "-D but shape " + shape.length + "-D");
        }
        this.name = name;
        this.artifactName = artifactName;
        this.shape = shape;
        this.layout = layout;
        this.perm = perm;
    }

    /** Number of elements. */
    public int size() {
        return Layout.elements(shape);
    }

    static List<TensorSpec> listFrom(Object json, String what) {
        List<TensorSpec> specs = new ArrayList<>();
        for (Object item : JsonValues.list(json, what)) {
            specs.add(from(JsonValues.object(item, what), what));
        }
        return specs;
    }

    private static TensorSpec from(Map<String, Object> o, String what) {
        String name = JsonValues.string(JsonValues.field(o, "name", what), what + ".name");
        String where = what + "[" + name + "]";
        int[] shape = JsonValues.ints(JsonValues.field(o, "shape", where), where + ".shape");
        String layout = o.containsKey("layout") ? JsonValues.string(o.get("layout"), where + ".layout") : "";
        String artifactName = o.containsKey("artifact_name")
                ? JsonValues.string(o.get("artifact_name"), where + ".artifact_name")
                : name;
        int[] perm = o.containsKey("perm") ? JsonValues.ints(o.get("perm"), where + ".perm") : Layout.identity(shape.length);
        return new TensorSpec(name, artifactName, shape, layout, perm);
    }
}
