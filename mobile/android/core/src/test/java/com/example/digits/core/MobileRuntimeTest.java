package com.example.digits.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import org.junit.Test;

public class MobileRuntimeTest {
    private static final String TENSOR = "{\"name\": \"x\", \"shape\": [1, 4]}";

    private static String artifact(String key, String path) {
        return "\"" + key + "\": {\"path\": \"" + path + "\", \"inputs\": [" + TENSOR + "], \"outputs\": [" + TENSOR + "]}";
    }

    /** metadata.json of a conversion with every stage, in the order the pipeline writes them. */
    private static final ModelMetadata METADATA = ModelMetadata.parse("{\"inputs\": [" + TENSOR + "], \"outputs\": ["
            + TENSOR + "], \"artifacts\": {" + String.join(", ", Arrays.asList(
                    artifact("onnx", "model.onnx"), artifact("torchscript", "model.pt"), artifact("ptl", "model.ptl"),
                    artifact("executorch", "model.pte"), artifact("tflite_fp32", "tflite/model_float32.tflite"),
                    artifact("tflite_fp16", "tflite/model_float16.tflite"), artifact("tfjs", "tfjs/model.json")))
            + "}}");

    private static List<String> keys(List<ArtifactSpec> specs) {
        List<String> out = new ArrayList<>();
        for (ArtifactSpec spec : specs) {
            out.add(spec.key);
        }
        return out;
    }

    @Test
    public void fileTypesPickTheirRuntime() {
        assertEquals(MobileRuntime.EXECUTORCH, MobileRuntime.forPath("model.pte"));
        assertEquals(MobileRuntime.LITERT, MobileRuntime.forPath("tflite/model_float16.tflite"));
        assertEquals(MobileRuntime.PYTORCH_LITE, MobileRuntime.forPath("MODEL.PTL"));
        assertNull(MobileRuntime.forPath("model.pt"));
        assertNull(MobileRuntime.forPath("model.onnx"));
        assertNull(MobileRuntime.forPath("tfjs/model.json"));
    }

    @Test
    public void onlyPyTorchLiteIsDeprecatedAndItsLabelSaysSo() {
        assertTrue(MobileRuntime.PYTORCH_LITE.deprecated());
        assertTrue(MobileRuntime.PYTORCH_LITE.deprecation.contains("16 KB"));
        assertTrue(MobileRuntime.PYTORCH_LITE.deprecation.contains("pytorch#163289"));
        assertTrue(MobileRuntime.PYTORCH_LITE.deprecation.contains("pytorch#154449"));
        assertFalse(MobileRuntime.EXECUTORCH.deprecated());
        assertFalse(MobileRuntime.LITERT.deprecated());
        assertEquals("ptl (model.ptl, PyTorch Lite, DEPRECATED)",
                MobileRuntime.PYTORCH_LITE.label(METADATA.artifact("ptl")));
        assertEquals("executorch (model.pte, ExecuTorch)", MobileRuntime.EXECUTORCH.label(METADATA.artifact("executorch")));
    }

    @Test
    public void eachFlavorRunsItsArtifactsAndNamesTheOthers() {
        List<MobileRuntime> executorch = Arrays.asList(MobileRuntime.EXECUTORCH, MobileRuntime.LITERT);
        assertEquals(Arrays.asList("executorch", "tflite_fp32", "tflite_fp16"),
                keys(MobileRuntime.runnable(METADATA, executorch)));
        assertEquals(Collections.singletonList(
                "ptl: not run, PyTorch Lite is not in the executorch build (the ptl flavor has it); PyTorch Lite is DEPRECATED"),
                MobileRuntime.notInThisBuild(METADATA, executorch, "executorch"));

        List<MobileRuntime> ptl = Arrays.asList(MobileRuntime.PYTORCH_LITE, MobileRuntime.LITERT);
        assertEquals(Arrays.asList("ptl", "tflite_fp32", "tflite_fp16"), keys(MobileRuntime.runnable(METADATA, ptl)));
        assertEquals(Collections.singletonList(
                "executorch: not run, ExecuTorch is not in the ptl build (the executorch flavor has it)"),
                MobileRuntime.notInThisBuild(METADATA, ptl, "ptl"));
    }
}
