"""Inverse Studio engine: operators, priors, solvers, stopping rules, runs and jobs.

Nothing in this package imports streamlit; the UI in ``ui/`` sits on top of it.
"""

__version__ = "0.1.0"
