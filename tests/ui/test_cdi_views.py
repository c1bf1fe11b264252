"""Pure builders of the Beamline CDI page (ui/views/cdi.py): images, legends, log ticks, profiles."""

from __future__ import annotations

import numpy as np
import pytest

from engine.cdi.simulate import simulate_pattern
from engine.cdi.solver import CDISolver
from engine.core.errors import InputError
from ui.views import cdi as v


@pytest.fixture(scope="module")
def sim():
    return simulate_pattern(None, shape=(64, 64), beamstop=2.0, gaps=[(1, 4, 1)], seed=0)


def test_mask_overlay_colours_found_and_given_pixels(sim):
    mask = sim.mask.copy()
    mask[0, 0] = True  # found on the page (not in the given mask)
    rgb = v.mask_overlay(sim.intensity, mask, user=sim.mask)
    assert rgb.dtype == np.uint8 and rgb.shape == (64, 64, 3)
    assert tuple(rgb[0, 0]) == tuple(np.round(np.array(v.FOUND_COLOR) * 255).astype(int))
    r, c = np.argwhere(sim.mask)[0]
    assert tuple(rgb[r, c]) == tuple(np.round(np.array(v.USER_COLOR) * 255).astype(int))
    grey = rgb[~mask]
    assert (grey[:, 0] == grey[:, 1]).all() and (grey[:, 1] == grey[:, 2]).all()


def test_mask_overlay_is_downsampled_without_losing_thin_gaps():
    a = np.ones((1024, 1024), np.float32)
    m = np.zeros_like(a, bool)
    m[:, 601] = True  # one column: would vanish with plain striding by 2
    rgb = v.mask_overlay(a, m, max_side=512)
    assert rgb.shape == (512, 512, 3)
    assert (rgb[:, 300] != rgb[:, 100]).any(axis=-1).all()


def test_block_any_and_middle_slice():
    m = np.zeros((5, 5), bool)
    m[4, 4] = True
    assert v.block_any(m, 2).shape == (3, 3) and v.block_any(m, 2)[2, 2]
    assert v.middle_slice(np.arange(27).reshape(3, 3, 3)).tolist() == [[9, 10, 11], [12, 13, 14], [15, 16, 17]]


def test_mask_rows_read_the_unmeasured_mask_report():
    info = {"mode": "auto", "auto_masked": 30, "zero_groups": 2, "zeros_total": 40, "negative": 0, "nan": 1,
            "hot": 3, "saturated": 0, "user": 5, "masked_total": 39}
    rows = v.mask_rows(info, 100)
    assert rows[0] == {"what": "zero groups (beamstop, gaps, dead border): 2 group(s)", "pixels": 30, "%": 30.0}
    assert {r["what"]: r["pixels"] for r in rows}["hot pixels"] == 3
    assert rows[-1]["what"] == "not measured in all" and rows[-1]["pixels"] == 39
    assert v.mask_rows({"mode": "none", "user": 2}, 10) == [{"what": "from the given mask", "pixels": 2, "%": 20.0}]


def test_autocorrelation_support_is_the_solvers_initial_support(sim):
    sup = v.autocorrelation_support(sim.intensity, sim.mask, threshold=0.15)
    solver = CDISolver(sim.intensity, mask=sim.mask, recipe="ER", options={"autocorr_threshold": 0.15})
    assert np.array_equal(sup, np.fft.fftshift(solver.support[0].numpy()))
    ac = v.autocorrelation(sim.intensity, sim.mask)
    assert ac.shape == (64, 64) and ac.max() == pytest.approx(1.0) and ac[32, 32] == pytest.approx(1.0)
    # a lower threshold gives a larger support
    assert v.autocorrelation_support(sim.intensity, sim.mask, threshold=0.05).sum() >= sup.sum()


def test_disc_and_box_supports_are_centred():
    d = v.disc_support((64, 64), 10)
    assert d[32, 32] and d[32, 42] and not d[32, 43] and d.sum() == pytest.approx(np.pi * 100, rel=0.05)
    b = v.box_support((64, 64), [10, 20])
    rows, cols = np.nonzero(b)
    assert b.sum() == 200 and (rows.min(), rows.max(), cols.min(), cols.max()) == (27, 36, 22, 41)
    assert v.box_support((16, 16, 16), [4, 6]).sum() == 4 * 4 * 6  # the first size repeats over depth
    assert v.disc_support((9, 9, 9), 1).sum() == 7


def test_fit_support_centres_a_smaller_image_and_refuses_bad_ones():
    img = np.zeros((20, 20, 3), np.float32)
    img[5:15, 5:15] = 1.0
    out = v.fit_support(img, (64, 64))
    rows, cols = np.nonzero(out)
    assert out.sum() == 100 and (rows.min(), cols.min()) == (27, 27)
    assert v.fit_support(np.pad(np.ones((4, 4)), 30), (64, 64)).sum() == 16
    with pytest.raises(InputError, match="larger than the pattern"):
        v.fit_support(np.ones((80, 64)), (64, 64))
    with pytest.raises(InputError, match="empty"):
        v.fit_support(np.zeros((64, 64)), (64, 64))
    with pytest.raises(InputError, match="2D"):
        v.fit_support(np.ones((4, 4, 4, 4)), (64, 64))


def test_support_overlay_tints_inside_and_outlines():
    ac = np.zeros((32, 32), np.float32)
    sup = v.disc_support((32, 32), 8)
    rgb = v.support_overlay(ac, sup)
    assert rgb.shape == (32, 32, 3) and rgb.dtype == np.uint8
    assert (rgb[0, 0] == 0).all()  # outside, black autocorrelation
    edge = tuple(np.round(np.array(v.SUPPORT_COLOR) * 255).astype(int))
    assert tuple(rgb[16, 24]) == edge  # on the outline
    assert 0 < rgb[16, 16, 0] < edge[0]  # inside: tinted, not the outline


def test_amplitude_phase_and_wheel():
    x = np.exp(1j * np.linspace(-3, 3, 64))[None, :] * np.ones((64, 1)) * np.linspace(0, 2, 64)[:, None]
    amp, top = v.amplitude_rgb(x)
    assert amp.shape == (64, 64, 3) and top == pytest.approx(2.0)
    ph = v.phase_rgb(x)
    assert (ph[0] == 0).all()  # amplitude 0: black
    assert not (ph[-1, 0] == ph[-1, -1]).all()  # hue follows the phase
    w = v.phase_wheel(64)
    assert w.shape == (64, 64, 4) and w[0, 0, 3] == 0 and w[32, 32, 3] == 255
    # phase 0 (right) is cyan, as in the composite (hue 0.5)
    r, g, b = w[32, 60, :3].astype(int)
    assert g > 150 and b > 150 and r < 60
    assert w[32, 32, :3].max() < 40  # zero amplitude in the middle: dark


def test_colorbar_image_is_labelled_rgb():
    img = v.colorbar_image(0.0, 1234.0, height=200, label="|x|")
    assert img.shape == (200, 86, 3) and img.dtype == np.uint8
    assert (img[:, 30:] > 200).any()  # tick labels drawn in light grey


def test_log_ticks_are_powers_of_ten():
    assert v.log_ticks(3, 4e4) == ([10.0, 100.0, 1000.0, 10000.0], ["10¹", "10²", "10³", "10⁴"])
    vals, text = v.log_ticks(50, 3000)
    assert text == ["5×10¹", "10²", "2×10²", "5×10²", "10³", "2×10³"]
    vals, text = v.log_ticks(120, 180)  # narrow: the ticks around it
    assert text == ["10²", "2×10²"]
    assert v.log_ticks(1e-3, 1e-1)[1][0] == "10⁻³"
    assert v.log_ticks(0, 0) == ([], [])


def test_log_curve_figure_uses_the_ticks_and_thins():
    rows = [{"iteration": i, "llk": 1e4 / (1 + i), "llk_free": 2e4 / (1 + i)} for i in range(3000)]
    fig = v.log_curve_figure(rows, ["llk", "llk_free"], "Log-likelihood per pixel", labels={"llk": "LLK"})
    assert fig.layout.title.text == "Log-likelihood per pixel"
    assert fig.layout.yaxis.type == "log" and list(fig.layout.yaxis.ticktext) == ["10¹", "10²", "10³", "10⁴"]
    assert fig.layout.yaxis.tickmode == "array" and fig.layout.yaxis.exponentformat == "power"
    assert len(fig.data) == 2 and len(fig.data[0].x) <= 800 and fig.data[0].name == "LLK"
    narrow = v.log_curve_figure([{"iteration": 0, "llk": 120}, {"iteration": 1, "llk": 180}], ["llk"], "t")
    lo, hi = narrow.layout.yaxis.range
    assert lo <= 2 and hi >= np.log10(200)


def test_support_and_bar_figures():
    fig = v.support_figure([(0, 213), (1, 500), (2, 4000)], reference=5000, reference_label="true object")
    assert list(fig.data[0].y) == [213, 500, 4000] and fig.layout.yaxis.type == "log"
    assert "10³" in fig.layout.yaxis.ticktext and fig.layout.shapes
    bar = v.bar_log_figure([100.0, 250.0], "LLK per start")
    assert bar.layout.yaxis.type == "log" and list(bar.layout.yaxis.ticktext) == ["10²", "2×10²"]


# ----------------------------------------------------------------------------- images with their scale

def _ramp_object(n: int = 64) -> np.ndarray:
    # phase from -3 to 3 rad along the columns, amplitude 0 to 2 down the rows
    return np.exp(1j * np.linspace(-3, 3, n))[None, :] * np.linspace(0, 2, n)[:, None]


def test_amplitude_figure_has_a_titled_colour_bar():
    fig = v.amplitude_figure(_ramp_object(), title="Amplitude (best start)")
    hm = fig.data[0]
    assert hm.type == "heatmap" and hm.zmin == 0 and hm.zmax == pytest.approx(2.0)
    assert hm.colorbar.title.text == "amplitude"
    assert np.asarray(hm.z).shape == (64, 64) and fig.layout.yaxis.autorange == "reversed"
    big = v.amplitude_figure(np.ones((600, 600)), max_side=256)
    assert max(np.asarray(big.data[0].z).shape) <= 256


def test_phase_figure_is_cyclic_from_minus_pi_to_pi_in_radians():
    fig = v.phase_figure(_ramp_object())
    hm = fig.data[0]
    assert hm.zmin == pytest.approx(-np.pi) and hm.zmax == pytest.approx(np.pi)
    assert list(hm.colorbar.ticktext) == ["−π", "−π/2", "0", "π/2", "π"]
    assert np.allclose(hm.colorbar.tickvals, [-np.pi, -np.pi / 2, 0, np.pi / 2, np.pi])
    assert hm.colorbar.title.text == "phase (rad)"
    scale = hm.colorscale
    assert scale[0][1] == scale[-1][1] == "rgb(255,0,0)"  # cyclic: -pi and +pi meet
    z = np.asarray(hm.z, dtype=float)
    assert np.isnan(z[0]).all()  # amplitude 0: no phase drawn
    assert z[-1, 0] == pytest.approx(-3) and z[-1, -1] == pytest.approx(3)


def test_phase_colours_match_the_composite_wheel():
    ang = np.linspace(-np.pi, np.pi, 37)[None, :]
    ref = v.phase_rgb(np.exp(1j * ang)).astype(int)[0]
    ours = np.round(255 * v.phase_color(ang)[0]).astype(int)
    assert np.abs(ours - ref).max() <= 1
    assert tuple(np.round(255 * v.phase_color(np.array(0.0)))) == (0, 255, 255)  # cyan at 0


def test_phase_wheel_figure_is_a_disc_labelled_in_radians():
    fig = v.phase_wheel_figure(wedges=72)
    bp = fig.data[0]
    assert bp.type == "barpolar" and len(bp.theta) == 72
    ax = fig.layout.polar.angularaxis
    assert list(ax.ticktext) == ["0", "π/2", "±π", "−π/2"] and list(ax.tickvals) == [0, 90, 180, 270]
    assert ax.direction == "counterclockwise" and ax.rotation == 0
    assert bp.marker.color[0] == "rgb(0,255,255)"  # phase 0 at the right: cyan
    assert bp.marker.color[36] == "rgb(255,0,0)"  # ±pi at the left: red
    rings = v.phase_wheel_figure(wedges=8, rings=4).data[0]
    assert len(rings.theta) == 32 and list(rings.base[::8]) == [0, 0.25, 0.5, 0.75]
    assert rings.marker.color[0] != rings.marker.color[-8]  # darker towards the centre
    with pytest.raises(InputError):
        v.phase_wheel_figure(wedges=2)


def test_model_intensity_matches_the_pattern_of_the_truth(sim):
    model = v.model_intensity(sim.obj, sim.intensity, sim.mask)
    obs = ~sim.mask
    assert model[obs].sum() == pytest.approx(sim.intensity[obs].sum(), rel=1e-4)
    r, meas = v.radial_profile(sim.intensity, sim.mask)
    _, calc = v.radial_profile(model, sim.mask)
    ok = np.isfinite(meas) & (meas > 10)
    assert np.allclose(calc[ok], meas[ok], rtol=0.2)
    # a cropped object (as the result is stored) gives the same model
    nz = np.nonzero(np.abs(sim.obj) > 0)
    crop = sim.obj[nz[0].min() - 2:nz[0].max() + 3, nz[1].min() - 2:nz[1].max() + 3]
    assert np.allclose(v.model_intensity(crop, sim.intensity, sim.mask)[32, 32], model[32, 32], rtol=0.05)


def test_radial_profile_ignores_unmeasured_pixels():
    a = np.ones((16, 16))
    m = np.zeros((16, 16), bool)
    a[8, 8], m[8, 8] = 1e6, True
    r, p = v.radial_profile(a, m, bins=8)
    assert len(r) == 8 and np.isfinite(p[1:]).all() and np.allclose(p[1:], 1.0)
    assert np.isnan(p[0]) or p[0] == pytest.approx(1.0)


def test_profile_figure_and_log_pair(sim):
    model = v.model_intensity(sim.obj, sim.intensity, sim.mask)
    r, meas = v.radial_profile(sim.intensity, sim.mask)
    _, calc = v.radial_profile(model, sim.mask)
    fig = v.profile_figure(r, meas, calc)
    assert [t.name for t in fig.data] == ["measured", "|F x|² of the result"] and fig.layout.yaxis.type == "log"
    left, right = v.log_pair(sim.intensity, model, sim.mask)
    assert left.shape == right.shape == (64, 64, 3) and left.dtype == np.uint8


def test_compare_to_truth_undoes_shift_twin_and_phase(sim):
    from engine.cdi.registration import twin

    moved = np.roll(twin(sim.obj), (3, -2), axis=(0, 1)) * np.exp(0.7j)
    t, a, s = v.compare_to_truth(sim.obj, moved)
    assert s > 0.99 and t.shape == a.shape and t.shape[0] < 64
