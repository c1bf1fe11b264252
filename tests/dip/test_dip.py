"""DIP solver, presets, ``restore`` and the restore workflow on tiny inputs (CPU)."""

import io
from dataclasses import replace

import numpy as np
import pytest
import torch

from engine.core.errors import InputError
from engine.core.metrics import psnr
from engine.dip import operators as dg
from engine.dip import workflow
from engine.dip.presets import PRESETS, default_preset, get_preset
from engine.dip.priors.deep_decoder import DeepDecoder
from engine.dip.priors.skip import SkipNet, classic_skip_net
from engine.dip.solver import DIPSolver

torch.set_num_threads(1)

# a tiny recipe: 3 levels of 4 channels, short window
TINY = replace(get_preset("fast-preview"), name="tiny", net_kwargs={"channels": (4, 4, 4), "skip": 2},
               z_channels=4, window=3, patience=4, max_iters={"default": 12})


def _img(c=3, h=24, w=20, seed=0):
    a = np.random.default_rng(seed).random((h, w, c)).astype(np.float32)
    return a[:, :, 0] if c == 1 else a


def test_classic_net_is_the_original_recipe():
    s = DIPSolver(_img(3, 8, 8), preset="classic", max_iters=1)
    n = sum(q.numel() for q in s.net.parameters())
    assert 2.0e6 < n < 2.4e6 and s.net.multiple == 32 and isinstance(s.net, SkipNet)
    assert s.z.shape == (1, 32, 64, 64) and 0 <= float(s.z.min()) and float(s.z.max()) <= 0.1
    assert [type(m) for m in classic_skip_net(1).modules()] == [type(m) for m in s.net.modules()]
    p = get_preset("classic")
    assert (p.lr, p.lr_schedule, p.z_channels, p.z_scale, p.loss) == (0.01, "constant", 32, 0.1, "mse")
    assert p.jitter("denoise") == pytest.approx(1 / 30)
    assert p.jitter("inpaint") == p.jitter("sr4") == 0.03 and p.jitter("sr8") == 0.05
    assert (p.window, p.patience, p.budget("denoise")) == (100, 1000, 3000)


def test_presets_documented_and_default():
    for p in PRESETS.values():
        assert p.description and p.window >= 2 and p.patience >= 1 and p.budget("denoise") > 0
        assert p.lr_at(1) == pytest.approx(p.lr)
    assert default_preset(torch.device("cpu")) == "cpu" and default_preset("cuda:0") == "classic"
    cpu = get_preset("cpu")
    assert cpu.lr_at(cpu.lr_horizon + 50) == pytest.approx(cpu.lr * cpu.lr_min)
    with pytest.raises(InputError):
        get_preset("nope")


@pytest.mark.parametrize("c,h,w", [(1, 24, 20), (3, 24, 20), (3, 13, 37)])
def test_any_size_grey_rgb(c, h, w):
    s = DIPSolver(_img(c, h, w), preset=TINY, max_iters=2)
    assert s.padded[0] % 8 == 0 and s.padded[1] % 8 == 0
    st = s.step()
    assert st["output"].shape == (1, c, h, w) and st["iteration"] == 1
    out = s.output()
    assert out.shape == ((h, w) if c == 1 else (h, w, c)) and out.dtype == np.float32
    assert 0 <= out.min() and out.max() <= 1


@pytest.mark.parametrize("task", ["denoise", "inpaint", "sr", "deblur", "jpeg"])
def test_every_task_runs(task):
    clean = _img(3, 16, 16)
    d = dg.degrade(clean, task, factor=2, blur_sigma=1.0, quality=20)
    s = DIPSolver(d["observed"], preset=TINY, task=task, factor=2, mask=d.get("mask"),
                  kernel=d.get("kernel"), max_iters=3)
    s.run()
    assert s.output().shape == clean.shape and s.iteration == 3


@pytest.mark.parametrize("loss", ["mse", "l1", "huber"])
def test_losses(loss):
    s = DIPSolver(_img(1, 16, 16), preset=TINY, loss=loss, max_iters=2)
    assert np.isfinite(s.step()["loss"])
    with pytest.raises(InputError):
        DIPSolver(_img(1, 16, 16), preset=TINY, loss="l3")


def test_seed_determinism():
    def go(seed):
        s = DIPSolver(_img(3, 16, 16), preset=TINY, seed=seed, max_iters=4)
        return [s.step()["loss"] for _ in range(4)], s.output("last")
    (la, oa), (lb, ob), (lc, _) = go(3), go(3), go(4)
    assert la == lb and np.array_equal(oa, ob) and la != lc


def test_checkpoint_resume_same_continuation():
    obs = _img(3, 16, 16)
    a = DIPSolver(obs, preset=TINY, max_iters=30, patience=100)
    for _ in range(5):
        a.step()
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    b = DIPSolver(obs, preset=TINY, max_iters=30, patience=100, seed=99)  # seed is overwritten by the state
    b.load_state_dict(state)
    for _ in range(6):
        sa, sb = a.step(), b.step()
        assert sa["loss"] == sb["loss"] and sa["es_variance"] == sb["es_variance"]
    assert np.array_equal(a.output("last"), b.output("last"))
    assert a.es.best_iteration == b.es.best_iteration


def test_early_stop_returns_output_at_t_star():
    s = DIPSolver(_img(3, 16, 16), preset=TINY, window=2, patience=2, max_iters=200)
    s.run()
    assert s.es_fired and s.iteration == s.es.best_iteration + 2
    assert np.array_equal(s.output("best"), np.clip(dg.to_numpy(s.es.best_output), 0, 1))
    none = DIPSolver(_img(3, 16, 16), preset=TINY, stopping="none", max_iters=3)
    none.run()
    assert none.es is None and none.iteration == 3 and np.array_equal(none.output(), none.output("last"))


def test_options_are_keyword_only():
    with pytest.raises(TypeError):
        DIPSolver(_img(1, 16, 16), None, TINY)


def test_run_callback_only_observes():
    seen = []
    s = DIPSolver(_img(1, 16, 16), preset=TINY, stopping="none", max_iters=5)
    out = s.run(callback=lambda st: seen.append(st["iteration"]) or True)  # a True return stops nothing
    assert seen == [1, 2, 3, 4, 5] and s.iteration == 5 and np.array_equal(out, s.output())


def test_run_cancel_from_the_callback_propagates_and_the_solver_can_go_on():
    from engine.jobs import Cancelled

    def cancel_at_3(st):
        if st["iteration"] == 3:
            raise Cancelled()

    obs = _img(1, 16, 16)
    s = DIPSolver(obs, preset=TINY, stopping="none", max_iters=6)
    with pytest.raises(Cancelled):
        s.run(callback=cancel_at_3)
    assert s.iteration == 3
    s.run()
    full = DIPSolver(obs, preset=TINY, stopping="none", max_iters=6)
    full.run()
    assert np.array_equal(s.output(), full.output())


def test_restore_on_a_tiny_image():
    from engine import DIPSolver as Public
    from engine import restore

    assert Public is DIPSolver
    clean = _img(3, 16, 16)
    noisy = dg.add_noise(clean, 0.1, seed=1)
    states = []
    r = restore(noisy, reference=clean, preset=TINY, max_iters=8, window=3, patience=100, seed=2,
                device="cpu", callback=states.append)
    assert r.image.shape == clean.shape and r.image.dtype == np.float32
    assert r.stopped_iteration == 8 and not r.es_fired and 3 <= r.es_iteration <= 8
    assert [m["iteration"] for m in r.metrics] == list(range(1, 9)) and len(states) == 8
    assert {"loss", "lr", "es_variance", "psnr"} <= set(r.metrics[-1])
    assert r.metrics[0]["es_variance"] is None and r.metrics[-1]["es_variance"] is not None
    assert r.psnr == pytest.approx(psnr(clean, r.image), abs=1e-4)
    assert r.peak_psnr == max(m["psnr"] for m in r.metrics)
    assert r.metrics[r.peak_iteration - 1]["psnr"] == r.peak_psnr
    # the same run as the solver's
    s = DIPSolver(noisy, preset=TINY, max_iters=8, window=3, patience=100, seed=2)
    s.run()
    assert np.array_equal(r.image, s.output("best"))
    assert [m["loss"] for m in r.metrics] == [st["loss"] for st in states]


def test_restore_without_stopping_or_reference():
    from engine import restore

    obs = _img(1, 16, 16)
    r = restore(obs, preset=TINY, stopping="none", max_iters=3, device="cpu")
    assert r.es_iteration is None and r.stopped_iteration == 3 and r.psnr is None and r.peak_psnr is None
    s = DIPSolver(obs, preset=TINY, stopping="none", max_iters=3)
    s.run()
    assert np.array_equal(r.image, s.output("last"))
    with pytest.raises(InputError, match="reference"):
        restore(obs, reference=_img(1, 8, 8), preset=TINY, max_iters=1, device="cpu")
    with pytest.raises(InputError, match="channels"):
        restore(obs, reference=_img(3, 16, 16), preset=TINY, max_iters=1, device="cpu")
    with pytest.raises(TypeError):
        restore(obs, preset=TINY, max_iter=3)  # a misspelt option is not silently ignored


def test_deep_decoder_and_bad_inputs():
    net = DeepDecoder(8, 3, channels=8, levels=3)
    assert net(torch.rand(1, 8, 4, 4)).shape == (1, 3, 32, 32)
    s = DIPSolver(_img(3, 20, 20), preset=get_preset("deep-decoder", net_kwargs={"channels": 8, "levels": 3},
                                                     z_channels=8), max_iters=2)
    assert s.z.shape[2:] == (3, 3)  # 20 -> 24, the multiple of 2**3
    s.step()
    with pytest.raises(InputError):
        DIPSolver(np.zeros((8, 8, 2), np.float32), preset=TINY)
    with pytest.raises(InputError):
        DIPSolver(np.full((8, 8), np.nan, np.float32), preset=TINY)


# ----------------------------------------------------------------------------- workflow

class FakeRun:
    """In-memory stand-in for engine.runs.Run with the methods the workflow uses."""

    def __init__(self, params, arrays):
        self.spec = {"kind": "restore", "params": params}
        self.arrays = dict(arrays)
        self.images, self.snaps, self.ckpt, self.rows = {}, [], None, []

    def load_array(self, name):
        if name not in self.arrays:
            raise FileNotFoundError(name)
        return self.arrays[name]

    def has_array(self, name):
        return name in self.arrays

    def save_array(self, name, arr):
        self.arrays[name] = np.asarray(arr)

    def save_image(self, name, img):
        self.images[name] = img

    def save_snapshot(self, iteration, img):
        self.snaps.append(iteration)

    def save_checkpoint(self, state):
        buf = io.BytesIO()
        torch.save(state, buf)
        self.ckpt = buf.getvalue()

    def load_checkpoint(self):
        return None if self.ckpt is None else torch.load(io.BytesIO(self.ckpt), weights_only=True)

    def truncate_metrics(self, after_iteration):
        self.rows = [r for r in self.rows if r["iteration"] <= after_iteration]


class FakeCtx:
    def __init__(self, run, cancel_after=None, resume=False):
        self.run, self.device, self.resume = run, torch.device("cpu"), resume
        self.published, self.cancel_after = [], cancel_after

    def cancelled(self):
        return self.cancel_after is not None and len(self.published) >= self.cancel_after

    def publish(self, iteration, metrics, preview=None, log=True, **extra):
        self.published.append((iteration, dict(metrics), preview, dict(extra)))
        self.run.rows.append({"iteration": iteration, **metrics})


@pytest.fixture
def tiny_preset(monkeypatch):
    monkeypatch.setitem(PRESETS, "tiny", TINY)
    return "tiny"


def test_workflow_denoise_with_reference(tiny_preset):
    clean = _img(3, 16, 16)
    noisy = dg.add_noise(clean, 0.1)
    run = FakeRun({"task": "denoise", "preset": tiny_preset, "max_iters": 40, "window": 3, "patience": 5,
                   "preview_every": 2, "ssim_every": 3, "snapshot_every": 4, "checkpoint_every": 5},
                  {"observed": noisy, "reference": clean})
    ctx = FakeCtx(run)
    summary = workflow.run(ctx)
    for k in ("es_iteration", "stopped_iteration", "wall_seconds", "device", "preset", "es_psnr", "peak_psnr",
              "peak_iteration", "input_psnr"):
        assert k in summary
    assert summary["es_fired"] and summary["stopped_iteration"] == summary["es_iteration"] + 5
    assert set(run.arrays) >= {"result", "last"} and "result" in run.images
    it, metrics, preview, extra = ctx.published[-1]
    assert {"loss", "psnr", "es_variance"} <= set(metrics)
    assert any("ssim" in m for _, m, _, _ in ctx.published)
    assert preview is not None and preview.dtype == np.uint8
    assert {"es_iteration", "patience_left", "best_psnr", "es_psnr"} <= set(extra)
    assert run.snaps and run.snaps[0] == 4 and run.ckpt is not None


def test_workflow_cancel_and_resume(tiny_preset):
    obs = _img(1, 16, 16)
    params = {"preset": tiny_preset, "stopping": "none", "max_iters": 12, "checkpoint_every": 3}
    full = FakeRun(params, {"observed": obs})
    workflow.run(FakeCtx(full))
    run = FakeRun(params, {"observed": obs})
    s1 = workflow.run(FakeCtx(run, cancel_after=5))
    assert s1["state"] == "cancelled" and s1["stopped_iteration"] == 5
    s2 = workflow.run(FakeCtx(run, resume=True))
    assert s2["stopped_iteration"] == 12 and s2["state"] == "done"
    np.testing.assert_array_equal(run.arrays["result"], full.arrays["result"])


def test_workflow_inpaint_run_to_budget(tiny_preset):
    clean = _img(3, 16, 16)
    d = dg.degrade(clean, "inpaint", fraction=0.3)
    run = FakeRun({"task": "inpaint", "preset": tiny_preset, "max_iters": 15, "window": 2, "patience": 2,
                   "run_to_budget": True, "stopping": "emv"}, {"observed": d["observed"], "mask": d["mask"]})
    summary = workflow.run(FakeCtx(run))
    assert summary["stopped_iteration"] == 15 and summary["stopping"] == "emv"
    assert "es_psnr" not in summary
