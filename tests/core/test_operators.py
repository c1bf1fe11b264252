"""Every forward operator in the engine has a correct adjoint.

Each domain's tests list small instances of its operators in ``tests/<domain>/operator_examples.py``
(``EXAMPLES``: name -> factory returning the operator, an input ``x`` and an output-shaped ``y``). This
test checks ``<A x, y> = <x, A^* y>`` for all of them, and that no Operator subclass is left out.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest
import torch

import engine
from engine.core.operator import Operator, adjointness_gap

DOMAINS = ("dip", "cdi", "gpr", "xray", "mri")


def _examples() -> dict:
    out = {}
    for d in DOMAINS:
        try:
            mod = importlib.import_module(f"tests.{d}.operator_examples")
        except ModuleNotFoundError:
            continue
        out.update({f"{d}:{k}": v for k, v in mod.EXAMPLES.items()})
    return out


EXAMPLES = _examples()


def _subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub} | _subclasses(sub)
    return found


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_adjoint(name):
    op, x, y = EXAMPLES[name]()
    assert isinstance(op, Operator)
    assert op.A(x).shape == y.shape, "y must have the operator's output shape"
    tol = 1e-9 if x.dtype in (torch.float64, torch.complex128) else 2e-5
    assert adjointness_gap(op, x, y) < tol


def test_every_operator_in_the_engine_has_an_example():
    for m in pkgutil.walk_packages(engine.__path__, "engine."):
        importlib.import_module(m.name)
    # operators that can be built: their A is implemented somewhere below the base, and they are leaves
    # of the hierarchy (an intermediate base such as a measurement family is covered by its leaves)
    concrete = {c for c in _subclasses(Operator)
                if c.__module__.startswith("engine.") and not inspect.isabstract(c)
                and c.A is not Operator.A and not c.__subclasses__()}
    covered = {type(EXAMPLES[k]()[0]) for k in EXAMPLES}
    missing = sorted(f"{c.__module__}.{c.__qualname__}" for c in concrete if c not in covered)
    assert not missing, f"operators without an adjointness example: {missing}"
    assert len(covered) >= 3
