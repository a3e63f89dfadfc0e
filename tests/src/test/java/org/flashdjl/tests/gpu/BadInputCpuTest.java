package org.flashdjl.tests.gpu;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.ParameterStore;

import org.flashdjl.engine.cache.SequenceKvStore;
import org.flashdjl.examples.llama.LlamaModel;
import org.flashdjl.ops.testing.Seeds;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The device-independent checks of {@link GpuBadInputTest} on the CPU ({@link BadInput}): bf16 refused by name,
 * out of pages, head dims without CUDA kernels under {@code auto}; and the model's device check, with a parameter
 * store whose manager is on another device than the weights (a manager for a device this machine lacks never
 * allocates an array here: the check refuses the call first).
 */
@ExtendWith(Seeds.class)
class BadInputCpuTest {

    @TempDir
    Path tmp;

    @Test
    void bf16IsRefusedByName() throws Exception {
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            BadInput.bf16IsRefusedByName(m, ModelCheck.write(tmp.resolve("ckpt"), 6));
        }
    }

    @Test
    void outOfPagesNamesTheNumbersAndChangesNothing() {
        BadInput.outOfPagesNamesTheNumbersAndChangesNothing(Device.cpu());
    }

    @Test
    void headDimsWithoutKernelsRunUnderAuto() {
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            BadInput.headDimsWithoutKernelsFallBackUnderAuto(m, Seeds.next());
        }
    }

    @Test
    void theModelRefusesAParameterStoreOnAnotherDevice() throws Exception {
        Device other = Device.of("mps", 0);
        try (NDManager m = NDManager.newBaseManager(Device.cpu());
                NDManager elsewhere = NDManager.newBaseManager(other)) {
            LlamaModel model = ModelCheck.load(ModelCheck.write(tmp.resolve("ckpt"), 5), m, DataType.FLOAT32);
            BadInput.assertRefused("forward, parameter store on " + other, () -> model.forward(
                    new ParameterStore(elsewhere, false), m.create(new long[] {256, 72}, new Shape(1, 2)), null,
                    false), "parameter store's manager on " + other, "weights are on " + Device.cpu());
            try (SequenceKvStore store = model.newPagedStore(4, 16)) {
                store.addSequence(0);
                BadInput.assertRefused("forwardPacked, parameter store on " + other, () -> model.forwardPacked(
                        new ParameterStore(elsewhere, false), m.create(new long[] {256, 72}), new long[] {0},
                        new int[] {2}, store), "parameter store's manager on " + other);
                assertEquals(0, store.length(0), "the store's sequence after the refused step: nothing reserved");
            }
        }
    }
}
