"""Operator-chain recipes for Fourier phase retrieval, in the style of PyNX.

Syntax
------
``(Sup*ER**5*HIO**50)**10``, ``ER**100*RAAR**400``, ``HIO(beta=0.8)**200``.

* ``A**n`` repeats ``A`` n times (n a positive integer); ``**`` binds tighter than ``*`` and does not
  chain (``ER**2**3`` is an error: write ``(ER**2)**3``).
* ``A*B`` is composition and is applied **right to left**, as operators are in PyNX and in
  mathematics: ``Sup*ER**5*HIO**50`` runs 50 HIO cycles, then 5 ER cycles, then one support update.
* Operators: ``ER``, ``HIO(beta=0.9)``, ``RAAR(beta=0.85)``, ``Sup(threshold=0.25, sigma=...)``
  (names are case-insensitive; parameters are optional keyword numbers).

Errors raise :class:`RecipeError` (an ``InputError``) with the 0-based character position.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from engine.core.errors import InputError

#: operator name -> allowed keyword parameters and (low, high) bounds (inclusive)
OPERATORS: dict[str, dict[str, tuple[float, float]]] = {
    "ER": {},
    "HIO": {"beta": (0.0, 1.0)},
    "RAAR": {"beta": (0.0, 1.0)},
    "Sup": {"threshold": (1e-4, 1.0), "sigma": (0.0, 20.0)},
}
#: projection operators (those that count as one cycle each)
PROJECTIONS = ("ER", "HIO", "RAAR")
MAX_OPERATIONS = 1_000_000
MAX_LENGTH = 2000

_TOKEN = re.compile(r"\s*(?:(?P<pow>\*\*)|(?P<mul>\*)|(?P<lp>\()|(?P<rp>\))|(?P<comma>,)|(?P<eq>=)"
                    r"|(?P<num>[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_]*))")


class RecipeError(InputError):
    """A recipe string that does not parse; ``position`` is the 0-based index of the problem."""

    def __init__(self, message: str, text: str, position: int) -> None:
        self.position = position
        self.text = text
        super().__init__(f"recipe error at position {position}: {message} (in {text!r})")


@dataclass(frozen=True)
class Step:
    """One operator run ``count`` times in a row."""

    name: str
    count: int = 1
    params: tuple[tuple[str, float], ...] = ()

    @property
    def kwargs(self) -> dict[str, float]:
        return dict(self.params)

    def __str__(self) -> str:
        p = f"({', '.join(f'{k}={v:g}' for k, v in self.params)})" if self.params else ""
        return f"{self.name}{p}" + (f"**{self.count}" if self.count != 1 else "")


@dataclass
class Recipe:
    """A parsed recipe: ``steps`` in execution order (first to run first)."""

    text: str
    steps: list[Step] = field(default_factory=list)

    @property
    def cycles(self) -> int:
        """Number of projection cycles (ER/HIO/RAAR); support updates are not cycles."""
        return sum(s.count for s in self.steps if s.name in PROJECTIONS)

    @property
    def support_updates(self) -> int:
        return sum(s.count for s in self.steps if s.name == "Sup")

    def operations(self):
        """Yield (name, kwargs) once per operation, in execution order."""
        for s in self.steps:
            kw = s.kwargs
            for _ in range(s.count):
                yield s.name, kw

    def __str__(self) -> str:
        return " then ".join(str(s) for s in self.steps)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks: list[tuple[str, str, int]] = []
        pos = 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            m = _TOKEN.match(text, pos)
            if m is None or m.end() == pos:
                bad = len(text[pos:]) - len(text[pos:].lstrip()) + pos
                raise RecipeError(f"unexpected character {text[bad]!r}", text, bad)
            kind = m.lastgroup
            start = m.start(kind)
            self.toks.append((kind, m.group(kind), start))
            pos = m.end()
        self.toks.append(("end", "", len(text)))
        self.i = 0

    def peek(self) -> tuple[str, str, int]:
        return self.toks[self.i]

    def take(self, kind: str, what: str) -> tuple[str, str, int]:
        tok = self.peek()
        if tok[0] != kind:
            found = "the end" if tok[0] == "end" else repr(tok[1])
            raise RecipeError(f"expected {what}, found {found}", self.text, tok[2])
        self.i += 1
        return tok

    # chain := term ('*' term)*   -> list of steps in execution order (right to left)
    def chain(self) -> list[Step]:
        parts = [self.term()]
        while self.peek()[0] == "mul":
            self.i += 1
            parts.append(self.term())
        out: list[Step] = []
        for p in reversed(parts):
            out.extend(p)
        return out

    # term := atom ('**' INT)?
    def term(self) -> list[Step]:
        steps = self.atom()
        if self.peek()[0] == "pow":
            self.i += 1
            kind, val, pos = self.take("num", "a repeat count after '**'")
            if not re.fullmatch(r"[0-9]+", val) or int(val) < 1:
                raise RecipeError(f"repeat count must be a positive integer, got {val!r}", self.text, pos)
            n = int(val)
            if self.peek()[0] == "pow":
                raise RecipeError("'**' cannot be chained; use parentheses, e.g. (ER**2)**3",
                                  self.text, self.peek()[2])
            total = sum(s.count for s in steps) * n
            if total > MAX_OPERATIONS:
                raise RecipeError(f"the recipe expands to more than {MAX_OPERATIONS:,} operations",
                                  self.text, pos)
            if len(steps) == 1:
                return [Step(steps[0].name, steps[0].count * n, steps[0].params)]
            return steps * n
        return steps

    # atom := NAME ['(' kwargs ')'] | '(' chain ')'
    def atom(self) -> list[Step]:
        kind, val, pos = self.peek()
        if kind == "lp":
            self.i += 1
            inner = self.chain()
            self.take("rp", "')'")
            return inner
        if kind != "name":
            found = "the end" if kind == "end" else repr(val)
            raise RecipeError(f"expected an operator ({', '.join(OPERATORS)}) or '(', found {found}",
                              self.text, pos)
        self.i += 1
        canon = next((k for k in OPERATORS if k.lower() == val.lower()), None)
        if canon is None:
            raise RecipeError(f"unknown operator {val!r}; expected one of {', '.join(OPERATORS)}",
                              self.text, pos)
        params: dict[str, float] = {}
        if self.peek()[0] == "lp":
            self.i += 1
            while self.peek()[0] != "rp":
                _, key, kpos = self.take("name", "a parameter name")
                if key not in OPERATORS[canon]:
                    allowed = ", ".join(OPERATORS[canon]) or "none"
                    raise RecipeError(f"{canon} has no parameter {key!r} (allowed: {allowed})",
                                      self.text, kpos)
                if key in params:
                    raise RecipeError(f"parameter {key!r} given twice", self.text, kpos)
                self.take("eq", "'='")
                _, num, npos = self.take("num", f"a number for {key}")
                lo, hi = OPERATORS[canon][key]
                v = float(num)
                if not lo <= v <= hi:
                    raise RecipeError(f"{canon} {key}={v:g} is out of range [{lo:g}, {hi:g}]",
                                      self.text, npos)
                params[key] = v
                if self.peek()[0] == "comma":
                    self.i += 1
                elif self.peek()[0] != "rp":
                    self.take("rp", "',' or ')'")
            self.i += 1
        return [Step(canon, 1, tuple(sorted(params.items())))]


def _merge(steps: list[Step]) -> list[Step]:
    out: list[Step] = []
    for s in steps:
        if out and out[-1].name == s.name and out[-1].params == s.params:
            out[-1] = Step(s.name, out[-1].count + s.count, s.params)
        else:
            out.append(s)
    return out


def parse_recipe(text: str) -> Recipe:
    """Parse a recipe string into steps in execution order.

    Parameters
    ----------
    text : str
        For example ``"(Sup*ER**5*HIO**50)**10"``; ``*`` applies right to left.

    Raises
    ------
    RecipeError
        With the position of the problem (empty string, unknown operator, bad count, unbalanced
        parentheses, trailing text, no projection operator, too long).
    """
    if not isinstance(text, str):
        raise InputError("the recipe must be a string such as 'ER**100*HIO**400'")
    if len(text) > MAX_LENGTH:
        raise RecipeError(f"the recipe is longer than {MAX_LENGTH} characters", text[:40] + "...", MAX_LENGTH)
    if not text.strip():
        raise RecipeError("the recipe is empty; expected e.g. 'ER**100*HIO**400'", text, 0)
    p = _Parser(text)
    steps = p.chain()
    kind, val, pos = p.peek()
    if kind != "end":
        what = "an unmatched ')'" if kind == "rp" else f"{val!r}"
        raise RecipeError(f"unexpected {what}; join operators with '*'", text, pos)
    recipe = Recipe(text=text, steps=_merge(steps))
    if recipe.cycles == 0:
        raise RecipeError("the recipe has no projection operator (ER, HIO or RAAR)", text, 0)
    return recipe
