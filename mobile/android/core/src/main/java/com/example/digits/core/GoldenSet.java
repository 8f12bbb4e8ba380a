package com.example.digits.core;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** golden/golden.json: parity inputs and PyTorch's outputs, flat and row-major in PyTorch's layout. */
public final class GoldenSet {
    public final List<TensorSpec> inputs;
    public final List<TensorSpec> outputs;
    /** Keyed by precision: fp32, fp16, uint8. */
    public final Map<String, Double> tolerances;
    public final List<Case> cases;

    /** One golden case: tensors by their PyTorch name. */
    public static final class Case {
        public final String name;
        public final Map<String, float[]> inputs;
        public final Map<String, float[]> outputs;

        Case(String name, Map<String, float[]> inputs, Map<String, float[]> outputs) {
            this.name = name;
            this.inputs = inputs;
            this.outputs = outputs;
        }
    }

    private GoldenSet(List<TensorSpec> inputs, List<TensorSpec> outputs, Map<String, Double> tolerances, List<Case> cases) {
        this.inputs = inputs;
        this.outputs = outputs;
        this.tolerances = tolerances;
        this.cases = cases;
    }

    public static GoldenSet parse(String text) {
        Map<String, Object> o = JsonValues.object(Json.parse(text), "golden.json");
        List<TensorSpec> inputs = TensorSpec.listFrom(JsonValues.field(o, "inputs", "golden.json"), "inputs");
        List<TensorSpec> outputs = TensorSpec.listFrom(JsonValues.field(o, "outputs", "golden.json"), "outputs");
        Map<String, Double> tolerances = new LinkedHashMap<>();
        for (Map.Entry<String, Object> e : JsonValues.object(JsonValues.field(o, "tolerances", "golden.json"), "tolerances").entrySet()) {
            tolerances.put(e.getKey(), JsonValues.number(e.getValue(), "tolerances." + e.getKey()));
        }
        List<Case> cases = new ArrayList<>();
        for (Object item : JsonValues.list(JsonValues.field(o, "cases", "golden.json"), "cases")) {
            Map<String, Object> c = JsonValues.object(item, "cases");
            String name = JsonValues.string(JsonValues.field(c, "name", "cases"), "cases.name");
            cases.add(new Case(
                    name,
                    tensors(JsonValues.field(c, "inputs", name), inputs, name + ".inputs"),
                    tensors(JsonValues.field(c, "outputs", name), outputs, name + ".outputs")));
        }
        return new GoldenSet(inputs, outputs, Collections.unmodifiableMap(tolerances), Collections.unmodifiableList(cases));
    }

    /** The tolerance for an artifact of this precision; an unknown precision is an error, not a default. */
    public double tolerance(String precision) {
        Double tol = tolerances.get(precision);
        if (tol == null) {
            throw new IllegalArgumentException("golden.json has no tolerance for '" + precision + "'; it has " + tolerances.keySet());
        }
        return tol;
    }

    /** Reads each named tensor and checks its length against the spec, so a bad file fails here, not mid-run. */
    private static Map<String, float[]> tensors(Object json, List<TensorSpec> specs, String what) {
        Map<String, Object> o = JsonValues.object(json, what);
        Map<String, float[]> out = new LinkedHashMap<>();
        for (TensorSpec spec : specs) {
            float[] data = JsonValues.floats(JsonValues.field(o, spec.name, what), what + "." + spec.name);
            if (data.length != spec.size()) {
                throw new IllegalArgumentException(what + "." + spec.name + ": " + data.length + " values, shape wants " + spec.size());
            }
            out.put(spec.name, data);
        }
        return Collections.unmodifiableMap(out);
    }
}
