// Bench-only consumer of the workers' queues (bench/cpu.mjs). In the CPU
// bench the product workers keep their real queue producers but have no
// consumers; this worker consumes every queue instead and hands each batch
// to the driver (POST to SINK_URL), which then invokes the real consumer
// itself, one invocation at a time, inside a CPU profile. It runs in its own
// isolate, so none of this is counted in the workers' CPU.
export default {
  async queue(batch, env) {
    const messages = batch.messages.map((m) => ({
      id: m.id,
      timestamp: m.timestamp.getTime(),
      attempts: m.attempts,
      body: m.body,
    }));
    const response = await fetch(env.SINK_URL, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ queue: batch.queue, messages }),
    });
    if (!response.ok) throw new Error(`sink ${env.SINK_URL}: HTTP ${response.status}`);
    batch.ackAll();
  },
};
