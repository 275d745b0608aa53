/**
 * The batching engine: {@link dev.lathe.core.engine.Engine} (thread-safe, streaming handles,
 * offline {@code generate}) over {@link dev.lathe.core.engine.EngineCore} (one step = one forward
 * pass over the ragged batch, then one sample per sequence that caught up).
 */
package dev.lathe.core.engine;
