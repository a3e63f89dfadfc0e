package org.flashdjl.tests.gpu;

import org.flashdjl.ops.cuda.DeviceDataType;

/**
 * Host conversions between float and the 16-bit device formats (fp16 and bf16, round to nearest even), so the GPU
 * suite and benchmark fill and read device memory from Java without DJL.
 */
public final class HostFloats {

    /** An fp16 quiet NaN (poisons outputs). */
    public static final short FP16_NAN = (short) 0x7e00;

    /** A bf16 quiet NaN (poisons outputs). */
    public static final short BF16_NAN = (short) 0x7fc0;

    private HostFloats() {}

    /**
     * Rounds a float to fp16 bits (round to nearest even; overflow to infinity; NaN stays NaN).
     *
     * @param f the value
     * @return the fp16 bits
     */
    public static short floatToHalf(float f) {
        int x = Float.floatToRawIntBits(f);
        int sign = (x >>> 16) & 0x8000;
        int abs = x & 0x7fffffff;
        if (abs > 0x7f800000) {
            return (short) (sign | 0x7e00);
        }
        if (abs >= 0x47800000) { // >= 65536 (and inf): infinity
            return (short) (sign | 0x7c00);
        }
        if (abs < 0x38800000) { // below 2^-14: subnormal (or zero); v * 2^24 is exact
            return (short) (sign | (int) Math.rint(Float.intBitsToFloat(abs) * 0x1p24));
        }
        int h = ((((abs >>> 23) - 112) << 10) | ((abs >>> 13) & 0x3ff));
        int rem = abs & 0x1fff;
        if (rem > 0x1000 || (rem == 0x1000 && (h & 1) != 0)) {
            h++; // may carry into the exponent, up to infinity: correct
        }
        return (short) (sign | h);
    }

    /**
     * Widens fp16 bits to a float (exact).
     *
     * @param h the fp16 bits
     * @return the value
     */
    public static float halfToFloat(short h) {
        int bits = h & 0xffff;
        int sign = (bits & 0x8000) << 16;
        int exp = (bits >>> 10) & 0x1f;
        int mant = bits & 0x3ff;
        if (exp == 0) {
            float v = mant * 0x1p-24f;
            return sign != 0 ? -v : v;
        }
        if (exp == 31) {
            return Float.intBitsToFloat(sign | 0x7f800000 | (mant << 13));
        }
        return Float.intBitsToFloat(sign | ((exp + 112) << 23) | (mant << 13));
    }

    /**
     * Rounds a float to bf16 bits (round to nearest even; NaN stays NaN).
     *
     * @param f the value
     * @return the bf16 bits
     */
    public static short floatToBf16(float f) {
        int x = Float.floatToRawIntBits(f);
        if ((x & 0x7fffffff) > 0x7f800000) {
            return (short) ((x >>> 16) | 0x40);
        }
        x += 0x7fff + ((x >>> 16) & 1);
        return (short) (x >>> 16);
    }

    /**
     * Widens bf16 bits to a float (exact).
     *
     * @param b the bf16 bits
     * @return the value
     */
    public static float bf16ToFloat(short b) {
        return Float.intBitsToFloat((b & 0xffff) << 16);
    }

    /**
     * Rounds a float to a 16-bit device dtype's bits.
     *
     * @param type {@link DeviceDataType#FP16} or {@link DeviceDataType#BF16}
     * @param f the value
     * @return the bits
     */
    public static short toBits(DeviceDataType type, float f) {
        return type == DeviceDataType.BF16 ? floatToBf16(f) : floatToHalf(check(type, f));
    }

    /**
     * Widens a 16-bit device dtype's bits.
     *
     * @param type {@link DeviceDataType#FP16} or {@link DeviceDataType#BF16}
     * @param bits the bits
     * @return the value
     */
    public static float fromBits(DeviceDataType type, short bits) {
        return type == DeviceDataType.BF16 ? bf16ToFloat(bits) : halfToFloat(bits);
    }

    /**
     * Rounds a value through a 16-bit dtype.
     *
     * @param type the dtype
     * @param f the value
     * @return the nearest representable value
     */
    public static float round(DeviceDataType type, float f) {
        return fromBits(type, toBits(type, f));
    }

    /**
     * Converts an array to bits.
     *
     * @param type the dtype
     * @param x the values
     * @return the bits
     */
    public static short[] toBits(DeviceDataType type, float[] x) {
        short[] s = new short[x.length];
        for (int i = 0; i < x.length; i++) {
            s[i] = toBits(type, x[i]);
        }
        return s;
    }

    /**
     * Converts bits to floats.
     *
     * @param type the dtype
     * @param bits the bits
     * @return the values
     */
    public static float[] fromBits(DeviceDataType type, short[] bits) {
        float[] x = new float[bits.length];
        for (int i = 0; i < bits.length; i++) {
            x[i] = fromBits(type, bits[i]);
        }
        return x;
    }

    /**
     * Rounds every value through a dtype, in place.
     *
     * @param type the dtype
     * @param x the values
     * @return {@code x}
     */
    public static float[] roundInPlace(DeviceDataType type, float[] x) {
        for (int i = 0; i < x.length; i++) {
            x[i] = round(type, x[i]);
        }
        return x;
    }

    /**
     * Returns the NaN bits of a 16-bit dtype.
     *
     * @param type the dtype
     * @return the NaN pattern
     */
    public static short nan(DeviceDataType type) {
        return type == DeviceDataType.BF16 ? BF16_NAN : FP16_NAN;
    }

    private static float check(DeviceDataType type, float f) {
        if (type != DeviceDataType.FP16 && type != DeviceDataType.BF16) {
            throw new IllegalArgumentException("16-bit dtypes only (fp16, bf16), got " + type);
        }
        return f;
    }
}
