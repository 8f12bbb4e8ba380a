package com.example.digits.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.Test;

public class JsonTest {
    @Test
    public void readsNestedDocument() {
        Map<String, Object> o = JsonValues.object(
                Json.parse(" {\"a\": [1, -2.5e2, true, false, null], \"b\": {}, \"c\": [], \"d\": \"x\"} "), "doc");
        assertEquals(Arrays.asList(1.0, -250.0, true, false, null), o.get("a"));
        assertTrue(((Map<?, ?>) o.get("b")).isEmpty());
        assertTrue(((List<?>) o.get("c")).isEmpty());
        assertEquals("x", o.get("d"));
    }

    @Test
    public void keepsKeyOrder() {
        Map<String, Object> o = JsonValues.object(Json.parse("{\"z\": 1, \"a\": 2, \"m\": 3}"), "doc");
        assertEquals(Arrays.asList("z", "a", "m"), Arrays.asList(o.keySet().toArray()));
    }

    @Test
    public void decodesEscapes() {
        assertEquals("q\"b\\s/\n\t\u00e9\u20ac", Json.parse("\"q\\\"b\\\\s\\/\\n\\t\\u00e9\\u20AC\""));
        assertEquals("\u00e9", Json.parse("\"\u00e9\""));
    }

    @Test
    public void float32ValuesSurviveTheRoundTrip() {
        // What Python writes for np.float32(0.1).item(): the double nearest to the float32 value.
        float parsed = (float) JsonValues.number(Json.parse("0.10000000149011612"), "x");
        assertEquals(Float.floatToIntBits(0.1f), Float.floatToIntBits(parsed));
    }

    @Test
    public void rejectsBadDocuments() {
        for (String bad : new String[] {"", "{", "[1,]", "{\"a\" 1}", "\"open", "[1] x", "NaN", "Infinity", "-", "{1: 2}", "\"\\x\""}) {
            assertThrows(bad, IllegalArgumentException.class, () -> Json.parse(bad));
        }
    }

    @Test
    public void typedAccessNamesTheField() {
        Map<String, Object> o = JsonValues.object(Json.parse("{\"shape\": [1, 2.5]}"), "doc");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> JsonValues.ints(o.get("shape"), "x.shape"));
        assertTrue(e.getMessage(), e.getMessage().startsWith("x.shape"));
        e = assertThrows(IllegalArgumentException.class, () -> JsonValues.field(o, "name", "x"));
        assertTrue(e.getMessage(), e.getMessage().contains("'name'"));
        assertNull(Json.parse("null"));
    }
}
