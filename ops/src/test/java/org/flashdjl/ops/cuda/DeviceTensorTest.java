package org.flashdjl.ops.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import com.sun.jna.Pointer;

import org.flashdjl.ops.testing.Seeds;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.util.Random;

/**
 * The NDArray to device-view path on CPU tensors (the GPU machines cannot run DJL's JNI): the address is the
 * tensor's data, a slice is base + offset, non-contiguous and unsupported inputs are refused with clear messages.
 */
@ExtendWith(Seeds.class)
class DeviceTensorTest {

    private static NDManager manager;

    @BeforeAll
    static void setUp() {
        manager = NDManager.newBaseManager();
    }

    @AfterAll
    static void tearDown() {
        manager.close();
    }

    private static float[] random(int n) {
        Random rnd = new Random(Seeds.next());
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) rnd.nextGaussian();
        }
        return x;
    }

    @Test
    void addressHoldsTheTensorsData() {
        float[] data = random(4 * 3 * 8);
        try (NDArray a = manager.create(data, new Shape(4, 3, 8))) {
            DeviceTensor t = DeviceTensor.fromNDArray(a);
            assertEquals(DeviceDataType.FP32, t.getDataType());
            assertEquals(-1, t.getDevice());
            assertArrayEquals(new long[] {4, 3, 8}, t.getShape());
            assertArrayEquals(new long[] {24, 8, 1}, t.getStrides());
            assertTrue(t.isContiguous());
            float[] read = new Pointer(t.getAddress()).getFloatArray(0, data.length);
            assertArrayEquals(data, read);
        }
    }

    @Test
    void float16AndInt32Views() {
        float[] data = random(64);
        try (NDArray a = manager.create(data).toType(DataType.FLOAT16, false);
                NDArray i = manager.create(new int[] {0, 17, 17, 130})) {
            DeviceTensor t = DeviceTensor.fromNDArray(a);
            assertEquals(DeviceDataType.FP16, t.getDataType());
            short[] bits = new Pointer(t.getAddress()).getShortArray(0, 64);
            float[] expected = a.toType(DataType.FLOAT32, false).toFloatArray();
            for (int k = 0; k < 64; k++) {
                assertEquals(expected[k], halfToFloat(bits[k]), 0.0, "element " + k);
            }
            DeviceTensor ti = DeviceTensor.fromNDArray(i);
            assertEquals(DeviceDataType.INT32, ti.getDataType());
            assertArrayEquals(new int[] {0, 17, 17, 130}, new Pointer(ti.getAddress()).getIntArray(0, 4));
        }
    }

    private static float halfToFloat(short h) {
        int bits = h & 0xffff;
        int sign = (bits >>> 15) << 31;
        int exp = (bits >>> 10) & 0x1f;
        int mant = bits & 0x3ff;
        if (exp == 0) {
            return (sign != 0 ? -1 : 1) * mant * 0x1p-24f;
        }
        if (exp == 31) {
            return Float.intBitsToFloat(sign | 0x7f800000 | (mant << 13));
        }
        return Float.intBitsToFloat(sign | ((exp + 112) << 23) | (mant << 13));
    }

    @Test
    void sliceIsBasePlusOffset() {
        float[] data = random(6 * 16);
        try (NDArray a = manager.create(data, new Shape(6, 16));
                NDArray s = a.get("2:")) {
            DeviceTensor base = DeviceTensor.fromNDArray(a);
            DeviceTensor view = DeviceTensor.fromNDArray(s);
            assertEquals(base.getAddress() + 2 * 16 * 4, view.getAddress());
            assertArrayEquals(new long[] {4, 16}, view.getShape());
            assertEquals(base.slice(0, 2, 6).getAddress(), view.getAddress());
            float[] read = new Pointer(view.getAddress()).getFloatArray(0, 4 * 16);
            for (int k = 0; k < read.length; k++) {
                assertEquals(data[2 * 16 + k], read[k]);
            }
        }
    }

    @Test
    void nonContiguousInputIsRefused() {
        try (NDArray a = manager.create(random(8 * 16), new Shape(8, 16));
                NDArray t = a.transpose()) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> DeviceTensor.fromNDArray(t));
            assertTrue(e.getMessage().contains("is not contiguous"), e.getMessage());
        }
    }

    @Test
    void unsupportedDtypeIsRefused() {
        try (NDArray a = manager.create(new boolean[] {true, false, true})) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> DeviceTensor.fromNDArray(a));
            assertTrue(e.getMessage().contains("has no device view; allowed: float16, float32, float64"),
                    e.getMessage());
        }
    }

    @Test
    void emptyTensorHasNoAddress() {
        try (NDArray a = manager.zeros(new Shape(0, 4))) {
            DeviceTensor t = DeviceTensor.fromNDArray(a);
            assertEquals(0, t.getAddress());
            assertEquals(0, t.numel());
        }
    }

    @Test
    void rawViewsPermuteAndSlice() {
        // bshd memory [B=2, L=5, H=3, D=8] seen as bhsd
        long[] shape = {2, 5, 3, 8};
        DeviceTensor bshd = DeviceTensor.fromDevicePointer(0x1000, shape, DeviceTensor.contiguousStrides(shape),
                DeviceDataType.BF16, 0);
        DeviceTensor bhsd = bshd.permute(0, 2, 1, 3);
        assertArrayEquals(new long[] {2, 3, 5, 8}, bhsd.getShape());
        assertArrayEquals(new long[] {120, 8, 24, 1}, bhsd.getStrides());
        assertFalse(bhsd.isContiguous());
        assertEquals(0x1000 + 24 * 2 * 2, bhsd.slice(2, 2, 5).getAddress());
        assertThrows(IllegalArgumentException.class, () -> bhsd.permute(0, 1, 1, 3));
        assertThrows(IllegalArgumentException.class, () -> DeviceTensor.fromDevicePointer(0, shape,
                DeviceTensor.contiguousStrides(shape), DeviceDataType.FP16, 0));
    }
}
