package com.example.digits.core;

import java.util.List;
import java.util.Map;

/** One entry of metadata.json's {@code artifacts}: where the file is and what it takes and gives. */
public final class ArtifactSpec {
    public final String key;
    public final String path;
    /** fp32, fp16 or uint8: picks the tolerance in golden.json. */
    public final String precision;
    public final List<TensorSpec> inputs;
    public final List<TensorSpec> outputs;

    ArtifactSpec(String key, String path, String precision, List<TensorSpec> inputs, List<TensorSpec> outputs) {
        this.key = key;
        this.path = path;
        this.precision = precision;
        this.inputs = inputs;
        this.outputs = outputs;
    }

    static ArtifactSpec from(String key, Map<String, Object> o) {
        String what = "artifacts." + key;
        String path = JsonValues.string(JsonValues.field(o, "path", what), what + ".path");
        String precision = o.containsKey("precision") ? JsonValues.string(o.get("precision"), what + ".precision") : "fp32";
        return new ArtifactSpec(
                key,
                path,
                precision,
                TensorSpec.listFrom(JsonValues.field(o, "inputs", what), what + ".inputs"),
                TensorSpec.listFrom(JsonValues.field(o, "outputs", what), what + ".outputs"));
    }
}
