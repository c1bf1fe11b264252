"""Inverse Studio: the Streamlit entry point (``inverse-studio app``)."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

HERE = Path(__file__).resolve().parent

st.set_page_config(page_title="Inverse Studio", page_icon=":material/blur_on:", layout="wide")

# the page scripts live in screens/, not pages/: a pages/ folder beside the entry point
# would switch Streamlit into its automatic multipage mode on a server's first request
SCREENS = HERE / "screens"
PAGES = {
    "Restore": [
        st.Page(SCREENS / "restoration.py", title="Restoration (DIP)", icon=":material/auto_fix_high:",
                url_path="restoration", default=True),
        st.Page(SCREENS / "mri.py", title="MRI (DIP)", icon=":material/neurology:", url_path="mri"),
    ],
    "Phase retrieval": [
        st.Page(SCREENS / "phase_retrieval.py", title="Beamline CDI", icon=":material/blur_circular:",
                url_path="phase-retrieval"),
        st.Page(SCREENS / "generalized_pr.py", title="Generalized PR", icon=":material/school:",
                url_path="generalized-pr"),
        st.Page(SCREENS / "symmetry.py", title="Symmetry breaking", icon=":material/flip:",
                url_path="symmetry"),
    ],
    "Review": [
        st.Page(SCREENS / "xray.py", title="X-ray review", icon=":material/radiology:", url_path="xray"),
        st.Page(SCREENS / "xray_robustness.py", title="X-ray robustness", icon=":material/shield:",
                url_path="xray-robustness"),
        st.Page(SCREENS / "federated.py", title="Federated learning", icon=":material/hub:",
                url_path="federated"),
    ],
    "Runs": [
        st.Page(SCREENS / "runs.py", title="Runs", icon=":material/list:", url_path="runs"),
    ],
}

st.navigation(PAGES).run()
