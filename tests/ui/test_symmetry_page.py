"""AppTest of the symmetry-breaking page: the shipped table and the failure-mode images."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

PAGE = str(Path(__file__).resolve().parents[2] / "ui" / "screens" / "symmetry.py")


def test_table_and_images_from_the_shipped_networks():
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    assert not at.error
    table = at.dataframe[0].value
    assert list(table["symmetries in the data"]) == ["none", "flip", "shift", "shift+flip"]
    assert table["paper: with"].notna().sum() == 2
    assert any("mean of the" in str(c.value) or "Identical inputs" in str(c.value) for c in at.caption)
    at.selectbox(key="sym_setting").set_value("shift+flip").run()
    assert not at.exception
    at.number_input(key="sym_index").set_value(3).run()
    assert not at.exception


def test_missing_networks_are_reported(monkeypatch, tmp_path):
    import engine.symmetry.train as train

    monkeypatch.setattr(train, "ASSETS", tmp_path)
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.run()
    assert any("no trained symmetry networks" in e.value for e in at.error)
