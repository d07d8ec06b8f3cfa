"""Scale-out on Ray: `synthc run --ray [ADDRESS]`.

Each Ray worker holds one engine and evaluates batches of attempts (sample, prompt, generate,
validate, derive, check, judge). The driver keeps everything that needs a global view: the
journal, the dedup index across all shards, acceptance in attempt order, noise, quotas and the
output. So a Ray run writes exactly the records a single-process run writes with an engine
whose output depends on the request alone (the fake engine); with a batching engine (llama.cpp,
vLLM) a few records can differ, as its batches differ, and a single-process run served by the
Ray run's result cache writes the same records. It resumes the same way. A worker that dies is
replaced and its attempts are sent again: attempts are deterministic, so nothing is lost or
counted twice."""

from __future__ import annotations

from dataclasses import replace

from ..engines.base import EngineDead
from ..plan.model import Plan
from .attempts import Attempts
from .entries import Candidate
from .options import RunOptions

MAX_REPLACEMENTS_PER_WORKER = 3


class _Worker:
    """One Ray actor: an engine and the attempts it evaluates."""

    def __init__(self, plan_json: str, options: RunOptions):
        self.attempts = Attempts(Plan.from_json(plan_json), options)

    def attempt_batch(self, block_id: str, work: list[tuple[int, list[int]]]) -> list[list[Candidate]]:
        return self.attempts.run(block_id, work)

    def in_flight(self, model_name: str) -> int:
        return self.attempts.in_flight(model_name)

    def identity(self, model_name: str) -> dict:
        return self.attempts.identity(model_name)


class RayPool:
    """A Pool of Ray workers: the attempts are split across them and put back in order."""

    def __init__(self, plan: Plan, options: RunOptions):
        try:
            import ray
        except ImportError as exc:
            raise EngineDead("--ray needs Ray: install the `ray` extra (pip install -e '.[ray]')") from exc
        self.ray = ray
        if not ray.is_initialized():
            address = None if options.ray in ("", "local") else options.ray
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=False,
                         ignore_reinit_error=True, configure_logging=False)
            except Exception as exc:  # ray raises ConnectionError and others
                raise EngineDead(f"cannot reach the Ray cluster {address or '(local)'}: {exc}") from exc
        cpus = int(ray.cluster_resources().get("CPU", 1))
        n = options.workers or max(1, cpus)
        engine_options = options.engine_options
        if engine_options.threads is None:
            # one engine per CPU: each uses its share, not every core
            engine_options = replace(engine_options, threads=max(1, cpus // n))
        self.worker_options = replace(options, engine_options=engine_options)
        self.plan_json = plan.to_json()
        self.actor_class = ray.remote(num_cpus=max(1, cpus // n) if options.workers else 1, max_restarts=0)(_Worker)
        self.workers = [self._spawn() for _ in range(n)]
        self.replacements = 0
        self._engine_seconds = 0.0  # summed from the candidates: each worker times its own engine
        self._in_flight: dict[str, int] = {}

    def _spawn(self):
        return self.actor_class.remote(self.plan_json, self.worker_options)


    def identity(self, model_name: str) -> dict:
        return self.ray.get(self.workers[0].identity.remote(model_name))

    def in_flight(self, model_name: str) -> int:
        if model_name not in self._in_flight:
            self._in_flight[model_name] = self.ray.get(self.workers[0].in_flight.remote(model_name))
        return self._in_flight[model_name] * len(self.workers)

    def run(self, block_id: str, work: list[tuple[int, list[int]]]) -> list[list[Candidate]]:
        ray = self.ray
        from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError, RayTaskError

        items = [(ci, a) for ci, attempts in work for a in attempts]
        size = -(-len(items) // len(self.workers))
        shares = [_group(items[i:i + size]) for i in range(0, len(items), size)]
        pending = {self.workers[i].attempt_batch.remote(block_id, share): (i, share)
                   for i, share in enumerate(shares)}
        results: dict[tuple[int, int], Candidate] = {}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            ref = ready[0]
            index, share = pending.pop(ref)
            try:
                out = ray.get(ref)
            except (ActorDiedError, ActorUnavailableError, RayActorError) as exc:
                self.replacements += 1
                if self.replacements > MAX_REPLACEMENTS_PER_WORKER * len(self.workers):
                    raise EngineDead("Ray workers keep dying; the run stops here and resumes from its journal") from exc
                self.workers[index] = self._spawn()
                pending[self.workers[index].attempt_batch.remote(block_id, share)] = (index, share)
                continue
            except RayTaskError as exc:
                cause = exc.cause if getattr(exc, "cause", None) is not None else exc
                if isinstance(cause, Exception):
                    raise cause from None
                raise EngineDead(str(exc)) from None
            for (ci, attempts), candidates in zip(share, out):
                for attempt, candidate in zip(attempts, candidates):
                    results[(ci, attempt)] = candidate
                    if candidate.sent:  # a result served by the cache cost no engine time now
                        self._engine_seconds += candidate.seconds or 0.0
        return [[results[(ci, a)] for a in attempts] for ci, attempts in work]

    def engine_seconds(self) -> float:
        return self._engine_seconds

    def startup_seconds(self) -> float:
        return 0.0  # the workers load their engines in parallel with each other, inside the runs

    def close(self) -> None:
        for w in self.workers:
            try:
                self.ray.kill(w)
            except Exception:  # noqa: BLE001 - a worker already gone is fine at shutdown
                continue


def _group(items: list[tuple[int, int]]) -> list[tuple[int, list[int]]]:
    """(cell, attempt) pairs back into (cell, attempts) runs, in order."""
    out: list[tuple[int, list[int]]] = []
    for ci, a in items:
        if out and out[-1][0] == ci:
            out[-1][1].append(a)
        else:
            out.append((ci, [a]))
    return out
