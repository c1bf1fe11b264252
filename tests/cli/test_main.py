"""One parser, one error policy: bad input exits 2 with one line, a bug exits 1 and leaves a log."""

from __future__ import annotations

import pytest

from engine.cli import main
from engine.cli.main import MODULES, build_parser


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_help_lists_every_subcommand(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("app", "restore", "runs", "pr", "gpr-sweep", "xray"):
        assert name in out


def test_no_command_prints_usage_and_exits_2(capsys):
    assert main([]) == 2
    assert "usage" in capsys.readouterr().out


@pytest.mark.parametrize("argv, prog", [
    (["nope"], "inverse-studio"),
    (["restore"], "inverse-studio restore"),
    (["restore", "in.png", "--out", "o", "--task", "paint"], "inverse-studio restore"),
    (["pr", "--out", "o"], "inverse-studio pr"),
    (["gpr-sweep", "--n", "x", "--ratios", "2", "--out", "o.json"], "inverse-studio gpr-sweep"),
])
def test_bad_command_lines_exit_2_with_one_line(capsys, argv, prog):
    assert main(argv) == 2
    err = _lines(capsys.readouterr().err)
    assert len(err) == 1 and err[0].startswith(f"{prog}: error: "), err
    assert "Traceback" not in err[0]


def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["restore", str(tmp_path / "missing.png"), "--out", str(out)]) == 2
    err = _lines(capsys.readouterr().err)
    assert len(err) == 1 and "missing.png" in err[0] and "no such file" in err[0]
    assert not out.exists()


def test_device_flag_is_checked_the_same_way_everywhere(tmp_path, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for argv in (["restore", "x.png", "--out", str(tmp_path / "a"), "--device", "cuda"],
                 ["gpr-sweep", "--n", "4", "--ratios", "2", "--out", str(tmp_path / "s.json"), "--device", "cuda"]):
        assert main(argv) == 2
        assert "no CUDA device" in capsys.readouterr().err


def test_a_bug_exits_1_with_one_line_and_the_traceback_in_a_log(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("INVERSE_STUDIO_LOGS", str(tmp_path / "logs"))

    def broken(args):
        raise RuntimeError("secret internal detail")

    import engine.cli.runs as runs_cmd

    monkeypatch.setattr(runs_cmd, "run", broken)
    assert main(["runs", "--runs-dir", str(tmp_path)]) == 1
    err = _lines(capsys.readouterr().err)
    assert len(err) == 1 and "unexpected RuntimeError" in err[0]
    assert "secret internal detail" not in err[0]
    logs = list((tmp_path / "logs").glob("error-*.log"))
    assert len(logs) == 1
    text = logs[0].read_text()
    assert "Traceback" in text and "secret internal detail" in text


def test_ctrl_c_exits_130(tmp_path, capsys, monkeypatch):
    import engine.cli.runs as runs_cmd

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(runs_cmd, "run", interrupted)
    assert main(["runs", "--runs-dir", str(tmp_path)]) == 130
    assert "interrupted" in capsys.readouterr().err


def test_every_module_registers_a_subcommand():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert len(sub.choices) >= len(MODULES)


def test_app_file_is_found_without_importing_the_ui():
    from engine.cli.app import app_file

    path = app_file()
    assert path.name == "app.py" and path.parent.name == "ui" and path.is_file()


def test_metrics_csv_never_follows_a_planted_temp_link(tmp_path):
    from engine.cli.common import write_metrics_csv

    target = tmp_path / "precious.txt"
    target.write_text("keep")
    (tmp_path / "metrics.csv.tmp").symlink_to(target)  # the old predictable temp name
    write_metrics_csv([{"iteration": 1, "loss": 0.5, "extra": 2}], tmp_path / "metrics.csv")
    assert target.read_text() == "keep"
    assert (tmp_path / "metrics.csv").read_text().splitlines()[0] == "iteration,loss,psnr,ssim,es_variance,extra"
    assert not list(tmp_path.glob(".metrics-*"))
