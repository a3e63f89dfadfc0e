package org.flashdjl.tests.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;

import org.flashdjl.ops.cuda.DeviceDataType;
import org.flashdjl.ops.testing.Seeds;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.util.Random;

/** The host fp16/bf16 conversions (CPU; the GPU suite relies on them). */
@ExtendWith(Seeds.class)
class HostFloatsTest {

    @Test
    void everyHalfRoundTrips() {
        for (int bits = 0; bits < 0x10000; bits++) {
            short h = (short) bits;
            float f = HostFloats.halfToFloat(h);
            if (Float.isNaN(f)) {
                continue;
            }
            assertEquals(h, HostFloats.floatToHalf(f), "fp16 bits 0x" + Integer.toHexString(bits));
        }
        for (int bits = 0; bits < 0x10000; bits++) {
            float f = HostFloats.bf16ToFloat((short) bits);
            if (!Float.isNaN(f)) {
                assertEquals((short) bits, HostFloats.floatToBf16(f));
            }
        }
    }

    @Test
    void halfRoundingMatchesPyTorch() {
        Random rnd = new Random(Seeds.next());
        float[] x = new float[100_000];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) (rnd.nextGaussian() * Math.pow(2, rnd.nextInt(40) - 28));
        }
        x[0] = 65519f;
        x[1] = 65520f;
        x[2] = 1e-8f;
        x[3] = -0f;
        try (NDManager m = NDManager.newBaseManager();
                NDArray a = m.create(x)) {
            float[] torch = a.toType(DataType.FLOAT16, false).toType(DataType.FLOAT32, false).toFloatArray();
            for (int i = 0; i < x.length; i++) {
                assertEquals(torch[i], HostFloats.round(DeviceDataType.FP16, x[i]), "x = " + x[i]);
            }
        }
    }

    @Test
    void bf16RoundsToNearestEven() {
        assertEquals(1.0f, HostFloats.round(DeviceDataType.BF16, 1.00390625f)); // tie -> even
        assertEquals(1.0078125f, HostFloats.round(DeviceDataType.BF16, 1.0078125f));
        assertEquals(1.015625f, HostFloats.round(DeviceDataType.BF16, 1.01171875f)); // tie -> even (up)
        assertEquals(Float.POSITIVE_INFINITY, HostFloats.round(DeviceDataType.BF16, Float.MAX_VALUE));
    }
}
