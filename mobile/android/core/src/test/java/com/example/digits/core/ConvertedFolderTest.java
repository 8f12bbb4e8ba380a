package com.example.digits.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertTrue;
import static org.junit.Assume.assumeTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import org.junit.BeforeClass;
import org.junit.Test;

/**
 * The core against a real conversion of the bundled digits model (tests/mobile/test_jvm.py makes it):
 * its metadata.json and golden.json, and the outputs that the desktop builds of the Android runtimes (the
 * lite interpreter, LiteRT, ExecuTorch's runtime with XNNPACK) gave on the golden inputs. Those runtimes
 * cannot run on this JVM, so their recorded outputs are replayed: what is under test is that the Java layout code feeds exactly what Python
 * fed and that the Java parity code reaches exactly Python's numbers on real outputs.
 */
public class ConvertedFolderTest {
    private static Path folder;
    private static ModelMetadata metadata;
    private static GoldenSet golden;
    private static Map<String, Object> recorded;

    @BeforeClass
    public static void load() throws IOException {
        String dir = System.getProperty("converted.dir");
        String runs = System.getProperty("runtime.outputs");
        assertNotNull("set -Dconverted.dir and -Druntime.outputs (tests/mobile/test_jvm.py does)", dir);
        assertNotNull("set -Druntime.outputs (tests/mobile/test_jvm.py does)", runs);
        folder = Paths.get(dir);
        metadata = ModelMetadata.parse(read(folder.resolve("metadata.json")));
        golden = GoldenSet.parse(read(folder.resolve("golden/golden.json")));
        recorded = JsonValues.object(JsonValues.field(JsonValues.object(Json.parse(read(Paths.get(runs))), "runs"), "artifacts", "runs"), "artifacts");
    }

    private static String read(Path path) throws IOException {
        return new String(Files.readAllBytes(path), StandardCharsets.UTF_8);
    }

    @Test
    public void metadataDescribesTheDigitsModel() {
        assertEquals(Digits8x8.KIND, metadata.preprocessingKind);
        assertEquals(10, metadata.labels.size());
        assertEquals(1, metadata.inputs.size());
        assertArrayEquals(new int[] {1, 1, Digits8x8.SIDE, Digits8x8.SIDE}, metadata.inputs.get(0).shape);
        // onnx2tf made the .tflite channels-last: the app must transpose, and must be told so.
        TensorSpec tfliteInput = metadata.artifact("tflite_fp32").inputs.get(0);
        assertArrayEquals(new int[] {0, 2, 3, 1}, tfliteInput.perm);
        assertArrayEquals(new int[] {1, Digits8x8.SIDE, Digits8x8.SIDE, 1}, tfliteInput.shape);
        assertTrue(metadata.artifact("ptl").path.endsWith(".ptl"));
        assertTrue(Files.isRegularFile(folder.resolve(metadata.artifact("ptl").path)));
    }

    @Test
    public void executorchProgramIsInPyTorchsLayoutAndReadable() throws IOException {
        // tests/mobile/test_jvm.py says when the conversion has no .pte (the pipeline did not run the stage).
        assumeTrue("no executorch artifact in this conversion", metadata.artifacts.containsKey("executorch"));
        // ExecuTorch runs the exported PyTorch graph itself: no layout change, unlike the .tflite.
        ArtifactSpec pte = metadata.artifact("executorch");
        assertEquals(MobileRuntime.EXECUTORCH, MobileRuntime.forPath(pte.path));
        assertEquals("fp32", pte.precision);
        for (int i = 0; i < metadata.inputs.size(); i++) {
            assertArrayEquals(Layout.identity(metadata.inputs.get(i).shape.length), pte.inputs.get(i).perm);
            assertArrayEquals(metadata.inputs.get(i).shape, pte.inputs.get(i).shape);
        }
        for (int i = 0; i < metadata.outputs.size(); i++) {
            assertArrayEquals(Layout.identity(metadata.outputs.get(i).shape.length), pte.outputs.get(i).perm);
            assertArrayEquals(metadata.outputs.get(i).shape, pte.outputs.get(i).shape);
        }
        // The header check the app runs before loading it, on the real file.
        Path file = folder.resolve(pte.path);
        byte[] bytes = Files.readAllBytes(file);
        PteHeader header = PteHeader.parse(Arrays.copyOf(bytes, Math.min(bytes.length, PteHeader.HEAD_BYTES)), bytes.length, pte.path);
        assertEquals(PteHeader.IDENTIFIER, header.identifier);
        assertTrue(header.programSize > 0 && header.programSize <= bytes.length);
        System.out.println("model.pte: " + bytes.length + " bytes, program " + header.programSize + ", segments "
                + header.segmentDataSize + " from " + header.segmentBaseOffset);
    }

    @Test
    public void goldenMatchesMetadata() {
        assertFalse(golden.cases.isEmpty());
        assertEquals(metadata.inputs.get(0).name, golden.inputs.get(0).name);
        assertEquals(metadata.outputs.get(0).name, golden.outputs.get(0).name);
        assertTrue(golden.tolerance("fp16") > golden.tolerance("fp32"));
    }

    @Test
    public void everyRecordedArtifactPassesWithPythonsNumbers() throws Exception {
        // Every artifact the app can run (any flavor) was run by Python, the ExecuTorch program included when
        // the conversion has one.
        List<String> mobile = new ArrayList<>();
        for (ArtifactSpec spec : MobileRuntime.runnable(metadata, Arrays.asList(MobileRuntime.values()))) {
            mobile.add(spec.key);
        }
        assertTrue(mobile.toString(), mobile.containsAll(Arrays.asList("ptl", "tflite_fp32", "tflite_fp16")));
        assertEquals(new HashSet<>(mobile), recorded.keySet());
        for (Map.Entry<String, Object> entry : recorded.entrySet()) {
            String key = entry.getKey();
            Map<String, Object> run = JsonValues.object(entry.getValue(), key);
            try (ArtifactSession session = new ArtifactSession(metadata, metadata.artifact(key), new Replay(run, key))) {
                Parity.Result result = GoldenCheck.run(golden, session);
                double pythonAbs = JsonValues.number(run.get("max_abs_err"), key);
                double pythonRel = JsonValues.number(run.get("max_rel_err"), key);
                System.out.println("java parity " + key + ": " + result + " (python: max_abs_err=" + pythonAbs + ")");
                assertTrue(key + ": " + result, result.passed());
                // Both sides take float32 values to double before subtracting: the numbers are the same.
                assertEquals(key, pythonAbs, result.maxAbsErr, 1e-12 * Math.max(1, pythonAbs));
                assertEquals(key, pythonRel, result.maxRelErr, 1e-12 * Math.max(1, pythonRel));
                assertEquals(key, golden.cases.size(), result.scoreRows);
            }
        }
    }

    /**
     * Gives back what the runtime gave Python for the case whose inputs Java fed; Java feeding anything
     * else (a wrong transpose) fails the test.
     */
    private static final class Replay implements ArtifactRunner {
        private final List<float[][]> inputs = new ArrayList<>();
        private final List<float[][]> outputs = new ArrayList<>();
        private final String key;

        Replay(Map<String, Object> run, String key) {
            this.key = key;
            for (Object c : JsonValues.list(run.get("cases"), key)) {
                Map<String, Object> recordedCase = JsonValues.object(c, key);
                inputs.add(tensors(recordedCase.get("inputs")));
                outputs.add(tensors(recordedCase.get("outputs")));
            }
        }

        private float[][] tensors(Object json) {
            List<Object> list = JsonValues.list(json, key);
            float[][] out = new float[list.size()][];
            for (int i = 0; i < out.length; i++) {
                out[i] = JsonValues.floats(list.get(i), key);
            }
            return out;
        }

        @Override
        public float[][] run(float[][] fed) {
            for (int i = 0; i < inputs.size(); i++) {
                if (Arrays.deepEquals(inputs.get(i), fed)) {
                    return outputs.get(i);
                }
            }
            throw new AssertionError(key + ": Java fed " + Arrays.toString(fed[0]) + ", which Python never fed (layout?)");
        }

        @Override
        public void close() {}
    }
}
