"""The one device policy of the engine (the CLI, the app and every solver use it)."""

from __future__ import annotations

from engine.core.errors import InputError


def pick_device(requested: str | None = None) -> str:
    """The torch device name to run on.

    Parameters
    ----------
    requested : {None, "", "auto", "cpu", "cuda", "cuda:N"}
        ``None``/``"auto"``: CUDA when present, else the CPU (the fallback every CI machine takes).
        ``"cpu"``: the CPU. ``"cuda"``/``"cuda:N"``: that GPU.

    Returns
    -------
    str
        ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    Raises
    ------
    InputError
        CUDA asked for by name when there is none (a user who asks for a GPU is told, not silently
        given a CPU run that takes a hundred times longer), or an unknown name.
    """
    import torch

    name = "auto" if requested is None else str(requested).strip()
    if name in ("", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return "cpu"
    if name == "cuda" or (name.startswith("cuda:") and name[5:].isdigit()):
        if not torch.cuda.is_available():
            raise InputError(f"device {name!r} was asked for, but no CUDA device is available; use cpu or auto")
        index = int(name[5:]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise InputError(f"device {name!r} does not exist; this machine has "
                             f"{torch.cuda.device_count()} CUDA device(s)")
        return name
    raise InputError(f"unknown device {name!r}; expected auto, cpu, cuda or cuda:N")
