"""vLLM benchmarks, measured in one run on one machine with the embedded model prepared for
vLLM (`synthc prepare-vllm`), on the same prompts, seeds and max_tokens:

1. synthc on vLLM vs raw `LLM.chat` on the same requests: records/s ratio (target >= 0.9);
2. constrained vs unconstrained generation on vLLM: records/s and tokens/s.

    python bench/bench_vllm.py [--records 48] [--backend guidance]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

SPEC = """
dataset bench {{ seed 5 }}
model writer {{ engine vllm  name "smollm2-135m-instruct"  backend {backend}  temperature 0.8 }}
schema Ticket {{
  product: str ~ pick("mobile app", "web dashboard", "API", "desktop client")
  mood:    "calm" | "angry" | "confused" ~ uniform
  subject: str(8..60)
  body:    str(40..240)
}}
generate Ticket {{
  count {n}
  using writer
  prompt "Write one {{{{ mood }}}} customer support ticket about the {{{{ product }}}}."
}}
output "out" {{ format jsonl }}
"""


class Shared:
    def __init__(self, engine):
        self.engine, self.name, self.capabilities = engine, engine.name, engine.capabilities
        self.in_flight = engine.in_flight

    def generate(self, requests):
        return self.engine.generate(requests)

    def close(self):
        return None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=48)
    ap.add_argument("--backend", default="guidance")
    args = ap.parse_args()
    from synthlang.compiler import compile
    from synthlang.engines.base import EngineOptions
    from synthlang.engines.vllm_engine import VLLMEngine
    from synthlang.runtime.attempts import Attempts
    from synthlang.runtime.driver import run_plan
    from synthlang.runtime.options import RunOptions

    tmp = Path(tempfile.mkdtemp())
    (tmp / "bench.synth").write_text(SPEC.format(n=args.records, backend=args.backend))
    plan = compile(tmp / "bench.synth").plan
    block = plan.blocks[0]
    model = plan.models["writer"]
    start = time.perf_counter()
    engine = VLLMEngine(model, EngineOptions())
    print(f"vLLM start-up: {time.perf_counter() - start:.1f} s (backend {args.backend})")

    # the exact requests synthc makes for attempts 0..n-1
    prep = Attempts(plan, RunOptions(out_dir=tmp / "unused"))
    requests = [prep.prepare(block, 0, a)[2] for a in range(args.records)]
    engine.generate(requests[:2])  # warm-up

    def raw(constrained: bool):
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        params = [SamplingParams(max_tokens=r.max_tokens, temperature=r.temperature, top_p=r.top_p,
                                 seed=r.seed % (2**63),
                                 structured_outputs=StructuredOutputsParams(json=r.json_schema,
                                                                            disable_any_whitespace=True)
                                 if constrained else None) for r in requests]
        t = time.perf_counter()
        outs = engine.llm.chat([list(r.messages) for r in requests], sampling_params=params, use_tqdm=False)
        secs = time.perf_counter() - t
        tokens = sum(len(o.outputs[0].token_ids) for o in outs)
        valid = 0
        for o in outs:
            try:
                json.loads(o.outputs[0].text)
                valid += 1
            except json.JSONDecodeError:
                pass
        return secs, tokens, valid

    u_secs, u_tokens, u_valid = raw(False)
    c_secs, c_tokens, c_valid = raw(True)

    run_plan(plan, RunOptions(out_dir=tmp / "out", batch=args.records, progress=False,
                              engine_factory=lambda m: Shared(engine)))
    manifest = json.loads((tmp / "out/manifest.json").read_text())
    s_secs = manifest["wall_seconds"] - manifest["startup_seconds"]
    attempts = manifest["blocks"]["Ticket"]["attempts"]
    n = args.records
    print(f"{n} ticket prompts, SmolLM2-135M on vLLM (CPU build), same seeds and max_tokens {block.max_tokens}")
    print(f"  raw LLM.chat unconstrained: {n / u_secs:.2f} req/s, {u_tokens / u_secs:.1f} tok/s, {u_valid}/{n} parse as JSON")
    print(f"  raw LLM.chat constrained:   {n / c_secs:.2f} req/s, {c_tokens / c_secs:.1f} tok/s, {c_valid}/{n} parse as JSON")
    print(f"  synthc run on vLLM:         {attempts / s_secs:.2f} attempts/s ({attempts} attempts, "
          f"{manifest['blocks']['Ticket']['accepted']} records, after start-up and probes)")
    print(f"  ratio synthc / raw constrained (attempts/s): {(attempts / s_secs) / (n / c_secs):.2f} (target >= 0.9)")
    print(f"  ratio constrained / unconstrained: {(n / c_secs) / (n / u_secs):.2f} records/s, "
          f"{(c_tokens / c_secs) / (u_tokens / u_secs):.2f} tokens/s")


if __name__ == "__main__":
    main()
