"""Plain-numpy oracles of the baselines, written from ALGORITHM.md, replaying a recorded trace.

Each replays an :class:`~rfast_sim.timing.engine.EventTrace` event by event with exact least-squares
gradients. They share nothing with the JAX algorithms but the trace's meaning (a compute event
of node i sends a packet in each of its ``out_slots``; a delivery hands the packet of ``slot``
to the receiver of ``channel``; ``seq`` orders the packets of one channel) and the weight
rules of ALGORITHM.md, which they derive from the channel lists themselves (R: uniform over
in-neighbours and self, C: uniform over out-neighbours and self, Metropolis on the gossip
graph), per phase of time-varying graphs (the channels ``phase_active`` in that phase).

They live in the tests, not in the package: nothing but the tests needs them (R-FAST's own
reference stays in ``rfast_sim/maths/reference.py`` because the engine benchmark uses it).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from rfast_sim.timing import engine
from rfast_sim.timing.topology import ROLE_GOSSIP, ROLE_PULL, ROLE_PUSH, Channels

Grad = Callable[[int, np.ndarray], np.ndarray]


class Weights:
    """One phase's weights, from degrees: w[c] for channel c, self_w[i] for node i."""

    def __init__(self, ch: Channels, active: np.ndarray, role: int) -> None:
        n = ch.n
        mine = np.flatnonzero((ch.role == role) & active)
        indeg = np.bincount(ch.dst[mine], minlength=n)
        outdeg = np.bincount(ch.src[mine], minlength=n)
        self.w = np.zeros(ch.num)
        if role == ROLE_PULL:  # r_ij = 1 / (|N_R_in(i)| + 1), i the receiver
            self.w[mine] = 1.0 / (indeg[ch.dst[mine]] + 1)
            self.self_w = 1.0 / (indeg + 1)
        elif role == ROLE_PUSH:  # c_ji = 1 / (|N_C_out(i)| + 1), i the sender
            self.w[mine] = 1.0 / (outdeg[ch.src[mine]] + 1)
            self.self_w = 1.0 / (outdeg + 1)
        else:  # Metropolis: w_ij = 1 / (1 + max(deg_i, deg_j)), w_ii = 1 - sum_j w_ij
            deg = outdeg
            self.w[mine] = 1.0 / (1 + np.maximum(deg[ch.src[mine]], deg[ch.dst[mine]]))
            self.self_w = 1.0 - np.array([self.w[mine][ch.dst[mine] == i].sum()
                                          for i in range(n)])


class TraceOracle:
    """The event loop: packets in flight by slot, newest sequence number per channel."""

    roles: tuple[int, ...] = ()

    def __init__(self, ch: Channels, x0: np.ndarray, step_size: float, grad: Grad) -> None:
        self.ch, self.x0, self.gamma, self.grad = ch, x0.copy(), step_size, grad
        self.n, self.dim = ch.n, len(x0)
        phases = ch.phase_active.shape[0]
        self.weights = [{r: Weights(ch, ch.phase_active[p], r) for r in self.roles}
                        for p in range(phases)]
        self.in_flight: dict[int, np.ndarray] = {}
        self.newest = -np.ones(ch.num, dtype=np.int64)
        self.computations = np.zeros(self.n, dtype=np.int64)

    def ins(self, i: int, role: int) -> list[int]:
        return [c for c in range(self.ch.num) if self.ch.dst[c] == i and self.ch.role[c] == role]

    def replay(self, trace: engine.EventTrace) -> None:
        ch = self.ch
        for e in range(len(trace)):
            kind, i = int(trace.kind[e]), int(trace.node[e])
            if kind == engine.COMPUTE:
                payloads = self.compute(i, self.weights[int(trace.phase[e])])
                self.computations[i] += 1
                for k, c in enumerate(ch.out_ch[i]):
                    slot = int(trace.out_slots[e, k])
                    if c >= 0 and slot >= 0:
                        self.in_flight[slot] = payloads[int(c)].copy()
            elif kind == engine.DELIVER:
                c, seq = int(trace.channel[e]), int(trace.seq[e])
                fresh = seq > self.newest[c]
                self.newest[c] = max(self.newest[c], seq)
                self.receive(c, self.in_flight.pop(int(trace.slot[e])), bool(fresh))
            elif kind == engine.RESET:  # rejoin: reset
                self.reset(i)
            # DROP: the packet never arrives (its slot is reused by a later send); ROUND,
            # SAMPLE: no per-node math

    def compute(self, i: int, w: dict[int, Weights]) -> dict[int, np.ndarray]:
        raise NotImplementedError

    def receive(self, c: int, payload: np.ndarray, fresh: bool) -> None:
        raise NotImplementedError

    def reset(self, i: int) -> None:
        """Node i restarts from its initial state and forgets what it received."""
        raise NotImplementedError


class DPSGDOracle(TraceOracle):
    """D-PSGD, x_i^{k+1} = sum_j w_ij x_j^k - gamma g_i(x_i^k): node i's k-th computation
    (k = 0, 1, ...) forms x_i^k from the round-(k-1) models it holds and sends x_i^k."""

    roles = (ROLE_GOSSIP,)

    def __init__(self, ch: Channels, x0: np.ndarray, step_size: float, grad: Grad) -> None:
        super().__init__(ch, x0, step_size, grad)
        self.x = np.tile(x0, (self.n, 1))
        self.g: list[np.ndarray | None] = [None] * self.n
        self.held = np.tile(x0, (ch.num, 1))  # newest model received on each channel
        self.gossip_in = [self.ins(i, ROLE_GOSSIP) for i in range(self.n)]

    def compute(self, i: int, w: dict[int, Weights]) -> dict[int, np.ndarray]:
        # the update rule from any state, the initial one included (no gradient yet, every
        # buffer x0: round 0 sends x^0; after a reset the node mixes what arrived since)
        gw, g = w[ROLE_GOSSIP], self.g[i]
        mixed = gw.self_w[i] * self.x[i] + sum(gw.w[c] * self.held[c] for c in self.gossip_in[i])
        self.x[i] = mixed - (self.gamma * g if g is not None else 0.0)
        self.g[i] = self.grad(i, self.x[i])
        return {int(c): self.x[i] for c in self.ch.out_ch[i] if c >= 0}

    def receive(self, c: int, payload: np.ndarray, fresh: bool) -> None:
        if fresh:
            self.held[c] = payload

    def reset(self, i: int) -> None:
        self.x[i], self.g[i] = self.x0, None
        self.held[self.gossip_in[i]] = self.x0


def dpsgd_lock_step(W: np.ndarray, x0: np.ndarray, step_size: float, grad: Grad,
                    rounds: int) -> list[np.ndarray]:
    """X^0..X^rounds of X^{k+1} = W X^k - gamma G(X^k), the synchronous recursion itself."""
    n = W.shape[0]
    xs = [np.tile(x0, (n, 1))]
    for _ in range(rounds):
        x = xs[-1]
        xs.append(W @ x - step_size * np.stack([grad(i, x[i]) for i in range(n)]))
    return xs


class ADPSGDOracle(TraceOracle):
    """AD-PSGD: node i's gradient is taken at the model it held when the computation began
    (it computes back to back: its model right after its previous computation) and applied
    to its current model when the computation ends; it then asks one neighbour j to average,
    and when the request arrives both take (x_i + x_j) / 2 at once (a lost request: no
    averaging). This is the package's convention (adapt, then combine as the request lands);
    ALGORITHM.md's sentence lists the averaging before the gradient step."""

    roles = ()

    def __init__(self, ch: Channels, x0: np.ndarray, step_size: float, grad: Grad) -> None:
        super().__init__(ch, x0, step_size, grad)
        self.x = np.tile(x0, (self.n, 1))
        self.read = np.tile(x0, (self.n, 1))  # the model each running computation read

    def compute(self, i: int, w: dict[int, Weights]) -> dict[int, np.ndarray]:
        self.x[i] = self.x[i] - self.gamma * self.grad(i, self.read[i])
        self.read[i] = self.x[i]  # the next computation starts now
        return {int(c): np.zeros(1) for c in self.ch.out_ch[i] if c >= 0}

    def receive(self, c: int, payload: np.ndarray, fresh: bool) -> None:
        a, b = int(self.ch.src[c]), int(self.ch.dst[c])
        self.x[a] = self.x[b] = 0.5 * (self.x[a] + self.x[b])

    def reset(self, i: int) -> None:
        self.x[i] = self.read[i] = self.x0


class OSGPOracle(TraceOracle):
    """Push-sum SGD: node i keeps (x_i, w_i), steps on x_i / w_i, keeps c_ii (x_i, w_i) and
    sends c_ji (x_i, w_i) to each out-neighbour j; every packet that arrives is added."""

    roles = (ROLE_PUSH,)

    def __init__(self, ch: Channels, x0: np.ndarray, step_size: float, grad: Grad) -> None:
        super().__init__(ch, x0, step_size, grad)
        self.x = np.tile(x0, (self.n, 1))
        self.w = np.ones(self.n)

    def compute(self, i: int, w: dict[int, Weights]) -> dict[int, np.ndarray]:
        cw = w[ROLE_PUSH]
        x = self.x[i] - self.gamma * self.grad(i, self.x[i] / self.w[i])
        sends = {int(c): cw.w[c] * np.append(x, self.w[i]) for c in self.ch.out_ch[i]
                 if c >= 0}
        self.x[i], self.w[i] = cw.self_w[i] * x, cw.self_w[i] * self.w[i]
        return sends

    def receive(self, c: int, payload: np.ndarray, fresh: bool) -> None:
        j = int(self.ch.dst[c])
        self.x[j] += payload[:-1]
        self.w[j] += payload[-1]

    def reset(self, i: int) -> None:
        self.x[i], self.w[i] = self.x0, 1.0

    def models(self) -> np.ndarray:
        return self.x / self.w[:, None]


class NonRobustTrackingOracle(TraceOracle):
    """R-FAST's descend, pull, absorb, track, push, but each G_C packet carries only the new
    mass c_ji z_i; the receiver adds up every packet that arrives (stale or not) and absorbs
    the total at its next computation. Pulled parameters: the newest v_j by sequence number."""

    roles = (ROLE_PULL, ROLE_PUSH)

    def __init__(self, ch: Channels, x0: np.ndarray, step_size: float, grad: Grad) -> None:
        super().__init__(ch, x0, step_size, grad)
        n = self.n
        self.x = np.tile(x0, (n, 1))
        self.g = np.stack([grad(i, x0) for i in range(n)])
        self.z = self.g.copy()
        self.v = np.tile(x0, (ch.num, 1))  # newest v_j per G_R channel
        self.inbox = np.zeros((ch.num, self.dim))  # G_C mass arrived, not yet absorbed
        self.pull_in = [self.ins(i, ROLE_PULL) for i in range(n)]
        self.push_in = [self.ins(i, ROLE_PUSH) for i in range(n)]

    def compute(self, i: int, w: dict[int, Weights]) -> dict[int, np.ndarray]:
        rw, cw = w[ROLE_PULL], w[ROLE_PUSH]
        v = self.x[i] - self.gamma * self.z[i]
        self.x[i] = rw.self_w[i] * v + sum(rw.w[c] * self.v[c] for c in self.pull_in[i])
        for c in self.push_in[i]:
            self.z[i] += self.inbox[c]
            self.inbox[c] = 0.0
        g_new = self.grad(i, self.x[i])
        self.z[i] += g_new - self.g[i]
        self.g[i] = g_new
        sends = {}
        for c in self.ch.out_ch[i]:
            if c >= 0:
                sends[int(c)] = v if self.ch.role[c] == ROLE_PULL else cw.w[c] * self.z[i]
        self.z[i] = cw.self_w[i] * self.z[i]
        return sends

    def receive(self, c: int, payload: np.ndarray, fresh: bool) -> None:
        if self.ch.role[c] == ROLE_PUSH:
            self.inbox[c] += payload
        elif fresh:
            self.v[c] = payload

    def reset(self, i: int) -> None:
        self.x[i] = self.x0
        self.g[i] = self.z[i] = self.grad(i, self.x0)
        self.v[self.pull_in[i]] = self.x0
        self.inbox[self.push_in[i]] = 0.0
