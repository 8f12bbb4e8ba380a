package com.example.digits;

import android.content.res.AssetFileDescriptor;
import android.content.res.AssetManager;
import com.example.digits.core.ArtifactRunner;
import com.example.digits.core.ArtifactSpec;
import com.example.digits.core.TensorSpec;
import java.io.FileInputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.util.HashMap;
import java.util.Map;
import org.tensorflow.lite.Interpreter;

/**
 * A .tflite in LiteRT's Interpreter. Tensors are fed and fetched by signature key (metadata.json's
 * artifact_name), not by position: a converter is free to order a flatbuffer's tensors as it likes.
 */
final class TfliteRunner implements ArtifactRunner {
    private final Interpreter interpreter;
    private final ArtifactSpec spec;

    TfliteRunner(AssetManager assets, String assetPath, ArtifactSpec spec) throws IOException {
        // One thread: the latency shown is then comparable between runs and with the .ptl.
        this.interpreter = new Interpreter(map(assets, assetPath), new Interpreter.Options().setNumThreads(1));
        this.spec = spec;
    }

    @Override
    public float[][] run(float[][] inputs) {
        Map<String, Object> feeds = new HashMap<>();
        for (int i = 0; i < inputs.length; i++) {
            ByteBuffer buffer = direct(inputs[i].length);
            buffer.asFloatBuffer().put(inputs[i]);
            feeds.put(spec.inputs.get(i).artifactName, buffer);
        }
        Map<String, Object> fetches = new HashMap<>();
        for (TensorSpec out : spec.outputs) {
            fetches.put(out.artifactName, direct(out.size()));
        }
        interpreter.runSignature(feeds, fetches);
        float[][] data = new float[spec.outputs.size()][];
        for (int i = 0; i < data.length; i++) {
            TensorSpec out = spec.outputs.get(i);
            ByteBuffer buffer = (ByteBuffer) fetches.get(out.artifactName);
            buffer.rewind();
            data[i] = new float[out.size()];
            buffer.asFloatBuffer().get(data[i]);
        }
        return data;
    }

    @Override
    public void close() {
        interpreter.close();
    }

    private static ByteBuffer direct(int floats) {
        return ByteBuffer.allocateDirect(floats * 4).order(ByteOrder.nativeOrder());
    }

    /** Memory-maps the asset; works because build.gradle keeps .tflite assets uncompressed. */
    private static MappedByteBuffer map(AssetManager assets, String assetPath) throws IOException {
        try (AssetFileDescriptor fd = assets.openFd(assetPath);
             FileInputStream in = new FileInputStream(fd.getFileDescriptor())) {
            return in.getChannel().map(FileChannel.MapMode.READ_ONLY, fd.getStartOffset(), fd.getDeclaredLength());
        }
    }
}
