"""Which driver replays a batch of traces (``run.replay``): sequential, or waves of independent
events with their levels and layout, and why."""

from __future__ import annotations

import time as _time
from dataclasses import dataclass
from typing import Any

import jax

from rfast_sim.maths.layout import Schedule, Steps, WaveStats, wave_layout
from rfast_sim.maths.levels import access_masks, levels
from rfast_sim.maths.setup import Setup
from rfast_sim.maths.updates import run_keys

AUTO_MIN_NODES = 64  # auto: smaller networks replay sequentially without levelling
AUTO_EVENTS_PER_STEP = 64.0  # auto: waves where a step applies this many events on average
# auto on a CPU: sequential. Measured on 2 cores (benchmarks/bench_engine.py --waves): the
# levelling costs about what waves save (at d = 10 waves replay 3.5x faster, but levelling
# takes as long as the sequential replay); at d >= 100 an event's memory traffic, which waves
# do not reduce, dominates. Ask for waves (run.replay: waves) where many step sizes share one
# trace's levels.
AUTO_ON_CPU = False
WAVE_MAX_COMP = 4096  # the most computations / deliveries of one wave
WAVE_MAX_RECV = 1 << 16
WAVE_BYTES = 2e9  # the most bytes a wave's gathered channel rows may take
# a wave step's fixed cost and a delivery's, in computations (`layout.choose_widths`):
# measured on a 2-core CPU at n = 1,024, d = 100 (260 us, 0.1 us, 19 us); off the CPU a
# step's launch dominates (a guess: no GPU was measured)
WAVE_STEP_COST = {"cpu": 14.0}
WAVE_RECV_COST = 0.005


@dataclass(frozen=True)
class ReplayPlan:
    """Which driver replays a batch of traces and why; for waves, their layout."""

    driver: str  # "sequential" or "waves"
    why: str
    sched: Any = None  # WaveSchedule, WaveSteps per run, WaveStats (waves only)
    steps: Any = None
    stats: WaveStats | None = None
    levels_s: float = 0.0

    def summary(self) -> dict[str, Any]:
        """What summary.json records: the driver, why, levels and wave widths."""
        out: dict[str, Any] = {"driver": self.driver, "reason": self.why}
        if self.stats is not None:
            st = self.stats
            out.update(levels=st.levels, steps=st.steps, mean_wave_width=st.mean_width,
                       events_per_step=st.events / max(st.steps, 1),
                       wave_width={"compute": st.comp_width, "deliver": st.recv_width},
                       levels_s=self.levels_s)
        return out


def plan_replay(setup: Setup, sched: Schedule, steps: list[Steps], slots: int) -> ReplayPlan:
    """``run.replay``: sequential, waves, or auto: waves where a step would apply at least
    `AUTO_EVENTS_PER_STEP` events on average (networks of `AUTO_MIN_NODES` nodes or more,
    off the CPU: see `AUTO_ON_CPU`); never for per-round algorithms, whose rounds are one
    event per step."""
    alg, choice = setup.algorithm, setup.plan.run.replay
    if alg.per_round:
        return ReplayPlan("sequential", "per-round algorithm: one round per step")
    if choice == "sequential":
        return ReplayPlan("sequential", "run.replay: sequential")
    if choice == "auto" and setup.channels.n < AUTO_MIN_NODES:
        return ReplayPlan("sequential", f"auto: under {AUTO_MIN_NODES} nodes")
    if choice == "auto" and jax.default_backend() == "cpu" and not AUTO_ON_CPU:
        return ReplayPlan("sequential", "auto: on a CPU the levelling costs about what waves "
                          "save")
    t0 = _time.perf_counter()
    env = setup.env(0.0)
    shapes = jax.eval_shape(alg.init, env, run_keys(setup.seed)[0])
    masks = access_masks(alg, shapes.nodes._fields, shapes.chans._fields)
    ch = setup.channels
    lv = [levels(sched, st, ch.in_ch, ch.out_ch, ch.src, ch.dst, masks, slots, alg.supersedes)
          for st in steps]
    d, kin, kout = setup.ops.dim, ch.in_ch.shape[1], ch.out_ch.shape[1]
    per_comp = 8 * d * (kin + kout) * max(len(shapes.chans._fields), 1) + 8 * d * kout
    wsched, wsteps, stats = wave_layout(
        sched, steps, lv, min(WAVE_MAX_COMP, max(1, int(WAVE_BYTES // per_comp))), WAVE_MAX_RECV,
        WAVE_STEP_COST.get(jax.default_backend(), 1000.0), WAVE_RECV_COST)
    per_step = stats.events / max(stats.steps, 1)
    if choice == "auto" and per_step < AUTO_EVENTS_PER_STEP:
        return ReplayPlan("sequential", f"auto: {per_step:.1f} events per wave, under "
                          f"{AUTO_EVENTS_PER_STEP:g}")
    why = "run.replay: waves" if choice == "waves" else f"auto: {per_step:.1f} events per wave"
    return ReplayPlan("waves", why, wsched, wsteps, stats, _time.perf_counter() - t0)
