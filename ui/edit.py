"""Edit as a new run: fill a page's widgets with the settings a run was made with, and close the run.

A page declares, for each kind of run it shows, a :class:`Form`: its widget keys, each with a
:class:`Setting` that reads the widget's value from the run's params (``spec.json``) and the values the
widget accepts. :func:`take_edit`, called at the top of the page before any widget exists, writes the
values into ``st.session_state`` (Streamlit takes a widget's value from there only before the widget is
drawn in a script run). A value that is missing, of the wrong type or not among the widget's options,
as a damaged or older spec.json may hold, is skipped and the user is told which settings kept the page's
defaults and why.

The request comes from the run header's "Edit as a new run" button (:func:`edit_button`, through the
session) or from the Runs page (``?edit=<run id>`` in the URL of the run's page).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import streamlit as st
from streamlit import config as st_config

from engine.core.errors import InputError
from engine.runs import Run
from ui.jobs import URL_PARAM_OF_KIND, manager

#: the kinds of run whose page can take an edit request
EDITABLE_KINDS = frozenset({"restore", "mri", "cdi", "gpr", "gpr_sweep", "federated"})
#: the URL parameter the Runs page uses to ask a page for an edit
URL_PARAM = "edit"

_REQUEST = "_edit_request"
_NOTICE = "_edit_notice"

# Writing a run's value into a widget that also has a default (value=, index=) is what the edit is for:
# Streamlit then uses the written value, as intended, and would log a warning meant for a mistake.
st_config.set_option("global.disableWidgetStateDuplicationWarning", True)


@dataclass(frozen=True)
class Setting:
    """How one widget's value is read back from a run's params.

    Parameters
    ----------
    label : str
        The widget's name as the user sees it, for the message about what was not restored.
    get : callable
        ``params -> value``; a ``KeyError`` (or other lookup error) or ``None`` means the run does not
        record it.
    kind : type
        ``int``, ``float``, ``bool``, ``str`` or ``list`` (a multiselect: every item among ``options``).
    options : sequence, optional
        The values the widget offers (a selectbox, radio or select slider).
    lo, hi : float, optional
        The bounds of a number input or slider.
    when : callable, optional
        ``params -> bool``: whether the widget applies to the run at all (one shown only in some modes).
        A setting that does not apply is left alone and not reported.
    """

    label: str
    get: Callable[[dict], Any]
    kind: type = str
    options: Sequence | None = None
    lo: float | None = None
    hi: float | None = None
    when: Callable[[dict], bool] | None = None


@dataclass(frozen=True)
class Form:
    """A page's widgets for one kind of run.

    ``settings`` maps widget keys to :class:`Setting`; ``notes`` gives, in plain words, what of the run
    cannot be restored (an uploaded file); ``derive`` may add to the params what older runs did not
    record but the run folder tells (the size of a sample from its saved reference).
    """

    settings: dict[str, Setting]
    notes: Callable[[dict], list[str]] | None = None
    derive: Callable[[Run, dict], dict] | None = None


@dataclass
class Restored:
    """What :func:`restore_settings` made of a run's params."""

    values: dict[str, Any] = field(default_factory=dict)  # widget key -> value to write
    skipped: list[str] = field(default_factory=list)  # "label: why", for the user
    reset: list[str] = field(default_factory=list)  # widget keys that go back to the page's default


def _show(v: Any) -> str:
    text = repr(v) if isinstance(v, str) else str(v)
    return text if len(text) <= 40 else text[:37] + "…"


def check_value(value: Any, s: Setting) -> tuple[bool, Any]:
    """``(True, value as the widget takes it)`` or ``(False, why not, in words)``."""
    if value is None:
        return False, "not recorded in the run"
    if s.kind is bool:
        if not isinstance(value, bool):
            return False, f"the run has {_show(value)}, not yes or no"
    elif s.kind is int:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or int(value) != value:
            return False, f"the run has {_show(value)}, not a whole number"
        value = int(value)
    elif s.kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return False, f"the run has {_show(value)}, not a number"
        value = float(value)
    elif s.kind is list:
        if not isinstance(value, list):
            return False, f"the run has {_show(value)}, not a list"
        bad = [v for v in value if s.options is not None and v not in list(s.options)]
        if bad:
            return False, f"the run has {', '.join(map(_show, bad))}, which this page does not offer"
        return True, list(value)
    elif not isinstance(value, str):
        return False, f"the run has {_show(value)}, not text"
    if s.options is not None:
        options = list(s.options)
        # == as the widget itself compares; a bool never stands for 0 or 1 here
        if not any(value == o and isinstance(value, bool) == isinstance(o, bool) for o in options):
            return False, f"the run has {_show(value)}, which this page does not offer"
        value = next(o for o in options if value == o)  # the option itself (4 vs 4.0 in a select slider)
    if s.lo is not None and value < s.lo or s.hi is not None and value > s.hi:
        return False, f"the run has {_show(value)}, outside {_show(s.lo)} to {_show(s.hi)}"
    return True, value


def restore_settings(params: dict, settings: dict[str, Setting]) -> Restored:
    """The widget values a run's ``params`` give, checked against each widget; nothing is written."""
    out = Restored()
    for key, s in settings.items():
        try:
            if s.when is not None and not s.when(params):
                continue
            value = s.get(params)
        except (LookupError, TypeError, ValueError, AttributeError):
            value = None
        ok, got = check_value(value, s)
        if ok:
            out.values[key] = got
        else:
            out.skipped.append(f"{s.label}: {got}")
            out.reset.append(key)
    return out


def edit_button(where: Any, run: Run) -> None:
    """The "Edit as a new run" button of a run's header (nothing for a kind whose page cannot edit)."""
    if run.kind not in EDITABLE_KINDS:
        return
    if where.button("Edit as a new run", key=f"edit-{run.id}", icon=":material/edit:",
                    help="Fill the settings with this run's and close it: change one and press Run for a new "
                         "run. This run stays as it is on the Runs page."):
        request_edit(run.id)
        st.rerun()  # the whole page, also from a live panel: the widgets are set before they are drawn


def request_edit(run_id: str) -> None:
    """Ask the page, at its next full run, to take ``run_id``'s settings."""
    st.session_state[_REQUEST] = run_id


def _close(run: Run) -> None:
    """Back to the setup, as the run header's Close does."""
    from ui.widgets import forget_run  # ui.widgets draws the button of this module

    forget_run(run.id)
    param = URL_PARAM_OF_KIND.get(run.kind, "run")
    if st.query_params.get(param) == run.id:
        st.query_params.pop(param, None)


def take_edit(forms: dict[str, Form]) -> dict[str, Any] | None:
    """At the top of a page, before its widgets: carry out a pending edit request, and say how it went.

    ``forms`` maps the kinds of run the page shows to their :class:`Form`. Returns the values written
    (widget key -> value) when a request was carried out in this script run, else None.
    """
    rid = st.session_state.pop(_REQUEST, None) or st.query_params.get(URL_PARAM)
    st.query_params.pop(URL_PARAM, None)
    written = None
    if rid:
        written = _apply(str(rid), forms)
    _show_notice(forms)
    return written


def _apply(rid: str, forms: dict[str, Form]) -> dict[str, Any] | None:
    try:
        run = manager().store.get(rid)
        kind = run.kind
    except (InputError, ValueError, OSError) as e:
        st.session_state.pop(_NOTICE, None)
        st.error(f"No settings to edit: {e}", icon=":material/error:")
        return None
    form = forms.get(kind)
    if form is None:
        st.error(f"Run `{run.id}` is a {kind} run: this page cannot take its settings. Open it from the Runs "
                 "page on its own page.", icon=":material/error:")
        return None
    params = run.spec.get("params")
    if not isinstance(params, dict):
        st.error(f"Run `{run.id}` cannot be edited: its spec.json has no settings (missing or damaged).",
                 icon=":material/error:")
        return None
    params = dict(params)
    notes: list[str] = []
    try:
        if form.derive is not None:
            params = form.derive(run, params)
        if form.notes is not None:
            notes = list(form.notes(params))
    except (LookupError, TypeError, ValueError, AttributeError, OSError):
        pass  # a damaged spec: the settings below say what could not be restored
    got = restore_settings(params, form.settings)
    for key in got.reset:
        st.session_state.pop(key, None)  # the page's default, not a value left from before
    for key, value in got.values.items():
        st.session_state[key] = value
    _close(run)
    st.session_state[_NOTICE] = {"rid": run.id, "kind": kind, "count": len(got.values), "skipped": got.skipped,
                                 "notes": notes, "values": got.values}
    return got.values


def _show_notice(forms: dict[str, Form]) -> None:
    """The edit's message, until a run is shown on the page again (a new one, or another opened)."""
    notice = st.session_state.get(_NOTICE)
    if not notice or notice.get("kind") not in forms:
        return
    if any(st.query_params.get(URL_PARAM_OF_KIND.get(k, "run")) for k in forms):
        st.session_state.pop(_NOTICE, None)
        return
    # Streamlit drops the value of a widget that a script run did not draw (the page waits for an upload
    # before its solver settings, a mode hides one): write the run's value again until it is drawn
    for key, value in notice.get("values", {}).items():
        if key not in st.session_state:
            st.session_state[key] = value
    st.info(f"The settings of run `{notice['rid']}` are filled in ({notice['count']} restored). Change any of "
            "them and press **Run** to start a new run; that run stays as it is on the Runs page.",
            icon=":material/edit:")
    if notice["skipped"]:
        st.warning("Not restored, so the page's default is shown: " + "; ".join(notice["skipped"]) + ".",
                   icon=":material/warning:")
    for note in notice["notes"]:
        st.warning(note, icon=":material/upload_file:")


def edited_kind() -> str | None:
    """The kind of the run whose settings the page now shows (until a run is shown again), or None."""
    notice = st.session_state.get(_NOTICE)
    return notice.get("kind") if notice else None
