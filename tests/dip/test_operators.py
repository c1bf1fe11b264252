"""Forward operators and the generators of degraded observations."""

import numpy as np
import pytest
import torch

from engine.core.errors import InputError
from engine.core.operator import Operator, adjointness_gap
from engine.dip import operators as dg
from tests.dip.operator_examples import EXAMPLES


def _img(c=3, h=24, w=20, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.random((h, w, c)).astype(np.float32)
    return a[:, :, 0] if c == 1 else a


@pytest.mark.parametrize("c", [1, 3])
def test_tensor_roundtrip(c):
    a = _img(c)
    t = dg.to_tensor(a)
    assert t.shape == (1, c, 24, 20)
    np.testing.assert_array_equal(dg.to_numpy(t), a)


@pytest.mark.parametrize("task,kw,shape", [
    ("denoise", {}, (24, 20)), ("jpeg", {}, (24, 20)), ("inpaint", {}, (24, 20)),
    ("sr", {"factor": 2}, (12, 10)), ("sr", {"factor": 4}, (6, 5)), ("sr", {"factor": 8}, (3, 2)),
    ("deblur", {"kernel": dg.gaussian_kernel(1.0)}, (24, 20)),
    ("deblur", {"kernel": dg.motion_kernel(5, angle=45)}, (24, 20)),
])
def test_operator_shapes(task, kw, shape):
    x = torch.rand(1, 3, 24, 20, requires_grad=True)
    if task == "inpaint":
        kw = {"mask": dg.make_mask((24, 20), kind="random", fraction=0.3)}
    op = dg.make_operator(task, **kw)
    y = op(x)
    assert y.shape == (1, 3, *shape)
    assert op.out_shape(24, 20) == shape
    y.sum().backward()   # every operator is differentiable
    assert x.grad is not None


def test_identity_mask_blur_values():
    x = torch.rand(1, 1, 9, 9)
    m = np.zeros((9, 9), np.float32)
    m[::2] = 1
    assert torch.equal(dg.make_operator("inpaint", mask=m)(x), x * torch.from_numpy(m))
    # a delta PSF changes nothing; a blur keeps a constant image constant
    delta = np.zeros((3, 3), np.float32)
    delta[1, 1] = 1
    assert torch.allclose(dg.Blur(delta)(x), x)
    const = torch.full((1, 3, 8, 8), 0.4)
    assert torch.allclose(dg.Blur(dg.gaussian_kernel(1.5))(const), const, atol=1e-6)


def test_kernels_and_masks():
    for k in (dg.gaussian_kernel(2.0), dg.motion_kernel(9, angle=30), dg.motion_kernel(4, angle=0)):
        assert k.ndim == 2 and k.shape[0] % 2 == 1 and abs(k.sum() - 1) < 1e-5 and k.min() >= 0
    m = dg.make_mask((64, 64), kind="random", fraction=0.5, seed=1)
    assert 0.4 < m.mean() < 0.6 and set(np.unique(m)) <= {0.0, 1.0}
    b = dg.make_mask((64, 64), kind="blocks", fraction=0.2, block=8)
    assert 0.6 < b.mean() < 0.95
    t = dg.make_mask((64, 96), kind="text")
    assert t.shape == (64, 96) and 0.5 < t.mean() < 1.0
    assert np.array_equal(dg.make_mask((16, 16), seed=3), dg.make_mask((16, 16), seed=3))


def test_degrade_observations():
    clean = _img(3, 32, 32)
    n = dg.degrade(clean, "denoise", sigma=0.1, seed=0)
    assert n["observed"].shape == clean.shape and 0 <= n["observed"].min() and n["observed"].max() <= 1
    expect = np.clip(clean + np.random.default_rng(0).normal(0, 0.1, clean.shape), 0, 1)
    np.testing.assert_allclose(n["observed"], expect, atol=1e-6)
    i = dg.degrade(clean, "inpaint", mask_kind="blocks", fraction=0.3)
    assert i["mask"].shape == (32, 32) and np.all(i["observed"][i["mask"] == 0] == 0)
    assert dg.degrade(clean, "sr", factor=4)["observed"].shape == (8, 8, 3)
    d = dg.degrade(clean, "deblur", blur="motion", sigma=0.0)
    assert d["kernel"].ndim == 2 and d["observed"].shape == clean.shape
    j = dg.degrade(clean, "jpeg", quality=10)
    assert j["observed"].shape == clean.shape and np.abs(j["observed"] - clean).mean() > 0.01
    g = dg.degrade(clean[:, :, 0], "jpeg", quality=50)
    assert g["observed"].shape == (32, 32)
    assert n["info"]["task"] == "denoise"
    # a Generator is passed through: the stream of the integer seed it was made from
    g = dg.degrade(clean, "denoise", sigma=0.1, seed=np.random.default_rng(0))
    assert np.array_equal(g["observed"], n["observed"]) and g["info"]["seed"] is None
    assert np.array_equal(dg.make_mask((16, 16), seed=np.random.default_rng(3)), dg.make_mask((16, 16), seed=3))


def test_errors():
    with pytest.raises(InputError):
        dg.make_operator("inpaint")
    with pytest.raises(InputError):
        dg.make_operator("sr", factor=3)
    with pytest.raises(InputError):
        dg.make_operator("deblur")
    with pytest.raises(InputError):
        dg.make_operator("colorize")
    with pytest.raises(InputError):
        dg.Blur(np.ones((2, 2)))
    with pytest.raises(InputError):
        dg.make_mask((8, 8), kind="stars")
    with pytest.raises(InputError):
        dg.to_tensor(np.zeros((2, 2, 2, 2)))


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_adjoint_matches_the_forward_padding_and_resampling(name):
    op, x, y = EXAMPLES[name]()
    assert isinstance(op, Operator) and op.A(x).shape == y.shape
    assert torch.equal(op(x), op.A(x))
    assert op.A_adjoint(y).shape == x.shape
    assert adjointness_gap(op, x, y) < 1e-12


def test_every_operator_class_has_an_example():
    classes = {c for c in vars(dg).values() if isinstance(c, type) and issubclass(c, Operator)
               and c is not Operator}
    assert classes == {type(f()[0]) for f in EXAMPLES.values()}


def test_blur_adjoint_is_the_transposed_matrix():
    # the matrix of A column by column: its transpose applied to y is A_adjoint(y)
    op = dg.Blur(dg.motion_kernel(3, angle=60)).double()
    n = 5 * 4
    cols = [op.A(torch.eye(n, dtype=torch.float64)[i].reshape(1, 1, 5, 4)).reshape(-1) for i in range(n)]
    mat = torch.stack(cols, dim=1)
    y = torch.randn(1, 1, 5, 4, dtype=torch.float64)
    torch.testing.assert_close(op.A_adjoint(y).reshape(-1), mat.T @ y.reshape(-1))


def test_downsample_adjoint_needs_a_matching_size():
    with pytest.raises(ValueError):
        dg.Downsample(4, in_shape=(19, 13)).A_adjoint(torch.zeros(1, 1, 5, 3))
