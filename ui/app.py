"""Inverse Studio: the Streamlit entry point (``inverse-studio app``)."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

HERE = Path(__file__).resolve().parent

st.set_page_config(page_title="Inverse Studio", page_icon=":material/blur_on:", layout="wide")

# (section, file, title, icon, url path)
LAYOUT = [
    ("Restore", "restoration.py", "Restoration (DIP)", ":material/auto_fix_high:", "restoration"),
    ("Phase retrieval", "phase_retrieval.py", "Beamline CDI", ":material/blur_circular:", "phase-retrieval"),
    ("Phase retrieval", "generalized_pr.py", "Generalized PR", ":material/school:", "generalized-pr"),
    ("Review", "xray.py", "X-ray review", ":material/radiology:", "xray"),
    ("Runs", "runs.py", "Runs", ":material/list:", "runs"),
]

PAGES: dict[str, list] = {}
for section, file, title, icon, url in LAYOUT:
    path = HERE / "pages" / file
    if path.exists():
        PAGES.setdefault(section, []).append(
            st.Page(path, title=title, icon=icon, url_path=url, default=(file == "restoration.py")))

st.navigation(PAGES).run()
