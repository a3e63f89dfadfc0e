package org.flashdjl.tests.gpu;

import com.sun.jna.Memory;

import jcuda.Pointer;

import org.flashdjl.ops.cuda.CudaRuntime;
import org.flashdjl.ops.cuda.DeviceBuffer;
import org.flashdjl.ops.cuda.DeviceDataType;
import org.flashdjl.ops.cuda.DeviceTensor;
import org.flashdjl.ops.cuda.FlashAttention;

/**
 * Where {@link GpuCheck} runs a case: on the GPU ({@link #GPU}: JCuda memory and the real kernels) or on the CPU
 * ({@link #EMULATOR}: host memory and {@link KernelEmulator} behind {@link FlashAttention}'s launcher seam, following
 * the kernels' ABI contract), so the whole test path (parameter packing, uploaded offsets and slopes, layouts, NaN
 * poisoning, reference plumbing) runs in CI too.
 */
interface TestMemory {

    /** A buffer of this memory. */
    interface Buf extends AutoCloseable {
        /** @return the address of byte 0 */
        long address();

        /** @return a contiguous view with device ordinal {@link GpuCheck#DEVICE} */
        default DeviceTensor view(DeviceDataType type, long... shape) {
            return DeviceTensor.fromDevicePointer(address(), shape, DeviceTensor.contiguousStrides(shape), type,
                    GpuCheck.DEVICE);
        }

        void upload(short[] bits);

        void fill16(short bits);

        void fill32(int bits);

        void download(short[] dst);

        void download(int[] dst);

        @Override
        void close();
    }

    Buf allocate(long bytes);

    /**
     * Runs a built call (nothing else: what the kernel reads comes from the call's own launch preparation).
     *
     * @param call the call
     */
    void launch(FlashAttention call);

    /** JCuda device memory and the real kernels. */
    TestMemory GPU = new TestMemory() {
        @Override
        public Buf allocate(long bytes) {
            DeviceBuffer b = DeviceBuffer.allocate(GpuCheck.DEVICE, bytes);
            return new Buf() {
                @Override
                public long address() {
                    return b.getAddress();
                }

                @Override
                public void upload(short[] bits) {
                    b.copyFromHost(Pointer.to(bits), 0, 2L * bits.length);
                }

                @Override
                public void fill16(short bits) {
                    b.fill16(bits);
                }

                @Override
                public void fill32(int bits) {
                    b.fill32(bits);
                }

                @Override
                public void download(short[] dst) {
                    b.copyToHost(Pointer.to(dst), 0, 2L * dst.length);
                }

                @Override
                public void download(int[] dst) {
                    b.copyToHost(Pointer.to(dst), 0, 4L * dst.length);
                }

                @Override
                public void close() {
                    b.close();
                }
            };
        }

        @Override
        public void launch(FlashAttention call) {
            CudaRuntime.bind(GpuCheck.DEVICE);
            call.run();
        }
    };

    /** Host memory (16-byte aligned) and the Java emulation of the kernels. */
    TestMemory EMULATOR = new TestMemory() {
        @Override
        public Buf allocate(long bytes) {
            Memory m = new Memory(Math.max(1, bytes) + 64);
            com.sun.jna.Pointer p = m.align(64);
            KernelEmulator.register(com.sun.jna.Pointer.nativeValue(p), bytes);
            return new Buf() {
                @Override
                public long address() {
                    return com.sun.jna.Pointer.nativeValue(p);
                }

                @Override
                public void upload(short[] bits) {
                    p.write(0, bits, 0, bits.length);
                }

                @Override
                public void fill16(short bits) {
                    for (long i = 0; i < bytes / 2; i++) {
                        p.setShort(2 * i, bits);
                    }
                }

                @Override
                public void fill32(int bits) {
                    for (long i = 0; i < bytes / 4; i++) {
                        p.setInt(4 * i, bits);
                    }
                }

                @Override
                public void download(short[] dst) {
                    p.read(0, dst, 0, dst.length);
                }

                @Override
                public void download(int[] dst) {
                    p.read(0, dst, 0, dst.length);
                }

                @Override
                public void close() {
                    KernelEmulator.unregister(com.sun.jna.Pointer.nativeValue(p));
                    m.close();
                }
            };
        }

        @Override
        public void launch(FlashAttention call) {
            KernelEmulator.run(call, KernelEmulator.INSTANCE);
        }
    };
}
