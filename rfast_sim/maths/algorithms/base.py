"""The algorithm interface shared by R-FAST and every baseline.

An algorithm is a frozen bundle of pure functions (cf. optax's GradientTransformation). Its
state is a :class:`NetState`: ``nodes``, a NamedTuple of arrays with a leading node axis, and
``chans``, a NamedTuple of arrays with a leading channel axis (per-link buffers).

Asynchronous algorithms see only *local views*, as a real device would: the runner gathers the
rows an event may touch and writes back what the algorithm returns. A write is a small
NamedTuple whose field names are a subset of the state's (R-FAST's ``Absorbed(rho_tilde)``
of its ``RunningSums``); only those fields are written, and :class:`NoWrite` writes nothing:

- ``on_compute(env, i, key, node, ins, outs) -> Compute(node, ins, outs, payloads)``: node i
  finished a local gradient. ``node`` is its row of ``nodes``; ``ins`` / ``outs`` are the rows
  of ``chans`` for its in- / out-channels (``env.net.in_ch[i]``, ``out_ch[i]``, -1 padded);
  ``payloads[k]`` is the packet sent on out-channel k.
- ``on_receive(env, c, payload, fresh, dst, src, chan) -> Receive(dst, src, chan)``: a packet
  arrived on channel c (``fresh`` is False if a newer packet on c was already applied). With
  ``supersedes`` a stale packet changes nothing: it is not passed on at all (``fresh`` is True).

Synchronous gossip methods (D-PSGD, synchronous gradient tracking) use the same per-node
functions; the engine's barrier decides when they fire. All-reduce gets the whole state once per
global round: ``on_round(env, state, key) -> state``. Every algorithm has
``init(env, key) -> NetState`` and ``models(state) -> [n, D]`` (each node's current model, for
metrics). None of them knows time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp

from rfast_sim.maths.problems import ProblemData, ProblemOps
from rfast_sim.scenario.registry import AlgorithmInfo, Pattern

Array = jax.Array


class Net(NamedTuple):
    """Channel arrays of :class:`rfast_sim.timing.topology.Channels` as a pytree (traced,
    vmappable)."""

    src: Array
    dst: Array
    role: Array
    weight: Array
    self_weight: Array  # [3, n]: r_ii, c_ii, w_ii
    out_ch: Array  # [n, Kout], -1 padded
    in_ch: Array  # [n, Kin], -1 padded
    phase_weight: Array  # [P, E] time-varying graphs: each phase's weights (P = 1: static)
    phase_self: Array  # [P, 3, n]
    phase: Array | int = 0  # the phase an update uses (`at_phase`; read by `neighbourhood`)


def at_phase(net: Net, phase: Array) -> Net:
    """The net as an update of one phase of time-varying graphs sees it (static graphs:
    unchanged). Only the phase is recorded: `neighbourhood` reads the weights of the node's own
    rows at it, so a batch of updates of different phases gathers [batch, degree] weights, not
    [batch, channels] (read weights through `neighbourhood`, never `net.weight` directly)."""
    if net.phase_weight.shape[0] == 1:
        return net
    return net._replace(phase=phase)


class Env(NamedTuple):
    """Everything an update reads but does not change."""

    net: Net
    data: ProblemData
    step_size: Array


class NetState(NamedTuple):
    nodes: Any  # NamedTuple of [n, ...] arrays
    chans: Any  # NamedTuple of [E, ...] arrays


class NoChans(NamedTuple):
    """Channel state of algorithms that keep none."""


class NoWrite(NamedTuple):
    """A write that changes nothing."""


class Compute(NamedTuple):
    """What a computation writes: node i's fields, in- and out-channel rows, and its packets."""

    node: Any  # NamedTuple: fields of ``nodes`` to write for node i
    ins: Any  # NamedTuple: fields of ``chans`` to write on i's in-channels ([Kin, ...] rows)
    outs: Any  # NamedTuple: fields of ``chans`` to write on i's out-channels ([Kout, ...] rows)
    payloads: Array  # [Kout, payload_width]


class Receive(NamedTuple):
    """What a delivery writes: fields of the receiver's, the sender's and the channel's rows."""

    dst: Any
    src: Any
    chan: Any


class InitFn(Protocol):
    def __call__(self, env: Env, key: Array, /) -> NetState: ...


class ComputeFn(Protocol):
    def __call__(self, env: Env, i: Array, key: Array, node: Any, ins: Any, outs: Any,
                 /) -> Compute: ...


class ReceiveFn(Protocol):
    def __call__(self, env: Env, c: Array, payload: Array, fresh: Array, dst: Any, src: Any,
                 chan: Any, /) -> Receive: ...


class RoundFn(Protocol):
    def __call__(self, env: Env, state: NetState, key: Array, /) -> NetState: ...


class ModelsFn(Protocol):
    def __call__(self, state: NetState, /) -> Array: ...


class InvariantFn(Protocol):
    """A conserved quantity's residual (zero after every event, whatever is lost)."""

    def __call__(self, env: Env, state: NetState, /) -> Array: ...


class Neighbourhood(NamedTuple):
    """Node i's channels with their roles and weights (invalid = padding)."""

    in_valid: Array
    in_role: Array
    in_w: Array
    out_valid: Array
    out_role: Array
    out_w: Array
    self_w: Array  # [3]


def neighbourhood(net: Net, i: Array) -> Neighbourhood:
    """Node i's channels and weights (of the net's phase: `at_phase`)."""
    ins, outs = net.in_ch[i], net.out_ch[i]
    ci, co = jnp.maximum(ins, 0), jnp.maximum(outs, 0)
    if net.phase_weight.shape[0] == 1:
        w_in, w_out, w_self = net.weight[ci], net.weight[co], net.self_weight[:, i]
    else:
        p = jnp.asarray(net.phase)
        w_in, w_out, w_self = (net.phase_weight[p, ci], net.phase_weight[p, co],
                               net.phase_self[p, :, i])
    return Neighbourhood(ins >= 0, net.role[ci], jnp.where(ins >= 0, w_in, 0.0),
                         outs >= 0, net.role[co], jnp.where(outs >= 0, w_out, 0.0), w_self)


class Access(NamedTuple):
    """The fields one kind of event reads and writes, each as ``"row.field"``: a computation's
    rows are ``node`` (its own), ``in`` and ``out`` (its in- and out-channel rows); a
    delivery's ``dst`` and ``src`` (the receiver's and the sender's node rows) and ``chan``
    (the channel's row). Packets are implicit: a computation writes the packets it sends, a
    delivery reads its own. The wave replay orders events by these sets (two events conflict
    when one writes a field the other reads or writes); a test perturbs every field outside
    `reads` and checks that the event's output does not change."""

    reads: tuple[str, ...]
    writes: tuple[str, ...]


class Accesses(NamedTuple):
    """An algorithm's read and write sets, per event kind (a reset's follow from
    `Algorithm.sender_fields`: it writes what it clears and reads nothing)."""

    compute: Access
    receive: Access


@dataclass(frozen=True)
class Algorithm:
    """An algorithm's pure functions, with its metadata (`info`, registered beside its
    factory and readable without building it: :func:`rfast_sim.scenario.registry.info`)."""

    info: AlgorithmInfo
    payload_width: int  # floats per packet
    init: InitFn
    models: ModelsFn
    on_compute: ComputeFn | None = None
    on_receive: ReceiveFn | None = None
    on_round: RoundFn | None = None
    invariant: InvariantFn | None = None
    # channel fields the sender holds (the others are the receiver's): a node that restarts
    # (rejoin: reset) clears these on its out-channels and the others on its in-channels
    sender_fields: tuple[str, ...] = ()
    # what each event kind reads and writes (None: every field of every row it is given, the
    # safe fallback for an algorithm that declares nothing)
    access: Accesses | None = None

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def pattern(self) -> Pattern:
        return self.info.pattern

    @property
    def graphs(self) -> tuple[str, ...]:
        return self.info.graphs

    @property
    def supersedes(self) -> bool:
        return self.info.supersedes

    @property
    def description(self) -> str:
        return self.info.description

    @property
    def per_round(self) -> bool:
        """Updates the whole network once per global round (``on_round``), as all-reduce does;
        every other algorithm updates node by node at its compute and delivery events."""
        return self.on_round is not None


def all_grads(ops: ProblemOps, env: Env, x: Array, key: Array) -> Array:
    """Every node's local gradient at its own row of x (used by synchronous rounds)."""
    n = x.shape[0]
    keys = jax.random.split(key, n)
    return jax.vmap(ops.local_grad, in_axes=(0, None, 0, 0))(x, env.data, jnp.arange(n), keys)


def replicate(x0: Array, n: int) -> Array:
    return jnp.broadcast_to(x0, (n, *x0.shape))


def num_nodes(env: Env) -> int:
    return int(env.net.self_weight.shape[1])
