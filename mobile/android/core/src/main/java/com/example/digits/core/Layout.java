package com.example.digits.core;

/**
 * Moves flat, row-major tensors between PyTorch's layout and an artifact's, with NumPy's
 * {@code np.transpose(x, perm)} semantics: output axis {@code i} is input axis {@code perm[i]}.
 *
 * <p>Why it matters: onnx2tf turns NCHW image inputs into NHWC, so the .tflite wants the golden (NCHW)
 * data transposed, and its outputs must be transposed back before they can be compared.
 */
public final class Layout {
    private Layout() {}

    public static int[] identity(int rank) {
        int[] perm = new int[rank];
        for (int i = 0; i < rank; i++) {
            perm[i] = i;
        }
        return perm;
    }

    public static int[] inverse(int[] perm) {
        int[] inv = new int[perm.length];
        for (int i = 0; i < perm.length; i++) {
            inv[perm[i]] = i;
        }
        return inv;
    }

    /** The shape after {@code transpose(·, perm)}. */
    public static int[] permuteShape(int[] shape, int[] perm) {
        checkPerm(perm, shape.length);
        int[] out = new int[shape.length];
        for (int i = 0; i < shape.length; i++) {
            out[i] = shape[perm[i]];
        }
        return out;
    }

    /** {@code np.transpose(data.reshape(shape), perm).ravel()}. */
    public static float[] transpose(float[] data, int[] shape, int[] perm) {
        int[] outShape = permuteShape(shape, perm);
        int rank = shape.length;
        int[] inStrides = strides(shape);
        if (data.length != elements(shape)) {
            throw new IllegalArgumentException("data has " + data.length + " elements, shape wants " + elements(shape));
        }
        // Stride in the input of each output axis: walking the output in row-major order is then a sum.
        int[] stepOf = new int[rank];
        for (int i = 0; i < rank; i++) {
            stepOf[i] = inStrides[perm[i]];
        }
        float[] out = new float[data.length];
        int[] index = new int[rank];
        int source = 0;
        for (int flat = 0; flat < out.length; flat++) {
            out[flat] = data[source];
            // Odometer increment over the output shape, keeping the input offset in step.
            for (int axis = rank - 1; axis >= 0; axis--) {
                index[axis]++;
                source += stepOf[axis];
                if (index[axis] < outShape[axis]) {
                    break;
                }
                source -= stepOf[axis] * outShape[axis];
                index[axis] = 0;
            }
        }
        return out;
    }

    private static int[] strides(int[] shape) {
        int[] strides = new int[shape.length];
        int stride = 1;
        for (int i = shape.length - 1; i >= 0; i--) {
            strides[i] = stride;
            stride *= shape[i];
        }
        return strides;
    }

    /** Number of elements of a tensor of this shape. */
    public static int elements(int[] shape) {
        int n = 1;
        for (int d : shape) {
            n *= d;
        }
        return n;
    }

    private static void checkPerm(int[] perm, int rank) {
        if (perm.length != rank) {
            throw new IllegalArgumentException("perm has " + perm.length + " axes, tensor " + rank);
        }
        boolean[] seen = new boolean[rank];
        for (int p : perm) {
            if (p < 0 || p >= rank || seen[p]) {
                throw new IllegalArgumentException("not a permutation of 0.." + (rank - 1));
            }
            seen[p] = true;
        }
    }
}
