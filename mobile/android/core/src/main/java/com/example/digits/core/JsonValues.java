package com.example.digits.core;

import java.util.List;
import java.util.Map;

/** Typed access to a parsed {@link Json} tree, with errors that name the field that was wrong. */
final class JsonValues {
    private JsonValues() {}

    @SuppressWarnings("unchecked")
    static Map<String, Object> object(Object value, String what) {
        if (!(value instanceof Map)) {
            throw new IllegalArgumentException(what + ": expected a JSON object");
        }
        return (Map<String, Object>) value;
    }

    @SuppressWarnings("unchecked")
    static List<Object> list(Object value, String what) {
        if (!(value instanceof List)) {
            throw new IllegalArgumentException(what + ": expected a JSON array");
        }
        return (List<Object>) value;
    }

    static Object field(Map<String, Object> object, String key, String what) {
        if (!object.containsKey(key)) {
            throw new IllegalArgumentException(what + ": missing field '" + key + "'");
        }
        return object.get(key);
    }

    static String string(Object value, String what) {
        if (!(value instanceof String)) {
            throw new IllegalArgumentException(what + ": expected a string");
        }
        return (String) value;
    }

    static double number(Object value, String what) {
        if (!(value instanceof Double)) {
            throw new IllegalArgumentException(what + ": expected a number");
        }
        return (Double) value;
    }

    static int[] ints(Object value, String what) {
        List<Object> items = list(value, what);
        int[] out = new int[items.size()];
        for (int i = 0; i < out.length; i++) {
            double d = number(items.get(i), what);
            if (d != Math.rint(d)) {
                throw new IllegalArgumentException(what + ": expected integers");
            }
            out[i] = (int) d;
        }
        return out;
    }

    static float[] floats(Object value, String what) {
        List<Object> items = list(value, what);
        float[] out = new float[items.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = (float) number(items.get(i), what);
        }
        return out;
    }
}
