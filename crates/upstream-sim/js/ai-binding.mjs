// Stand-in for the Workers `AI` binding under Miniflare: forwards
// `env.AI.run(model, inputs)` to the upstream simulator's
// `POST {simUrl}/_sim/ai-binding/{model}` and mirrors the binding's contract
// (workerd's src/cloudflare/internal/ai-api.ts): it resolves to the bare
// `result` object, or throws an `InferenceUpstreamError` whose message is
// `"<code>: <description>"` (e.g. "3040: Capacity temporarily exceeded, please
// try again.", "4006: you have used up your daily free allocation of 10,000
// neurons, …", "3007: Request timeout"); an error body that is not the
// simulator's JSON is thrown as its raw text, as workerd does.
//
// Miniflare wiring (wrappedBindings):
//   workers: [
//     { name: "ai-binding", modules: true, scriptPath: "crates/upstream-sim/js/ai-binding.mjs" },
//     { name: "processor", ..., wrappedBindings: {
//         AI: { scriptName: "ai-binding", bindings: { simUrl: "http://127.0.0.1:8788" } } } },
//   ]
// Optional binding `invocationId` is sent as `x-contribot-invocation`.

export class InferenceUpstreamError extends Error {
  constructor(message, name = "InferenceUpstreamError") {
    super(message);
    this.name = name;
  }
}

export class Ai {
  constructor(env = {}) {
    if (!env.simUrl) throw new Error("Ai binding stand-in needs env.simUrl");
    this.simUrl = String(env.simUrl).replace(/\/+$/, "");
    this.invocationId = env.invocationId;
  }

  async run(model, inputs, _options) {
    const headers = { "content-type": "application/json" };
    if (this.invocationId) headers["x-contribot-invocation"] = String(this.invocationId);
    const res = await fetch(`${this.simUrl}/_sim/ai-binding/${model}`, {
      method: "POST",
      headers,
      body: JSON.stringify(inputs ?? {}),
    });
    const text = await res.text();
    let body = null;
    try {
      body = JSON.parse(text);
    } catch {
      body = null;
    }
    if (!res.ok) {
      if (body?.error?.code === undefined) throw new InferenceUpstreamError(text || `${res.status}: ${res.statusText}`);
      throw new InferenceUpstreamError(`${body.error.code}: ${body.error.message}`);
    }
    if (body === null) {
      throw new Error(`3043: malformed response from the AI stand-in: ${text.slice(0, 200)}`);
    }
    return body;
  }
}

// Miniflare calls a wrapped binding's default export with the binding's env.
export default function (env) {
  return new Ai(env);
}
