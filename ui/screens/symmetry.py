"""Symmetry breaking for learned phase retrieval: the 4 x 2 error table and the failure it fixes."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from engine.core.errors import InputError
from engine.symmetry.data import SETTINGS, make_split, symmetric_copies
from engine.symmetry.train import ASSETS, error_modulo, key, load, predict

st.title("Symmetry breaking (learned PR)")
st.caption("|F x| is the same for x, every circular shift of x and its flip x(-r). A network trained end to "
           "end from |F x| to x on data that holds such copies sees one input with several right answers; "
           "trained with MSE it learns their mean. Mapping every training target to one representative of "
           "its class (the symmetry-breaking restriction: centred, and the flip that is heavier above its "
           "centre of mass) removes the ambiguity. Two small U-Nets per setting, identical but for that "
           "restriction, trained on the same generated objects (Tayal et al., 2020, reproduce the trend).")


@st.cache_resource(show_spinner="Loading the trained networks…")
def networks(folder: str) -> tuple[dict, dict]:
    return load(folder)


@st.cache_data(show_spinner=False)
def test_split(setting: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    x, _, truth = make_split(n, setting, restricted=False, seed=seed, split=1)
    return x, truth


def table_rows(doc: dict) -> list[dict]:
    """One row per setting: our two errors, their ratio and the paper's two figures where quoted."""
    rows = []
    for s in SETTINGS:
        plain, restr = doc["rows"].get(key(s, False)), doc["rows"].get(key(s, True))
        if plain is None or restr is None:
            continue
        paper = doc.get("paper", {}).get(s, {})
        rows.append({"symmetries in the data": s,
                     "without restriction": round(plain["test_error_mean"], 3),
                     "with restriction": round(restr["test_error_mean"], 3),
                     "ratio": round(plain["test_error_mean"] / max(restr["test_error_mean"], 1e-9), 2),
                     "paper: without": paper.get("plain"), "paper: with": paper.get("restricted")})
    return rows


def images_figure(panels: list[tuple[str, np.ndarray]]) -> go.Figure:
    """Images side by side on one shared grey scale, with a colour bar."""
    vmax = max(float(np.max(p)) for _, p in panels) or 1.0
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=[t for t, _ in panels], horizontal_spacing=0.02)
    for i, (_, img) in enumerate(panels, start=1):
        fig.add_trace(go.Heatmap(z=img[::-1], zmin=0, zmax=vmax, colorscale="gray", showscale=i == len(panels),
                                 colorbar=dict(title="value", thickness=12)), row=1, col=i)
        fig.update_xaxes(visible=False, row=1, col=i)
        fig.update_yaxes(visible=False, scaleanchor=f"x{i}", row=1, col=i)
    fig.update_layout(height=260, margin=dict(l=5, r=5, t=40, b=5), template="plotly_dark")
    for a in fig.layout.annotations:
        a.font.size = 12
    return fig


try:
    doc, nets = networks(str(ASSETS))
except InputError as e:
    st.error(f"{e}. The page needs the shipped networks in assets/symmetry/.")
    st.stop()

st.subheader("Test error modulo the symmetries")
st.dataframe(table_rows(doc), hide_index=True, width="stretch")
cfg = doc["config"]
st.caption(f"Relative L2 error min over the setting's symmetries g of ‖f(|F x|) − g(x)‖ / ‖x‖, mean over "
           f"{cfg['n_test']} test objects never trained on (a network returning any valid copy scores 0). "
           f"{cfg['n_train']} training objects, {cfg['epochs']} epochs, {doc['parameters_per_net']:,} parameters "
           f"per network, {cfg['data']['canvas']}² canvas; "
           f"training all eight took {doc['wall_seconds']:.0f} s on {doc['machine']['cpus']} CPU cores "
           f"({doc['machine']['threads']} torch thread, load {doc['machine']['loadavg_end'][0]}). The paper's "
           "figures (its Table 1, shift settings) come from its own data and networks: compare the trend "
           "(the ratio), not the values. Retrain: `python -m engine.symmetry.train --out DIR`.")

st.subheader("What goes wrong without the restriction")
c = st.columns([1, 1, 2])
setting = c[0].selectbox("Symmetries in the data", SETTINGS, index=SETTINGS.index("shift"), key="sym_setting")
x_test, truth = test_split(setting, 64, int(cfg["seed"]))
i = int(c[1].number_input("Test object", 0, len(truth) - 1, 0, key="sym_index"))
plain = predict(nets[key(setting, False)], x_test[i:i + 1])[0]
restr = predict(nets[key(setting, True)], x_test[i:i + 1])[0]
copies = symmetric_copies(truth[i], setting)
mean = copies.mean(axis=0)
err = {name: float(error_modulo(img, truth[i], setting)) for name, img in
       (("plain", plain), ("restricted", restr), ("mean", mean))}
st.plotly_chart(images_figure([
    ("truth x", truth[i]),
    (f"without restriction (error {err['plain']:.2f})", np.clip(plain, 0, None)),
    (f"with restriction (error {err['restricted']:.2f})", np.clip(restr, 0, None)),
    (f"mean of the {len(copies)} symmetric copies ({err['mean']:.2f})", mean),
]), width="stretch", key="sym_images")
if setting == "none":
    st.caption("With no symmetric copies in the data the restriction changes nothing: both networks are the "
               "same problem, and their errors differ only by training noise.")
else:
    norm = max(float(np.linalg.norm(truth[i])), 1e-12)
    gap = max(float(np.linalg.norm(truth[i] - c)) for c in copies) / norm
    st.caption(f"Identical inputs, distant outputs: the {len(copies)} copies of x have exactly the same |F x| "
               f"(input distance 0) but lie up to {gap:.2f} apart (relative L2). A network without the restriction "
               "is asked for all of them and "
               "learns something near their mean (the fourth image), which is no solution at all; with the "
               "restriction every class has one target and the map is learnable.")
