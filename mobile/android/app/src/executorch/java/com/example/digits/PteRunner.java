package com.example.digits;

import com.example.digits.core.ArtifactRunner;
import com.example.digits.core.ArtifactSpec;
import com.example.digits.core.PteHeader;
import java.io.File;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import org.pytorch.executorch.EValue;
import org.pytorch.executorch.Module;
import org.pytorch.executorch.Tensor;

/**
 * model.pte in ExecuTorch (org.pytorch:executorch-android, pinned in app/build.gradle to the version of the
 * Python package that wrote it): the same C++ runtime and XNNPACK delegate as executorch.runtime, which the
 * converter's parity check ran on the desktop. Inputs and outputs are in PyTorch's layout (identity perms in
 * metadata.json), fed and fetched by position in forward's order.
 */
final class PteRunner implements ArtifactRunner {
    private final Module module;
    private final ArtifactSpec spec;

    /** {@code file}: the .pte on the file system; ExecuTorch's Module loads from a path, not from an asset. */
    PteRunner(File file, ArtifactSpec spec) throws IOException {
        checkHeader(file, spec.path);
        // Memory-mapped; one thread, so that the latency shown is comparable with LiteRT's (one thread too).
        this.module = Module.load(file.getAbsolutePath(), Module.LOAD_MODE_MMAP, 1);
        this.spec = spec;
    }

    @Override
    public float[][] run(float[][] inputs) {
        EValue[] args = new EValue[inputs.length];
        for (int i = 0; i < inputs.length; i++) {
            args[i] = EValue.from(Tensor.fromBlob(inputs[i], longs(spec.inputs.get(i).shape)));
        }
        EValue[] outputs = module.forward(args);
        float[][] data = new float[outputs.length][];
        for (int i = 0; i < outputs.length; i++) {
            data[i] = outputs[i].toTensor().getDataAsFloatArray();
        }
        return data;
    }

    @Override
    public void close() {
        module.destroy();
    }

    /** A truncated copy or a file of another format is named here, not as a native load error. */
    private static void checkHeader(File file, String what) throws IOException {
        byte[] head = new byte[PteHeader.HEAD_BYTES];
        int n = 0;
        try (InputStream in = new FileInputStream(file)) {
            for (int r; n < head.length && (r = in.read(head, n, head.length - n)) > 0; ) {
                n += r;
            }
        }
        byte[] got = new byte[n];
        System.arraycopy(head, 0, got, 0, n);
        PteHeader.parse(got, file.length(), what);
    }

    private static long[] longs(int[] shape) {
        long[] out = new long[shape.length];
        for (int i = 0; i < shape.length; i++) {
            out[i] = shape[i];
        }
        return out;
    }
}
