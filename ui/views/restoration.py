"""Wording and facts of the Restoration page: what the early-stopping detector has and has not decided.

ES-WMV keeps the last W outputs, tracks the minimum of their variance and fires when that
minimum has not improved for P iterations; the answer is the output at the minimum t*. Until it
fires, t* is only a candidate. These helpers turn a run's live extras or its summary into the
sentences the page shows, so the page never calls a candidate a detected stop.

The figure builders show the result as a scientist reads it: input and output under one split
slider (:func:`before_after_figure`), the deblur kernel with its scale (:func:`kernel_figure`), the
summary as rows of name, value and unit (:func:`result_table`) and a snapshot scrubber that reaches
t* itself (:func:`scrub_choices`).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go
from PIL import Image

from engine.core.errors import InputError
from engine.runs.store import to_uint8

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

# ----------------------------------------------------------------------------- figures and tables


def _rgb8(img: np.ndarray) -> np.ndarray:
    a = to_uint8(np.asarray(img))
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=-1)
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise InputError(f"an image must be 2-D grey or RGB; got shape {np.shape(img)}")
    return np.ascontiguousarray(a[..., :3])


def _png_uri(a: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _fit(a: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if a.shape[:2] == shape:
        return a
    # nearest neighbour: an enlarged low-resolution input keeps its pixels visible, not smoothed
    return np.asarray(Image.fromarray(a).resize((shape[1], shape[0]), Image.Resampling.NEAREST))


def before_after_figure(before: np.ndarray, after: np.ndarray, *, strips: int = 20,
                        labels: tuple[str, str] = ("input", "restored"), max_side: int = 512,
                        title: str = "", height: int = 520) -> go.Figure:
    """Input and output in one frame, split by a slider: left of the split the input, right of it
    the output.

    The output is drawn whole, the input on top of it in ``strips`` vertical strips; each slider step
    shows the strips left of its split, so the figure carries each image once. An input of another
    size (super-resolution) is enlarged to the output's size, pixel-exact. Images larger than
    ``max_side`` are reduced by an integer step.
    """
    if not 2 <= strips <= 100:
        raise InputError(f"strips must be between 2 and 100; got {strips}")
    a8 = _rgb8(after)
    b8 = _fit(_rgb8(before), a8.shape[:2])
    step = max(1, int(np.ceil(max(a8.shape[:2]) / max(1, max_side))))
    a8, b8 = np.ascontiguousarray(a8[::step, ::step]), np.ascontiguousarray(b8[::step, ::step])
    h, w = a8.shape[:2]
    strips = min(strips, w)  # a strip is at least one pixel wide (tiny images)
    edges = np.linspace(0, w, strips + 1).round().astype(int)
    fig = go.Figure(go.Image(source=_png_uri(a8), x0=0, dx=1, y0=0, dy=1, name=labels[1], hoverinfo="skip"))
    for lo, hi in zip(edges[:-1], edges[1:]):
        fig.add_trace(go.Image(source=_png_uri(np.ascontiguousarray(b8[:, lo:hi])), x0=int(lo), dx=1, y0=0,
                               dy=1, name=labels[0], hoverinfo="skip"))
    active = strips // 2

    def shown(k: int) -> list[bool]:
        return [True] + [j < k for j in range(strips)]

    def line_at(x: float) -> dict:
        return dict(type="line", x0=x - 0.5, x1=x - 0.5, y0=-0.5, y1=h - 0.5, line=dict(color="#f0b429", width=2))

    for tr, vis in zip(fig.data, shown(active)):
        tr.visible = vis
    steps = [dict(method="update", label=f"{round(100 * k / strips)} %",
                  args=[{"visible": shown(k)}, {"shapes": [line_at(float(edges[k]))]}]) for k in range(strips + 1)]
    fig.update_layout(
        shapes=[line_at(float(edges[active]))], height=height, template="plotly_dark",
        title=dict(text=title or f"{labels[0]} ◀ split ▶ {labels[1]}", font=dict(size=13)),
        margin=dict(l=5, r=5, t=35, b=5),
        sliders=[dict(active=active, steps=steps, pad=dict(t=10),
                      currentvalue=dict(prefix=f"{labels[0]} on the left: ", font=dict(size=12)))],
        annotations=[dict(x=0, y=1.0, xref="paper", yref="paper", xanchor="left", yanchor="bottom",
                          text=labels[0], showarrow=False),
                     dict(x=1, y=1.0, xref="paper", yref="paper", xanchor="right", yanchor="bottom",
                          text=labels[1], showarrow=False)])
    fig.update_xaxes(showticklabels=False, showgrid=False, range=[-0.5, w - 0.5], constrain="domain")
    fig.update_yaxes(showticklabels=False, showgrid=False, range=[h - 0.5, -0.5], scaleanchor="x")
    return fig


def kernel_figure(kernel: np.ndarray, *, title: str = "Blur kernel", height: int = 300) -> go.Figure:
    """The deblur kernel as a heatmap over pixel offsets from its centre, with a colour bar of its
    weights (the page's kernel sums to 1)."""
    k = np.asarray(kernel, dtype=np.float64)
    while k.ndim > 2 and k.shape[0] == 1:
        k = k[0]
    if k.ndim != 2 or k.size == 0:
        raise InputError(f"the kernel must be a 2-D array; got shape {np.shape(kernel)}")
    if not np.isfinite(k).all():
        raise InputError("the kernel holds NaN or infinite values; it must be finite")
    dy = (np.arange(k.shape[0]) - (k.shape[0] - 1) / 2).tolist()
    dx = (np.arange(k.shape[1]) - (k.shape[1] - 1) / 2).tolist()
    fig = go.Figure(go.Heatmap(z=k, x=dx, y=dy, colorscale="Viridis", zmin=min(0.0, float(k.min())),
                               zmax=float(k.max()), colorbar=dict(title=dict(text="weight"), thickness=12),
                               hovertemplate="(%{x}, %{y}) px: %{z:.4f}<extra></extra>"))
    fig.update_xaxes(title_text="offset (px)", constrain="domain")
    fig.update_yaxes(title_text="offset (px)", autorange="reversed", scaleanchor="x")
    fig.update_layout(title=dict(text=f"{title}, {k.shape[0]}×{k.shape[1]} px, sum {k.sum():.3g}",
                                 font=dict(size=13)),
                      height=height, template="plotly_dark", margin=dict(l=10, r=10, t=35, b=10))
    return fig


_STOP_WORDS = {"detected": "detected stop (the variance minimum held for P iterations)",
               "budget": "iteration budget spent", "user": "stopped by the user"}


def _t_star_name(summary: dict[str, Any]) -> str:
    if summary.get("es_fired"):
        return "Detected stop t*"
    if stop_of(summary) == "user":
        return "Best candidate t* (not a detected stop)"
    return "t* (minimum within the budget, not a detected stop)"


def result_table(summary: dict[str, Any]) -> list[dict[str, str]]:
    """A finished run's summary as rows ``{"name", "value", "unit"}`` for a table (all strings, so
    the column has one type); keys that are absent or None are left out, each warning is a row."""

    def db(v: Any) -> str:
        return f"{float(v):.2f}"

    spec: list[tuple[str, str, Any, str]] = [
        ("stop", "How the run ended", lambda v: _STOP_WORDS.get(str(v), str(v)), ""),
        ("es_iteration", _t_star_name(summary), int, "iteration"),
        ("stopped_iteration", "Last iteration run", int, "iteration"),
        ("max_iters", "Iteration budget", int, "iterations"),
        ("es_psnr", "PSNR at t* vs reference", db, "dB"),
        ("es_psnr_vs_input", "PSNR at t* vs input", db, "dB"),
        ("last_psnr", "PSNR of the last output vs reference", db, "dB"),
        ("last_psnr_vs_input", "PSNR of the last output vs input", db, "dB"),
        ("peak_psnr", "Best PSNR along the run (known only with a reference)", db, "dB"),
        ("peak_iteration", "Best PSNR at", int, "iteration"),
        ("input_psnr", "PSNR of the input vs reference", db, "dB"),
        ("wall_seconds", "Wall time", lambda v: f"{float(v):.1f}", "s"),
        ("ms_per_iteration", "Time per iteration", lambda v: f"{float(v):.1f}", "ms"),
        ("device", "Device", str, ""),
        ("preset", "Preset", str, ""),
    ]
    rows = []
    for key, name, fmt, unit in spec:
        v = summary.get(key)
        if key == "stop" and v is None and summary:
            v = stop_of(summary)
        if v is None:
            continue
        rows.append({"name": name, "value": str(fmt(v)), "unit": unit})
    for w in summary.get("warnings") or []:
        rows.append({"name": "Warning", "value": str(w), "unit": ""})
    return rows


def scrub_choices(snapshot_iterations: Sequence[int], t_star: int | None) -> tuple[list[int], int | None]:
    """The iterations a snapshot scrubber offers, and where it starts.

    Snapshots are saved every few iterations, so t* is usually not one of them; it is added (its image
    is the result) and the scrubber starts there. Without t* it starts at the last snapshot.
    """
    its = sorted({int(i) for i in snapshot_iterations} | ({int(t_star)} if t_star is not None else set()))
    if not its:
        return [], None
    return its, int(t_star) if t_star is not None else its[-1]
