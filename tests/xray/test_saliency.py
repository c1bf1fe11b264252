"""Saliency methods and the model-randomisation sanity check on a tiny, briefly trained CNN."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from engine.core.errors import InputError
from engine.xray import saliency as sal
from engine.xray.model import CXRNet

SIZE = 32


def _blob_batch(n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Noise images; class 1 has a bright 8x8 square at a random place."""
    x = torch.rand(n, 1, SIZE, SIZE, generator=gen) * 0.3
    y = torch.randint(0, 2, (n,), generator=gen)
    for i in range(n):
        if y[i]:
            r, c = torch.randint(0, SIZE - 8, (2,), generator=gen).tolist()
            x[i, 0, r : r + 8, c : c + 8] += 0.7
    return x, y


@pytest.fixture(scope="module")
def tiny() -> tuple[nn.Module, torch.Tensor]:
    # trained once per module on one thread (tiny tensors: more threads only add synchronisation)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        gen = torch.Generator().manual_seed(0)
        model = CXRNet(widths=(4, 8, 8), blocks=(1, 1), stem_stride=2, dropout=0.0)
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        for _ in range(25):
            xb, yb = _blob_batch(32, gen)
            loss = nn.functional.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        x = torch.rand(1, 1, SIZE, SIZE, generator=gen) * 0.3
        x[0, 0, 4:12, 18:26] += 0.7
        return model, x
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("method", list(sal.METHODS))
def test_each_method_gives_non_constant_map_of_right_shape(tiny, method):
    model, x = tiny
    m = sal.compute(model, x, method, target=1, out_shape=(50, 40))
    expected = {"gradcam": (4, 4), "gradcampp": (4, 4), "ig": (SIZE, SIZE)}
    if method in expected:
        assert m.map.shape == expected[method]
    else:  # occlusion: patch 4, stride 2 on 32 px -> 15 x 15 positions
        assert m.map.shape == (15, 15)
    assert m.upsampled.shape == (50, 40)
    assert np.ptp(m.map) > 0 and np.isfinite(m.map).all()
    if method != "ig":  # IG's legend is clipped at a percentile
        assert m.vmin <= float(m.map.min()) and float(m.map.max()) <= m.vmax
    assert m.signed == (method in ("ig", "occlusion"))


def test_target_class_changes_the_map(tiny):
    model, x = tiny
    a = sal.compute(model, x, "ig", target=1).map
    b = sal.compute(model, x, "ig", target=0).map
    np.testing.assert_allclose(a, -b, atol=1e-5)  # two-class log-odds are opposite


def test_occlusion_finds_the_blob(tiny):
    model, x = tiny
    m = sal.compute(model, x, "occlusion", target=1)
    mask = np.zeros((SIZE, SIZE), bool)
    mask[4:12, 18:26] = True
    assert m.upsampled[mask].mean() > m.upsampled[~mask].mean()


def test_inplace_relu_after_hooked_layer():
    torch.manual_seed(0)
    conv = nn.Conv2d(1, 4, 3, padding=1)
    model = nn.Sequential(conv, nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    x = torch.rand(1, 1, 16, 16)
    cam = sal.GradCAM(model, conv).attribute(x, 1)
    assert cam.shape == (1, 16, 16) and np.isfinite(cam).all()


@pytest.mark.parametrize("method", list(sal.METHODS))
def test_a_batch_gives_the_maps_of_its_images(tiny, method):
    model, x = tiny
    gen = torch.Generator().manual_seed(1)
    xs = torch.cat([x, torch.rand(2, 1, SIZE, SIZE, generator=gen)])
    options = {"steps": 8, "batch": 5} if method == "ig" else {"batch": 7} if method == "occlusion" else {}
    explainer = sal.make_method(model, method, **options)
    maps = explainer(xs, [1, 0, 1], out_shape=(20, 30))
    assert [m.target for m in maps] == [1, 0, 1] and all(m.upsampled.shape == (20, 30) for m in maps)
    for i, m in enumerate(maps):
        one = sal.compute(model, xs[i : i + 1], method, [1, 0, 1][i], out_shape=(20, 30), **options)
        np.testing.assert_allclose(m.map, one.map, rtol=1e-4, atol=1e-5 * max(1.0, float(np.abs(one.map).max())))
        assert m.grid == one.grid and m.signed == one.signed
    with pytest.raises(InputError, match="targets for a batch"):
        explainer(xs, [1, 0])


def test_cam_methods_differ_only_in_their_weights(tiny):
    model, x = tiny
    a, g = sal.GradCAM(model).activations_and_gradients(x, [1])
    assert issubclass(sal.GradCAMPlusPlus, sal.CAM) and issubclass(sal.IntegratedGradients, sal.SaliencyMethod)

    class Positive(sal.CAM):  # a new CAM variant is one method
        key = "positive"

        def weights(self, activations, gradients):
            return torch.relu(gradients).mean(dim=(2, 3))

    cam = Positive(model).attribute(x, 1)[0]
    expected = torch.relu((torch.relu(g).mean(dim=(2, 3))[:, :, None, None] * a).sum(1))[0]
    np.testing.assert_allclose(cam, expected.numpy(), rtol=1e-6)


def test_occlusion_fill_image_and_dense_map(tiny):
    model, x = tiny
    fill = torch.full_like(x, 0.25)
    occ = sal.Occlusion(model, patch=8, stride=8, fill=fill)
    grid = occ.attribute(x, 1)[0]
    assert grid.shape == (4, 4)
    np.testing.assert_array_equal(occ.dense(grid, (SIZE, SIZE)), np.kron(grid, np.ones((8, 8), np.float32)))
    scalar = sal.Occlusion(model, patch=8, stride=8, fill=0.25).attribute(x, 1)[0]
    np.testing.assert_array_equal(grid, scalar)


def test_sanity_check_randomized_weights_change_the_map(tiny):
    model, x = tiny
    before = {k: v.clone() for k, v in model.state_dict().items()}
    res = sal.sanity_check(model, x, "gradcam", target=1)
    assert not np.allclose(res.original.map, res.randomized.map)
    assert np.isnan(res.spearman) or res.spearman < 0.9
    assert res.randomized_layers[0] == "fc"  # cascading from the top
    for k, v in model.state_dict().items():  # the model itself is untouched
        assert torch.equal(v, before[k])


def test_sanity_cascade_lists_every_layer(tiny):
    model, x = tiny
    res = sal.sanity_check(model, x, "ig", target=1, cascade=True, steps=4)
    assert [n for n, _ in res.cascade] == sal.parameter_layers(model)[::-1]
    assert res.spearman == res.cascade[-1][1] or np.isnan(res.spearman)


def test_spearman_and_overlay(tiny):
    model, x = tiny
    assert sal.spearman(np.arange(9.0), np.arange(9.0) ** 2) == pytest.approx(1.0)
    assert np.isnan(sal.spearman(np.ones(4), np.arange(4.0)))
    m = sal.compute(model, x, "gradcam", target=1, out_shape=(20, 30))
    rgb = sal.overlay(np.full((20, 30), 0.5), m)
    assert rgb.shape == (20, 30, 3) and rgb.dtype == np.uint8


def test_bad_method_and_target(tiny):
    model, x = tiny
    with pytest.raises(InputError, match="unknown saliency method"):
        sal.compute(model, x, "guided_backprop")
    with pytest.raises(InputError, match="out of range"):
        sal.compute(model, x, "ig", target=5)
    with pytest.raises(InputError, match="no convolutional layer|names none"):
        sal.compute(nn.Sequential(nn.Flatten(), nn.Linear(SIZE * SIZE, 2)), x, "gradcam")
