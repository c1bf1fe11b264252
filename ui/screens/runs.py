"""Every run in the store: a table of named runs, reopen on its own page, rename, export, delete, compare curves."""

from __future__ import annotations

import datetime as dt
from typing import Any

import streamlit as st

from engine.core.errors import InputError
from engine.runs import KIND_LABELS, Run
from ui.edit import EDITABLE_KINDS, URL_PARAM
from ui.jobs import manager
from ui.views.curves import compare_figure

#: the page script (relative to ui/app.py) that shows a run of each kind, and the URL parameter naming it there
PAGE_OF = {"restore": ("screens/restoration.py", "run"), "mri": ("screens/mri.py", "run"),
           "cdi": ("screens/phase_retrieval.py", "run"), "gpr": ("screens/generalized_pr.py", "run"),
           "gpr_sweep": ("screens/generalized_pr.py", "sweep"), "xray": ("screens/xray.py", "run"),
           "federated": ("screens/federated.py", "run")}
#: kinds whose runs log one curve over iterations, and the metrics worth comparing (in this order)
COMPARE_METRICS = {"restore": ["psnr", "loss", "es_variance", "ssim"],
                   "mri": ["psnr", "loss", "es_variance", "ssim"],
                   "cdi": ["llk", "llk_free"], "gpr": ["error", "loss"]}
LOG_METRICS = ("loss", "es_variance", "llk", "llk_free", "error")
ACTIVE = ("queued", "running")
_FLASH = "runs-flash"
_CONFIRM = "runs-confirm-delete"


def kind_label(kind: str) -> str:
    return KIND_LABELS.get(kind, kind)


def _shape_text(shape: tuple[int, ...] | list | None, *, colour_last: bool = False) -> str:
    if not shape:
        return ""
    dims = [int(n) for n in shape]
    if colour_last and len(dims) == 3 and dims[-1] in (3, 4):
        return "×".join(map(str, dims[:2])) + " RGB"
    return "×".join(map(str, dims))


def size_text(run: Run, summary: dict) -> str:
    """The size of the run's input, in the words of its kind."""
    p = run.spec.get("params") or {}
    kind = run.kind
    if kind == "restore":
        return _shape_text(run.array_shape("observed"), colour_last=True)
    if kind == "mri":
        return _shape_text(run.array_shape("kspace"))
    if kind == "cdi":
        return _shape_text(run.array_shape("intensity"))
    if kind == "gpr":
        shape = summary.get("shape") or ([p["size"], p["size"]] if p.get("size") else [p.get("n", 64)])
        text = f"n = {shape[0]}" if len(shape) == 1 else _shape_text(shape)
        return text + (f", m/n = {summary['ratio']:.2g}" if isinstance(summary.get("ratio"), (int, float)) else "")
    if kind == "gpr_sweep":
        return f"n = {p.get('n', 64)}, {p.get('trials', 20)} trials"
    if kind == "xray":
        images = p.get("images") or []
        if len(images) == 1:
            return _shape_text(run.array_shape(str(images[0].get("array", "img0"))))
        return f"{len(images)} films"
    if kind == "federated":
        return f"{p.get('sites', 4)} sites, {p.get('size', 64)} px"
    return ""


def method_text(run: Run, summary: dict) -> str:
    """The preset, recipe or algorithm of the run, whichever its kind has."""
    p = run.spec.get("params") or {}
    kind = run.kind
    if kind in ("restore", "mri"):
        return str(summary.get("preset") or p.get("preset") or "")
    if kind == "cdi":
        return str(summary.get("recipe") or p.get("recipe") or "default recipe")
    if kind == "gpr":
        alg = summary.get("algorithm_label") or p.get("algorithm") or ""
        init = summary.get("init") or p.get("init")
        return f"{alg} ({init})" if alg and init else str(alg)
    if kind == "gpr_sweep":
        algs = p.get("algorithms") or []
        return ", ".join(map(str, algs)) if isinstance(algs, list) else str(algs)
    if kind == "xray":
        return str(summary.get("model") or p.get("model") or "")
    if kind == "federated":
        regimes = p.get("regimes") or ["fedavg", "centralised", "local"]
        return f"{p.get('norm', 'all')} · {', '.join(map(str, regimes))}"
    return str(p.get("preset") or p.get("recipe") or p.get("algorithm") or "")


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def key_result(kind: str, summary: dict) -> str:
    """The one number a run of ``kind`` is judged by, from its summary.json; "" when it has none (yet)."""
    if not summary:
        return ""
    if kind in ("restore", "mri"):
        v, it = _num(summary.get("es_psnr")), summary.get("es_iteration")
        if v is not None:
            return f"{v:.2f} dB at t* = {it}" if it is not None else f"{v:.2f} dB"
        return f"t* = {it}" if it is not None else ""
    if kind == "cdi":
        v = _num(summary.get("llk_per_pixel"))
        return "" if v is None else f"LLK {v:.3g}"
    if kind == "gpr":
        v = _num(summary.get("error"))
        if v is None:
            return ""
        return f"error {v:.1e}" + (" (recovered)" if summary.get("success") is True else "")
    if kind == "gpr_sweep":
        table = summary.get("success")
        if not isinstance(table, dict):
            return ""
        parts = []
        for alg, rates in table.items():
            ok = sorted(float(r) for r, rate in (rates or {}).items() if _num(rate) is not None and rate >= 0.9)
            parts.append(f"{alg} {ok[0]:g}" if ok else f"{alg} —")
        return "m/n at 90%: " + ", ".join(parts) if parts else ""
    if kind == "xray":
        results = summary.get("results") or []
        if len(results) == 1:
            r = results[0]
            if r.get("label") == "NOT_ASSESSED":
                return "not assessed"
            p = _num(r.get("probability"))
            return f"{r.get('label')} (P = {p:.2f})" if p is not None else str(r.get("label", ""))
        counts: dict[str, int] = {}
        for r in results:
            label = "not assessed" if r.get("label") == "NOT_ASSESSED" else str(r.get("label"))
            counts[label] = counts.get(label, 0) + 1
        return ", ".join(f"{n} {label}" for label, n in counts.items())
    if kind == "federated":
        rows = [r for r in summary.get("table") or [] if _num(r.get("auc_pooled")) is not None]
        if not rows:
            return ""
        best = max(rows, key=lambda r: r["auc_pooled"])
        return f"best AUC {best['auc_pooled']:.3f} ({best.get('label', '')})"
    return ""


def _date(run: Run) -> str:
    t = run.created()
    return dt.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M") if t is not None else ""


def row_of(run: Run) -> dict:
    status = run.status()
    summary = run.read_json("summary.json") or {}
    return {"name": run.name, "kind": kind_label(run.kind), "input": run.input_label(),
            "size": size_text(run, summary), "preset / recipe / algorithm": method_text(run, summary),
            "key result": key_result(run.kind, summary), "state": status.get("state", "unknown"),
            "date": _date(run), "id": run.id}


def unique_names(runs: list[Run]) -> dict[str, str]:
    """Run id -> its name, with the id's tail added where two runs share a name (legends must tell them apart)."""
    names = {r.id: r.name for r in runs}
    seen: dict[str, int] = {}
    for n in names.values():
        seen[n] = seen.get(n, 0) + 1
    return {rid: (f"{n} ({rid[-6:]})" if seen[n] > 1 else n) for rid, n in names.items()}


def is_busy(run: Run) -> bool:
    """Queued or running here, or locked by another server on the same runs folder."""
    if manager().is_active(run.id):
        return True
    try:
        return run.is_locked()
    except OSError:  # a read-only runs folder: Delete then says why it cannot
        return False


# ------------------------------------------------------------------------------------------- page
st.title("Runs")
store = manager().store
runs = store.list()
st.caption(f"{len(runs)} runs in `{store.root}` (set `INVERSE_STUDIO_RUNS` or `inverse-studio app --runs-dir` "
           "to keep them elsewhere)")
flash = st.session_state.pop(_FLASH, None)
if flash:
    st.success(flash, icon=":material/check_circle:")
if not runs:
    st.info("No runs yet. Start one from a workflow page.")
    st.stop()

kinds = sorted({r.kind for r in runs}, key=kind_label)
pick_kinds = st.multiselect("Kinds", kinds, default=kinds, format_func=kind_label, key="kinds")
shown = [r for r in runs if r.kind in pick_kinds]
st.dataframe([row_of(r) for r in shown], hide_index=True, key="runs-table")
by_id = {r.id: r for r in runs}
names = unique_names(runs)

left, right = st.columns(2)
with left:
    st.subheader("Run")
    ids = [r.id for r in shown]
    if not ids:
        st.info("No run of the kinds picked above.")
    else:
        pick = st.selectbox("Run", ids, format_func=lambda i: f"{names[i]} · {kind_label(by_id[i].kind)}",
                            key="reopen-pick")
        run = by_id[pick]
        busy = is_busy(run)
        row = st.container(horizontal=True)  # buttons as wide as their labels, wrapping on a narrow screen
        c = [row] * 4
        if c[0].button("Open", key="reopen", icon=":material/open_in_new:", type="primary",
                       help="Show the run on its own page"):
            page = PAGE_OF.get(run.kind)
            if page is None:
                st.error(f"no page shows runs of kind {run.kind}")
            else:
                script, param = page  # a sweep is named by ?sweep=, every other run by ?run=
                st.switch_page(script, query_params={param: pick})
        editable = run.kind in EDITABLE_KINDS and run.kind in PAGE_OF
        if c[1].button("Edit as a new run", key="edit-run", icon=":material/edit:", disabled=not editable,
                       help="Open the run's page with its settings filled in, to change one and run again; this "
                            "run stays as it is" if editable else
                            f"The {kind_label(run.kind)} page has no settings to take from a run"):
            st.switch_page(PAGE_OF[run.kind][0], query_params={URL_PARAM: pick})
        c[2].download_button("Export ZIP", run.export_zip, f"{pick}.zip", "application/zip", key="export",
                             icon=":material/download:", on_click="ignore",
                             help="The run folder (spec, status, metrics, arrays, images, summary) as a zip")
        if c[3].button("Delete", key="delete", icon=":material/delete:", disabled=busy,
                       help="Stop the run first" if busy else "Remove the run and all its files"):
            st.session_state[_CONFIRM] = pick
        if st.session_state.get(_CONFIRM) == pick:
            st.warning(f"Delete **{names[pick]}** and all its files? This cannot be undone.",
                       icon=":material/warning:")
            d = st.columns(2)
            if d[0].button("Delete for good", key="delete-yes", type="primary"):
                st.session_state.pop(_CONFIRM, None)
                try:
                    store.delete(pick)
                except InputError as e:
                    st.error(str(e))
                except OSError as e:
                    st.error(f"the run could not be deleted: {(e.strerror or str(e)).lower()}")
                else:
                    stale = [k for k in st.session_state if str(k).startswith(("reopen-pick", "compare-pick-"))]
                    for k in stale:  # they may hold the run that is gone
                        st.session_state.pop(k, None)
                    st.session_state[_FLASH] = f"Deleted {names[pick]}."
                    st.rerun()
            if d[1].button("Keep it", key="delete-no"):
                st.session_state.pop(_CONFIRM, None)
                st.rerun()
        new_name = st.text_input("Name", run.name, max_chars=80, key=f"name-{pick}")
        if st.button("Save name", key="rename", icon=":material/edit:"):
            try:
                saved = run.rename(new_name)
            except InputError as e:
                st.error(str(e))
            else:
                st.session_state[_FLASH] = f"Renamed to {saved}."
                st.rerun()

with right:
    st.subheader("Compare")
    comparable = [k for k in kinds if k in COMPARE_METRICS]
    if not comparable:
        st.info("Compare draws the curves of runs that log one over iterations (restoration, MRI, CDI, GPR).")
    else:
        newest = next(r.kind for r in runs if r.kind in COMPARE_METRICS)
        ckind = st.selectbox("Kind", comparable, index=comparable.index(newest), format_func=kind_label,
                             key="compare-kind",
                             help="Only runs of one kind are compared: their curves measure the same thing")
        of_kind = [r.id for r in runs if r.kind == ckind]
        chosen = st.multiselect("Runs to compare", of_kind, default=of_kind[:2], max_selections=6,
                                format_func=names.get, key=f"compare-pick-{ckind}")
        if chosen:
            series = {names[c]: by_id[c].metrics() for c in chosen}
            logged = {k for rows in series.values() for row in rows for k in row}
            keys = [k for k in COMPARE_METRICS[ckind] if k in logged]
            if keys:
                key = st.selectbox("Metric", keys, key=f"compare-metric-{ckind}")
                log_y = st.checkbox("Log scale", value=key in LOG_METRICS, key=f"logy-{ckind}-{key}")
                st.plotly_chart(compare_figure(series, key, key, log_y=log_y), key="compare-chart")
            else:
                st.info("These runs have no logged metrics yet.")
