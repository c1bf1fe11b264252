"""Randomness: every public function takes one ``seed`` (an int, or a generator passed through)."""

from __future__ import annotations

import numpy as np
import torch

from engine.core.errors import InputError

Seed = int | np.random.Generator | None
#: a torch seed: an int, a generator passed through, or None for torch's global generator
TorchSeed = int | torch.Generator | None


def numpy_rng(seed: Seed, *stream: int) -> np.random.Generator:
    """A numpy generator from ``seed``; extra ``stream`` numbers give independent streams of one seed.

    A Generator is returned as is (``stream`` is then ignored); ``None`` draws fresh entropy.
    """
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, (bool, np.bool_)) or (seed is not None and not isinstance(seed, (int, np.integer))):
        raise InputError(f"seed must be a non-negative integer or a numpy Generator, not {seed!r}")
    if seed is not None and seed < 0:
        raise InputError(f"seed must be a non-negative integer, not {seed}")
    if seed is None:
        return np.random.default_rng()
    return np.random.default_rng([int(seed), *stream] if stream else int(seed))


def torch_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A torch generator on ``device`` seeded with ``seed`` (the global RNG is never touched)."""
    g = torch.Generator(device=device)
    g.manual_seed(int(seed))
    return g


def torch_rng(seed: TorchSeed) -> torch.Generator | None:
    """The CPU generator behind ``seed``.

    A ``torch.Generator`` is returned as is, an int seeds a new CPU generator (the same stream as
    ``torch.Generator().manual_seed(seed)``), None stands for torch's global generator.
    """
    if seed is None or isinstance(seed, torch.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, int) and not hasattr(seed, "__index__"):
        raise InputError(f"seed must be an integer or a torch.Generator, not {seed!r}")
    try:
        return torch_generator(int(seed))
    except RuntimeError as e:  # outside what manual_seed accepts
        raise InputError(f"seed {seed} is out of range for a torch generator") from e
