"""Plain-numpy R-FAST, event by event, written from ALGORITHM.md with no JAX and no tricks.

It is the oracle the tests hold the JAX implementation to, and the per-event yardstick of the
engine benchmark. It replays a recorded :class:`~rfast_sim.timing.engine.EventTrace` with exact
gradients of a least-squares problem.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from rfast_sim.timing import engine
from rfast_sim.timing.topology import ROLE_PULL, ROLE_PUSH, Channels


def least_squares_grad(feats: np.ndarray, targets: np.ndarray,
                       l2: float) -> Callable[[int, np.ndarray], np.ndarray]:
    """Exact gradient of f_i(x) = mean_m (a_m x - b_m)^2 / 2 + l2/2 |x|^2."""
    m = feats.shape[1]

    def grad(i: int, x: np.ndarray) -> np.ndarray:
        return feats[i].T @ (feats[i] @ x - targets[i]) / m + l2 * x

    return grad


class RFastReference:
    """R-FAST state in plain arrays (node rows, channel rows), updated event by event."""

    def __init__(self, ch: Channels, x0: np.ndarray, step_size: float,
                 grad: Callable[[int, np.ndarray], np.ndarray]) -> None:
        self.ch, self.gamma, self.grad, self.x0 = ch, step_size, grad, x0.copy()
        n = ch.n
        self.x = np.tile(x0, (n, 1))
        self.g = np.stack([grad(i, self.x[i]) for i in range(n)])
        self.z = self.g.copy()
        num = ch.num
        self.recv = np.zeros((num, len(x0)))
        self.recv[ch.role == ROLE_PULL] = x0  # v_j starts at x_j(0)
        self.rho = np.zeros((num, len(x0)))
        self.rho_tilde = np.zeros((num, len(x0)))
        self.last_seq = -np.ones(num, dtype=int)
        self.in_flight: dict[int, np.ndarray] = {}
        # neighbour lists fixed once, so an event costs O(degree * dim), as on a device
        ins = [np.flatnonzero(ch.dst == i) for i in range(n)]
        self.pull_in = [c[ch.role[c] == ROLE_PULL] for c in ins]
        self.push_in = [c[ch.role[c] == ROLE_PUSH] for c in ins]
        outs = [c[c >= 0] for c in ch.out_ch]
        self.push_out = [c[ch.role[c] == ROLE_PUSH] for c in outs]

    def compute(self, i: int, out_slots: np.ndarray, phase: int = 0) -> None:
        ch = self.ch
        weight, self_weight = ch.phase_weight[phase], ch.phase_self[phase]  # this phase's graph
        r_ii, c_ii = self_weight[ROLE_PULL, i], self_weight[ROLE_PUSH, i]
        pull_in, push_in, push_out = self.pull_in[i], self.push_in[i], self.push_out[i]
        v = self.x[i] - self.gamma * self.z[i]  # descend
        self.x[i] = r_ii * v + weight[pull_in] @ self.recv[pull_in]  # pull
        self.z[i] += (self.recv[push_in] - self.rho_tilde[push_in]).sum(0)  # absorb new mass
        self.rho_tilde[push_in] = self.recv[push_in]
        g_new = self.grad(i, self.x[i])  # track
        self.z[i] += g_new - self.g[i]
        self.g[i] = g_new
        self.rho[push_out] += weight[push_out, None] * self.z[i]  # push
        self.z[i] *= c_ii
        for k, c in enumerate(ch.out_ch[i]):
            if c >= 0 and out_slots[k] >= 0:
                payload = v if ch.role[c] == ROLE_PULL else self.rho[c]
                self.in_flight[int(out_slots[k])] = payload.copy()

    def reset(self, i: int) -> None:
        """Node i restarts from x0 with its first gradient as tracker; it forgets what it
        received and absorbed, and its outgoing running sums (its neighbours forget nothing)."""
        ch = self.ch
        self.x[i] = self.x0
        self.g[i] = self.grad(i, self.x0)
        self.z[i] = self.g[i]
        ins = np.flatnonzero(ch.dst == i)
        self.recv[ins] = np.where((ch.role[ins] == ROLE_PULL)[:, None], self.x0, 0.0)
        self.rho_tilde[ins] = 0.0
        self.rho[np.flatnonzero(ch.src == i)] = 0.0

    def deliver(self, c: int, slot: int, seq: int) -> None:
        payload = self.in_flight.pop(slot)
        if seq > self.last_seq[c]:  # an older packet than one already applied is discarded
            self.recv[c] = payload
            self.last_seq[c] = seq

    def tracker_mass(self) -> np.ndarray:
        push = self.ch.role == ROLE_PUSH
        return self.z.sum(0) + (self.rho[push] - self.rho_tilde[push]).sum(0)

    def replay(self, trace: engine.EventTrace,
               after_event: Callable[[RFastReference], None] | None = None) -> None:
        for e in range(len(trace)):
            kind = trace.kind[e]
            if kind == engine.COMPUTE:
                self.compute(int(trace.node[e]), trace.out_slots[e], int(trace.phase[e]))
            elif kind == engine.RESET:
                self.reset(int(trace.node[e]))
            elif kind == engine.DELIVER:
                self.deliver(int(trace.channel[e]), int(trace.slot[e]), int(trace.seq[e]))
            else:
                continue
            if after_event is not None:
                after_event(self)
