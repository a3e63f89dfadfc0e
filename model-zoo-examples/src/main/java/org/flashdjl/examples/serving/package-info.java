/**
 * DJL Serving integration: a self-contained model directory ({@link org.flashdjl.examples.serving.ServingModelDir}:
 * {@code serving.properties}, {@code libs/}, {@code config.json}, {@code *.safetensors}, optional {@code
 * tokenizer.json}, a README) that DJL's {@code Criteria} and DJL Serving load with only DJL on their class path,
 * and its handler {@link org.flashdjl.examples.serving.LlamaServingTranslator}: requests ({@link
 * org.flashdjl.examples.serving.ServingRequest}) from every worker thread join one rolling batch per model and
 * device ({@link org.flashdjl.examples.generate.RollingBatchScheduler}), answers whole or streamed ({@link
 * org.flashdjl.examples.serving.TokenStream}); limits in {@link org.flashdjl.examples.serving.ServingConfig}.
 */
package org.flashdjl.examples.serving;
