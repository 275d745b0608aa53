/**
 * Iteration-level continuous batching (DESIGN.md, "Scheduler"): {@link dev.lathe.core.sched.Scheduler}
 * picks each step's sequences and token counts under a token budget and a cap on running sequences,
 * preempts by recompute when the KV pool runs out, and builds the step's
 * {@link dev.lathe.core.backend.BatchPlan}.
 */
package dev.lathe.core.sched;
