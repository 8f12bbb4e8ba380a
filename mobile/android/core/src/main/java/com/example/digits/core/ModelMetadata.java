package com.example.digits.core;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** metadata.json (docs/artifacts.md): the PyTorch model's inputs and outputs, labels, preprocessing, artifacts. */
public final class ModelMetadata {
    public final String model;
    public final List<TensorSpec> inputs;
    public final List<TensorSpec> outputs;
    public final List<String> labels;
    /** {@code preprocessing.kind}, or "" when the model was converted without it. */
    public final String preprocessingKind;
    public final Map<String, ArtifactSpec> artifacts;

    private ModelMetadata(String model, List<TensorSpec> inputs, List<TensorSpec> outputs, List<String> labels,
                          String preprocessingKind, Map<String, ArtifactSpec> artifacts) {
        this.model = model;
        this.inputs = inputs;
        this.outputs = outputs;
        this.labels = labels;
        this.preprocessingKind = preprocessingKind;
        this.artifacts = artifacts;
    }

    public static ModelMetadata parse(String text) {
        Map<String, Object> o = JsonValues.object(Json.parse(text), "metadata.json");
        String model = o.containsKey("model") ? JsonValues.string(o.get("model"), "model") : "";
        List<String> labels = new ArrayList<>();
        if (o.containsKey("labels")) {
            for (Object label : JsonValues.list(o.get("labels"), "labels")) {
                labels.add(JsonValues.string(label, "labels"));
            }
        }
        String kind = "";
        if (o.containsKey("preprocessing")) {
            Map<String, Object> pre = JsonValues.object(o.get("preprocessing"), "preprocessing");
            kind = JsonValues.string(JsonValues.field(pre, "kind", "preprocessing"), "preprocessing.kind");
        }
        Map<String, ArtifactSpec> artifacts = new LinkedHashMap<>();
        if (o.containsKey("artifacts")) {
            for (Map.Entry<String, Object> e : JsonValues.object(o.get("artifacts"), "artifacts").entrySet()) {
                artifacts.put(e.getKey(), ArtifactSpec.from(e.getKey(), JsonValues.object(e.getValue(), "artifacts." + e.getKey())));
            }
        }
        return new ModelMetadata(
                model,
                TensorSpec.listFrom(JsonValues.field(o, "inputs", "metadata.json"), "inputs"),
                TensorSpec.listFrom(JsonValues.field(o, "outputs", "metadata.json"), "outputs"),
                Collections.unmodifiableList(labels),
                kind,
                Collections.unmodifiableMap(artifacts));
    }

    public ArtifactSpec artifact(String key) {
        ArtifactSpec spec = artifacts.get(key);
        if (spec == null) {
            throw new IllegalArgumentException("metadata.json has no artifact '" + key + "'; it has " + artifacts.keySet());
        }
        return spec;
    }

    /** The label of class {@code index}, or the index itself when the model has no labels. */
    public String label(int index) {
        return index < labels.size() ? labels.get(index) : Integer.toString(index);
    }
}
