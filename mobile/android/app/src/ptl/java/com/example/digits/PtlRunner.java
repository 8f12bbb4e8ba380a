package com.example.digits;

import android.content.res.AssetManager;
import com.example.digits.core.ArtifactRunner;
import com.example.digits.core.ArtifactSpec;
import org.pytorch.IValue;
import org.pytorch.LiteModuleLoader;
import org.pytorch.Module;
import org.pytorch.Tensor;

/**
 * model.ptl in pytorch_android_lite: the same C++ lite interpreter as torch.jit.mobile on the desktop.
 *
 * <p>DEPRECATED, kept to show that the .ptl computes the same numbers: PyTorch Lite is deprecated and no
 * longer supported, and its native libraries are not 16 KB-aligned, so an APK with it cannot be published
 * on Google Play for Android 15+ targets (MobileRuntime.PYTORCH_LITE, mobile/README.md). Only the {@code ptl}
 * flavor has it; the default {@code executorch} flavor runs the .pte instead.
 */
final class PtlRunner implements ArtifactRunner {
    private final Module module;
    private final ArtifactSpec spec;

    PtlRunner(AssetManager assets, String assetPath, ArtifactSpec spec) {
        this.module = LiteModuleLoader.loadModuleFromAsset(assets, assetPath);
        this.spec = spec;
    }

    @Override
    public float[][] run(float[][] inputs) {
        IValue[] args = new IValue[inputs.length];
        for (int i = 0; i < inputs.length; i++) {
            args[i] = IValue.from(Tensor.fromBlob(inputs[i], longs(spec.inputs.get(i).shape)));
        }
        IValue result = module.forward(args);
        // A model with several outputs returns a tuple; one output comes back as a bare tensor.
        IValue[] outputs = result.isTuple() ? result.toTuple() : new IValue[] {result};
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

    private static long[] longs(int[] shape) {
        long[] out = new long[shape.length];
        for (int i = 0; i < shape.length; i++) {
            out[i] = shape[i];
        }
        return out;
    }
}
