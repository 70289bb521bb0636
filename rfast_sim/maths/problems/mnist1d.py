"""MNIST-1D (Greydanus, 2020, arXiv:2011.14439), generated here from its published recipe.

Ten hand-made templates of 12 points (one per digit) are padded with 36-60 zeros, stretched to
72 points, scaled by 1 +- 0.2, rolled by up to 47 places, given correlated noise (Gaussian
noise smoothed with sigma 2) where the signal is zero and i.i.d. noise everywhere, sheared
(a random linear ramp) and resampled to 40 points; the whole set is then standardised with one
mean and one standard deviation, shuffled, and its first 80% is the training set. No download:
the same options and seed give the same arrays, on any machine (numpy's PCG64 stream; the
`mnist1d` package's own arrays come from numpy's legacy global seed and differ sample by sample,
not in distribution). Numpy and scipy only: the memory estimate and run ids may call it.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

# the paper's templates (its Figure 1), one row per digit 0..9, before whitening
_TEMPLATES = np.array([
    [5, 6, 6.5, 6.75, 7, 7, 7, 7, 6.75, 6.5, 6, 5],
    [5, 3, 3, 3.4, 3.8, 4.2, 4.6, 5, 5.4, 5.8, 5, 5],
    [5, 6, 6.5, 6.5, 6, 5.25, 4.75, 4, 3.5, 3.5, 4, 5],
    [5, 6, 6.5, 6.5, 6, 5, 5, 6, 6.5, 6.5, 6, 5],
    [5, 4.4, 3.8, 3.2, 2.6, 2.6, 5, 5, 5, 5, 5, 5],
    [5, 3, 3, 3, 3, 5, 6, 6.5, 6.5, 6, 4.5, 5],
    [5, 4, 3.5, 3.25, 3, 3, 3, 3, 3.25, 3.5, 4, 5],
    [5, 7, 7, 6.6, 6.2, 5.8, 5.4, 5, 4.6, 4.2, 5, 5],
    [5, 4, 3.5, 3.5, 4, 5, 5, 4, 3.5, 3.5, 4, 5],
    [5, 4, 3.5, 3.5, 4, 5, 5, 5, 5, 4.7, 4.3, 5],
])
LENGTH = 40  # points per sample
CLASSES = 10
_PADDING = (36, 60)  # zeros appended to a 12-point template, drawn uniformly
_TRAIN_SPLIT = 0.8


@dataclass(frozen=True)
class Mnist1dOptions:
    """The generator's knobs, the paper's defaults."""

    samples: int = 5000  # train + test, split 80/20 (balanced: samples // 10 per class)
    scale: float = 0.4  # amplitude x (1 + scale * U(-1/2, 1/2))
    max_translation: int = 48  # rolled by 0 .. max_translation - 1 places
    corr_noise: float = 0.25  # std of the smoothed noise where the signal is zero
    iid_noise: float = 0.02  # std of the noise added everywhere
    shear: float = 0.75  # a ramp of slope shear * U(-1/2, 1/2) over the sample
    seed: int = 42


def templates() -> np.ndarray:
    """The ten templates whitened: zero mean, unit std per row, starting at 0, divided by 6."""
    x = _TEMPLATES - _TEMPLATES.mean(1, keepdims=True)
    x = x / x.std(1, keepdims=True)
    return (x - x[:, :1]) / 6.0


def _resample(x: np.ndarray, n: int) -> np.ndarray:
    """Linear interpolation of each row onto `n` evenly spaced points of the same span."""
    old, new = np.linspace(0, 1, x.shape[-1]), np.linspace(0, 1, n)
    return np.stack([np.interp(new, old, row) for row in x])


def _draw(opts: Mnist1dOptions) -> tuple[np.ndarray, np.ndarray]:
    """Unshuffled, unstandardised samples and their labels, class by class."""
    rng = np.random.default_rng(opts.seed)
    per_class = opts.samples // CLASSES
    labels = np.repeat(np.arange(CLASSES), per_class)
    m = len(labels)
    width = len(_TEMPLATES[0]) + _PADDING[1]  # 72: the longest padded template
    pads = rng.integers(_PADDING[0], _PADDING[1] + 1, m)
    base = templates() + 1e-8  # the eps keeps the signal's own zeros out of the noise mask
    x = np.stack([_resample(np.concatenate([base[c], np.zeros(p)])[None], width)[0]
                  for c, p in zip(labels, pads, strict=True)])
    x = x * (1 + opts.scale * (rng.random(m) - 0.5))[:, None]
    shifts = rng.integers(0, max(opts.max_translation, 1), m)
    x = x[np.arange(m)[:, None], (np.arange(width)[None, :] - shifts[:, None]) % width]
    corr = gaussian_filter1d(opts.corr_noise * rng.standard_normal((m, width)), 2, axis=-1)
    x = np.where(x != 0, x, corr) + opts.iid_noise * rng.standard_normal((m, width))
    x = x - (opts.shear * (rng.random(m) - 0.5))[:, None] * np.linspace(-0.5, 0.5, width)
    return _resample(x, LENGTH), labels


@functools.lru_cache(maxsize=4)
def generate(opts: Mnist1dOptions) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train x, train y, test x, test y): [N, 40] floats and integer labels, the paper's
    80/20 split of a shuffled, standardised set."""
    x, y = _draw(opts)
    perm = np.random.default_rng([opts.seed, 1]).permutation(len(y))
    x, y = x[perm], y[perm]
    x = (x - x.mean()) / x.std()
    cut = int(len(y) * _TRAIN_SPLIT)
    for a in (x, y):
        a.flags.writeable = False  # cached: shared by every caller
    return x[:cut], y[:cut], x[cut:], y[cut:]


def content_hash(opts: Mnist1dOptions) -> str:
    """A digest of the generated arrays (a sweep point's run id holds it, as it holds a data
    file's: a change of the generator changes the id)."""
    h = hashlib.sha256()
    for a in generate(opts):
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def nbytes(opts: Mnist1dOptions) -> int:
    """Bytes of the generated features and labels as float64 (the memory estimate's figure)."""
    return opts.samples // CLASSES * CLASSES * (LENGTH + 1) * 8
