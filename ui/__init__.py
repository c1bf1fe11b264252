"""Inverse Studio's Streamlit user interface (pages over the engine)."""
