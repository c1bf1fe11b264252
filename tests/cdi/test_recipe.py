"""The PyNX-style operator-chain parser."""

from __future__ import annotations

import pytest

from engine.cdi.recipe import RecipeError, parse_recipe
from engine.core.errors import InputError


def test_right_to_left_and_repeat():
    r = parse_recipe("ER**100*RAAR**400")
    assert [(s.name, s.count) for s in r.steps] == [("RAAR", 400), ("ER", 100)]
    assert r.cycles == 500


def test_grouped_repeat():
    r = parse_recipe("(Sup*ER**5*HIO**50)**10")
    ops = [name for name, _ in r.operations()]
    assert ops[:56] == ["HIO"] * 50 + ["ER"] * 5 + ["Sup"]
    assert len(ops) == 560 and r.cycles == 550 and r.support_updates == 10


def test_params_case_and_merging():
    r = parse_recipe(" er * hio(beta=0.7)**3 * (ER**2)**2 ")
    assert [(s.name, s.count) for s in r.steps] == [("ER", 4), ("HIO", 3), ("ER", 1)]
    assert r.steps[1].kwargs == {"beta": 0.7}
    assert parse_recipe("Sup(threshold=0.2, sigma=1)*ER").steps[1].kwargs == {"sigma": 1.0, "threshold": 0.2}


@pytest.mark.parametrize("text, pos, match", [
    ("", 0, "empty"),
    ("ER**", 4, "repeat count"),
    ("ER**0", 4, "positive integer"),
    ("ER**2.5", 4, "positive integer"),
    ("ER**2**3", 5, "cannot be chained"),
    ("FOO**3", 0, "unknown operator"),
    ("(ER**3", 6, "expected '\\)'"),
    ("ER**3)", 5, "unmatched"),
    ("ER HIO", 3, "join operators"),
    ("ER*", 3, "expected an operator"),
    ("HIO(beta=2)", 9, "out of range"),
    ("HIO(gamma=1)", 4, "no parameter"),
    ("ER$", 2, "unexpected character"),
    ("Sup**3", 0, "no projection"),
    ("(ER**1000)**10000", 12, "more than"),
])
def test_errors_with_position(text, pos, match):
    with pytest.raises(RecipeError, match=match) as e:
        parse_recipe(text)
    assert e.value.position == pos
    assert f"position {pos}" in str(e.value)
    assert isinstance(e.value, InputError)
