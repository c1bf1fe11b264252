"""Wording and facts of the Restoration page: what the early-stopping detector has and has not decided.

ES-WMV keeps the last W outputs, tracks the minimum of their variance and fires when that
minimum has not improved for P iterations; the answer is the output at the minimum t*. Until it
fires, t* is only a candidate. These helpers turn a run's live extras or its summary into the
sentences the page shows, so the page never calls a candidate a detected stop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: how a finished run ended (the summary's ``stop``)
STOPS = ("detected", "budget", "user")


@dataclass(frozen=True)
class EsStatus:
    """What the detector knows at one moment.

    Attributes
    ----------
    phase : {"off", "warmup", "candidate", "detected"}
        ``off``: no detector; ``warmup``: the variance does not exist yet (window filling, or
        EMV burn-in); ``candidate``: a variance minimum t* exists but the detector has not fired;
        ``detected``: it fired and t* is its decision.
    t_star : int or None
    label : str
        The metric label for t* ("Candidate t*", "Detected stop t*").
    text : str
        One sentence saying what t* is.
    """

    phase: str
    t_star: int | None
    label: str
    text: str


def window_filling(count: int, window: int) -> str:
    """``"window filling k/W"``, with what it means."""
    k = max(0, min(int(count), int(window)))
    return (f"ES-WMV window filling {k}/{window}: the windowed variance exists once the window holds "
            f"W = {window} outputs.")


def burn_in(count: int, length: int) -> str:
    """The ES-EMV counterpart of :func:`window_filling`."""
    k = max(0, min(int(count), int(length)))
    return f"ES-EMV burn-in {k}/{length}: the exponential variance is tracked after {length} outputs."


def candidate_text(t_star: int, patience_left: int, budget_left: int | None = None) -> str:
    """The candidate t*, worded as what it is: a minimum so far, not a decision.

    ``budget_left``: iterations left in the budget; when the patience outlasts it, say so.
    """
    n = int(patience_left)
    its = "iteration" if n == 1 else "iterations"
    text = (f"candidate t* = {t_star}: the variance minimum so far, not yet a decision; the stop is declared "
            f"if it does not improve in the next {n} {its}")
    if budget_left is not None and 0 <= budget_left < n:
        text += (f", but the budget ends first, in {budget_left}: then t* is the minimum within the budget, "
                 "not a detected stop")
    return text


def detected_text(t_star: int, patience: int | None = None) -> str:
    """The detected stop: the minimum held for P iterations."""
    held = f"for P = {patience} iterations" if patience else "for the patience P"
    return f"detected stop t* = {t_star}: the variance minimum did not improve {held} after it"


def live_status(extra: dict[str, Any], *, stopping: str, iteration: int, window: int | None = None,
                patience: int | None = None) -> EsStatus:
    """The detector's state from a run's published extras (see ``engine.dip.workflow``).

    ``window`` and ``patience`` are the run's parameters, used when the extras do not carry them.
    """
    if stopping == "none":
        return EsStatus("off", None, "", "No early stopping: the run goes to the iteration budget.")
    t_star = extra.get("es_iteration")
    if extra.get("es_fired") and t_star:
        return EsStatus("detected", int(t_star), "Detected stop t*", detected_text(int(t_star), patience))
    if not t_star:
        if stopping == "emv":
            b = extra.get("es_burn_in")
            text = burn_in(iteration, int(b)) if b else "ES-EMV burn-in: no variance yet."
        else:
            w = extra.get("es_window") or window
            text = window_filling(iteration, int(w)) if w else "ES-WMV window filling: no variance yet."
        return EsStatus("warmup", None, "", text)
    left = extra.get("patience_left")
    if left is None:
        left = patience or 0
    budget = extra.get("max_iters")
    budget_left = None if not budget or extra.get("run_to_budget") else int(budget) - int(iteration)
    return EsStatus("candidate", int(t_star), "Candidate t*", candidate_text(int(t_star), int(left), budget_left))


def stop_of(summary: dict[str, Any]) -> str:
    """How a finished run ended: ``"detected"``, ``"budget"`` or ``"user"``.

    Summaries written before ``stop`` existed are read from ``state`` and ``es_fired``.
    """
    stop = summary.get("stop")
    if stop in STOPS:
        return stop
    if summary.get("state") == "cancelled":
        return "user"
    return "detected" if summary.get("es_fired") else "budget"


def user_stop_text(stopped_iteration: int, t_star: int | None) -> str:
    """A run the user stopped before the detector decided."""
    if t_star is None:
        return (f"You stopped the run at iteration {stopped_iteration} before the detector had a variance; "
                "the image below is the last output, not a detected stop.")
    return (f"You stopped the run at iteration {stopped_iteration} before the detector decided; the image "
            f"below is the best candidate so far, t* = {t_star}, not a detected stop.")


def budget_text(t_star: int | None, max_iters: int | None) -> str:
    """A run whose budget ran out before the detector fired."""
    budget = f" ({max_iters} iterations)" if max_iters else ""
    if t_star is None:
        return (f"The budget{budget} ran out before the detector had a variance: the image is the last "
                "output.")
    return (f"The budget{budget} ran out before the detector fired: t* = {t_star} is the minimum within the "
            "budget, not a detected stop.")


def verdict(summary: dict[str, Any], *, stopping: str) -> tuple[str, str] | None:
    """``(level, sentence)`` for a finished run that did not end on a detected stop, else None.

    ``level`` is ``"warning"`` (stopped by the user) or ``"info"`` (budget spent).
    """
    if stopping == "none" or summary.get("es_fired"):
        return None
    stop = stop_of(summary)
    t_star = summary.get("es_iteration")
    if stop == "user":
        return "warning", user_stop_text(int(summary.get("stopped_iteration") or 0), t_star)
    if stop == "budget":
        return "info", budget_text(t_star, summary.get("max_iters"))
    return None


def psnr_suffix(vs_input: float | None, vs_reference: float | None) -> str:
    """``" · 27.10 dB vs input · 25.30 dB vs reference"`` (the parts that are known)."""
    parts = []
    if vs_input is not None:
        parts.append(f"{vs_input:.2f} dB vs input")
    if vs_reference is not None:
        parts.append(f"{vs_reference:.2f} dB vs reference")
    return "".join(f" · {p}" for p in parts)


def result_caption(summary: dict[str, Any], *, stopping: str) -> str:
    """Caption of the result image of a run that the user did not stop before the detector."""
    if stopping == "none":
        cap = "Last output"
    elif summary.get("es_iteration") is None:
        cap = "Last output (the detector had no variance yet)"
    elif summary.get("es_fired"):
        cap = f"Output at t* = {summary['es_iteration']}"
    else:
        cap = f"Output at t* = {summary['es_iteration']} (minimum within the budget)"
    if summary.get("es_psnr") is not None:
        cap += f" · {summary['es_psnr']:.2f} dB"
    return cap


def forced_stop_captions(summary: dict[str, Any]) -> dict[str, str]:
    """Captions of the last image and of the best-so-far image of a run stopped before the detector.

    Keys ``"last"`` and, when a candidate t* exists, ``"best"``.
    """
    caps = {"last": f"Last output, iteration {summary.get('stopped_iteration')}"
                    + psnr_suffix(summary.get("last_psnr_vs_input"), summary.get("last_psnr"))}
    t_star = summary.get("es_iteration")
    if t_star is not None:
        caps["best"] = (f"Best candidate so far, t* = {t_star} (not a detected stop)"
                        + psnr_suffix(summary.get("es_psnr_vs_input"), summary.get("es_psnr")))
    return caps
