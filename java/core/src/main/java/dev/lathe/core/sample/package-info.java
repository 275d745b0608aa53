/**
 * Choosing tokens from logits. {@link dev.lathe.core.sample.SamplingParams} holds a request's
 * settings; {@link dev.lathe.core.sample.Sampler} applies penalties, top-k, temperature, top-p and
 * min-p and draws, reproducibly from a seed; {@link dev.lathe.core.sample.StopStringMatcher} cuts
 * the streamed text at stop strings; {@link dev.lathe.core.sample.Llama2cSampler} reproduces
 * llama2.c's run.c token for token, for golden tests against its outputs.
 */
package dev.lathe.core.sample;
