"""Every run in the store: status, key numbers, reopen, and compare curves."""

from __future__ import annotations

import datetime as dt

import streamlit as st

from ui.jobs import manager, set_active_run
from ui.views.curves import compare_figure

st.title("Runs")

# which page shows which kind of run
PAGE_OF = {"restore": "restoration", "cdi": "phase-retrieval", "gpr": "generalized-pr",
           "gpr_sweep": "generalized-pr", "xray": "xray"}
PAGE_FILE = {"restoration": "screens/restoration.py",
             "phase-retrieval": "screens/phase_retrieval.py",
             "generalized-pr": "screens/generalized_pr.py", "xray": "screens/xray.py"}

store = manager().store
runs = store.list()
st.caption(f"{len(runs)} runs in `{store.root}` (set `INVERSE_STUDIO_RUNS` or `inverse-studio app --runs-dir` "
           "to keep them elsewhere)")
if not runs:
    st.info("No runs yet. Start one from a workflow page.")
    st.stop()

kinds = sorted({r.kind for r in runs})
pick_kinds = st.multiselect("Kinds", kinds, default=kinds, key="kinds")
table = []
for r in runs:
    if r.kind not in pick_kinds:
        continue
    st_ = r.status()
    summ = r.read_json("summary.json") or {}
    created = st_.get("created")
    params = r.spec.get("params", {})
    table.append({
        "run": r.id, "kind": r.kind, "state": st_.get("state"), "iteration": st_.get("iteration", 0),
        "created": dt.datetime.fromtimestamp(created).strftime("%Y-%m-%d %H:%M:%S") if created else "",
        "preset / recipe": params.get("preset") or params.get("recipe", ""),
        "t*": summ.get("es_iteration"), "PSNR at t*": summ.get("es_psnr"),
        "wall s": summ.get("wall_seconds"), "message": st_.get("message", ""),
    })
st.dataframe(table, hide_index=True, key="runs-table")

ids = [row["run"] for row in table]
left, right = st.columns(2)
with left:
    st.subheader("Reopen")
    pick = st.selectbox("Run", ids, key="reopen-pick")
    if st.button("Open", key="reopen", icon=":material/open_in_new:") and pick:
        run = store.get(pick)
        page = PAGE_OF.get(run.kind)
        if page is None:
            st.error(f"no page shows runs of kind {run.kind}")
        else:
            set_active_run(pick)
            st.switch_page(PAGE_FILE[page], query_params={"run": pick})
with right:
    st.subheader("Compare")
    chosen = st.multiselect("Runs to compare", ids, default=ids[:2] if len(ids) >= 2 else ids,
                            max_selections=6, key="compare-pick")
    if chosen:
        series = {c: store.get(c).metrics() for c in chosen}
        keys = sorted({k for rows in series.values() for row in rows for k, v in row.items()
                       if isinstance(v, (int, float)) and k not in ("iteration", "t")})
        if keys:
            default = keys.index("psnr") if "psnr" in keys else 0
            key = st.selectbox("Metric", keys, index=default, key="compare-metric")
            log_y = st.checkbox("Log scale", value=key in ("loss", "es_variance", "llk", "error"), key="logy")
            st.plotly_chart(compare_figure(series, key, key, log_y=log_y),
                            key="compare-chart")
        else:
            st.info("These runs have no logged metrics yet.")
