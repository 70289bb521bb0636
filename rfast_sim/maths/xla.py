"""XLA compiler options of the jitted event loops (online and replay), and nothing else."""

from __future__ import annotations

import functools

import jax

# XLA:CPU hands row reductions to YNNPACK fusions, which run them in float64 at a fraction
# of the speed of its own loop fusions (the replay at d=10^4 took 1.6x as long with them)
_CPU_OPTIONS = {"xla_cpu_experimental_ynn_fusion_type": ""}


@functools.lru_cache(maxsize=1)
def compiler_options() -> dict[str, str]:
    """XLA options for the jitted event loops: those of `_CPU_OPTIONS` this jaxlib knows."""
    try:
        jax.jit(lambda x: x + 1, compiler_options=_CPU_OPTIONS).lower(1.0).compile()
    except Exception:  # an older jaxlib without the option: its defaults
        return {}
    return dict(_CPU_OPTIONS)
