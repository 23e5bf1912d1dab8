"""Each op of the reference executor against PyTorch (or coremltools' own decompression) on random inputs.

The op functions are called directly with the inputs a program would give them (constants as
numpy values, optional inputs left out to exercise the MIL defaults).  float32 in, float32 out:
the comparison is at float32 tolerance, so a wrong axis, layout, default or formula fails.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lcm_desktop.mlprogram.ops import OPS

RNG = np.random.default_rng(0)


def rand(*shape) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def t(x) -> torch.Tensor:
    return torch.from_numpy(np.asarray(x))


def close(ours, ref, tol=1e-5) -> None:
    ref = ref.numpy() if isinstance(ref, torch.Tensor) else np.asarray(ref)
    ours = np.asarray(ours)
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    np.testing.assert_allclose(ours.astype(np.float64), ref.astype(np.float64), rtol=tol, atol=tol)


@pytest.mark.parametrize("name, ref", [
    ("add", torch.add), ("sub", torch.sub), ("mul", torch.mul), ("real_div", torch.div),
    ("maximum", torch.maximum), ("minimum", torch.minimum),
    ("equal", torch.eq), ("not_equal", torch.ne), ("greater", torch.gt), ("greater_equal", torch.ge),
    ("less", torch.lt), ("less_equal", torch.le),
])
def test_binary_ops_broadcast_as_torch(name, ref):
    x, y = rand(2, 3, 4), rand(3, 1)
    y[0, 0] = x[0, 0, 0]  # one equal pair for the comparisons
    close(OPS[name]({"x": x, "y": y}), ref(t(x), t(y)))


def test_pow_and_integer_arithmetic():
    x = np.abs(rand(3, 4)) + 0.1
    close(OPS["pow"]({"x": x, "y": np.float32(1.7)}), t(x) ** 1.7)
    ids = np.array([[3, -1, 5]], np.int32)
    out = OPS["add"]({"x": ids, "y": np.int32(77)})
    assert out.dtype == np.int32 and out.tolist() == [[80, 76, 82]]


@pytest.mark.parametrize("name, ref", [
    ("sin", torch.sin), ("cos", torch.cos), ("tanh", torch.tanh), ("exp", torch.exp), ("square", torch.square),
    ("abs", torch.abs), ("floor", torch.floor), ("ceil", torch.ceil), ("sign", torch.sign),
    ("sigmoid", torch.sigmoid), ("silu", F.silu), ("relu", F.relu), ("relu6", F.relu6), ("softplus", F.softplus),
    ("erf", torch.erf), ("softsign", F.softsign),
])
def test_unary_ops_match_torch(name, ref):
    x = rand(4, 33) * 3
    close(OPS[name]({"x": x}), ref(t(x)), tol=2e-6 if name != "exp" else 1e-5)


@pytest.mark.parametrize("name, ref", [
    ("exp2", torch.exp2), ("tan", torch.tan), ("sinh", torch.sinh), ("cosh", torch.cosh), ("asin", torch.asin),
    ("acos", torch.acos), ("atan", torch.atan), ("atanh", torch.atanh), ("identity", lambda x: x),
])
def test_other_unary_ops_match_torch(name, ref):
    x = np.tanh(rand(4, 33)) * 0.9  # inside every domain
    close(OPS[name]({"x": x}), ref(t(x)), tol=2e-6)


def test_logical_threshold_and_elu():
    a, b = rand(3, 4) > 0, rand(3, 4) > 0
    for name, ref in (("logical_and", torch.logical_and), ("logical_or", torch.logical_or),
                      ("logical_xor", torch.logical_xor)):
        close(OPS[name]({"x": a, "y": b}), ref(t(a), t(b)))
    close(OPS["logical_not"]({"x": a}), torch.logical_not(t(a)))
    x = rand(3, 7)
    close(OPS["threshold"]({"x": x, "alpha": np.float32(0.2)}), torch.clamp(t(x), min=0.2))
    close(OPS["elu"]({"x": x}), F.elu(t(x)))
    close(OPS["elu"]({"x": x, "alpha": np.float32(0.5)}), F.elu(t(x), 0.5))


def test_sigmoid_does_not_overflow_at_extremes():
    x = np.array([-1e4, -90.0, 0.0, 90.0, 1e4], np.float32)
    close(OPS["sigmoid"]({"x": x}), torch.sigmoid(t(x)))


def test_ops_with_epsilon_defaults():
    x = np.abs(rand(3, 5)) + 0.5
    close(OPS["sqrt"]({"x": x}), torch.sqrt(t(x)))
    close(OPS["log"]({"x": x}), torch.log(t(x)))
    close(OPS["rsqrt"]({"x": x}), torch.rsqrt(t(x) + 1e-12))
    close(OPS["rsqrt"]({"x": x, "epsilon": np.float32(0.5)}), torch.rsqrt(t(x) + 0.5))
    close(OPS["inverse"]({"x": x}), 1 / (t(x) + 1e-4))


@pytest.mark.parametrize("mode, approximate", [("EXACT", "none"), ("TANH_APPROXIMATION", "tanh")])
def test_gelu_modes(mode, approximate):
    x = rand(5, 40) * 3
    args = {"x": x} if mode == "EXACT" else {"x": x, "mode": mode}  # EXACT is the default
    close(OPS["gelu"](args), F.gelu(t(x), approximate=approximate), tol=2e-6)
    close(OPS["gelu"]({"x": x, "mode": "SIGMOID_APPROXIMATION"}), t(x) * torch.sigmoid(1.702 * t(x)))


def test_clip_leaky_relu_select_and_cast():
    x = rand(3, 6)
    close(OPS["clip"]({"x": x, "alpha": np.float32(-0.5), "beta": np.float32(0.7)}), torch.clamp(t(x), -0.5, 0.7))
    close(OPS["leaky_relu"]({"x": x}), F.leaky_relu(t(x), 0.01))
    close(OPS["leaky_relu"]({"x": x, "alpha": np.float32(0.2)}), F.leaky_relu(t(x), 0.2))
    cond = x > 0
    close(OPS["select"]({"cond": cond, "a": x, "b": np.float32(-1)}), torch.where(t(cond), t(x), -1.0))
    assert OPS["cast"]({"x": x, "dtype": "int32"}) is x  # the interpreter applies the declared dtype


def test_linear_and_matmul():
    x, w, b = rand(2, 7, 16), rand(24, 16), rand(24)
    close(OPS["linear"]({"x": x, "weight": w, "bias": b}), F.linear(t(x), t(w), t(b)), tol=1e-5)
    close(OPS["linear"]({"x": x, "weight": w}), F.linear(t(x), t(w)), tol=1e-5)
    a, c = rand(2, 4, 5, 3), rand(4, 6, 5)
    args = {"x": a, "y": c, "transpose_x": np.bool_(True), "transpose_y": np.bool_(True)}
    close(OPS["matmul"](args), torch.matmul(t(a).transpose(-1, -2), t(c).transpose(-1, -2)), tol=1e-5)
    v, m = rand(6), rand(4, 6, 5)
    close(OPS["matmul"]({"x": v, "y": m}), torch.matmul(t(v), t(m)), tol=1e-5)  # 1-D x: promoted, then dropped


@pytest.mark.parametrize("equation, shapes", [
    ("bchq,bkhc->bkhq", ((1, 8, 1, 64), (1, 16, 1, 8))),  # Apple's split_einsum attention scores
    ("bkhq,bchk->bchq", ((1, 16, 1, 64), (1, 8, 1, 16))),  # … and values
    ("nchw,nwhu->nchu", ((2, 3, 4, 5), (2, 5, 1, 6))),  # the MIL definition's layout, H broadcast
    ("ij,jk->ik", ((3, 4), (4, 5))),
    ("bij,bkj->bik", ((2, 3, 4), (1, 5, 4))),
])
def test_einsum_matches_torch(equation, shapes):
    x, y = rand(*shapes[0]), rand(*shapes[1])
    close(OPS["einsum"]({"values": [x, y], "equation": equation}), torch.einsum(equation, t(x), t(y)), tol=1e-5)


def test_scaled_dot_product_attention_with_and_without_masks():
    q, k, v = rand(2, 3, 5, 8), rand(2, 3, 7, 8), rand(2, 3, 7, 4)
    sdpa = OPS["scaled_dot_product_attention"]
    close(sdpa({"query": q, "key": k, "value": v}), F.scaled_dot_product_attention(t(q), t(k), t(v)), tol=1e-5)
    keep = RNG.random((5, 7)) > 0.3
    keep[:, 0] = True
    close(sdpa({"query": q, "key": k, "value": v, "attn_mask": keep}),
          F.scaled_dot_product_attention(t(q), t(k), t(v), attn_mask=t(keep)), tol=1e-5)
    bias = rand(1, 3, 5, 7)
    close(sdpa({"query": q, "key": k, "value": v, "attn_mask": bias}),
          F.scaled_dot_product_attention(t(q), t(k), t(v), attn_mask=t(bias)), tol=1e-5)


@pytest.mark.parametrize("kwargs", [
    {"padding": 1},
    {"padding": 0, "stride": 2},
    {"padding": 2, "dilation": 2, "groups": 2},
    {"padding": (0, 1), "stride": (1, 2)},
])
def test_conv2d_matches_torch(kwargs):
    x, w, b = rand(2, 4, 9, 10), rand(6, 4 // kwargs.get("groups", 1), 3, 3), rand(6)
    pad = kwargs.get("padding", 0)
    ph, pw = (pad, pad) if isinstance(pad, int) else pad
    stride = kwargs.get("stride", 1)
    dil = kwargs.get("dilation", 1)
    args = {"x": x, "weight": w, "bias": b, "pad_type": "custom", "pad": np.array([ph, ph, pw, pw], np.int32),
            "strides": np.array(stride if isinstance(stride, tuple) else (stride, stride), np.int32),
            "dilations": np.array([dil, dil], np.int32), "groups": np.int32(kwargs.get("groups", 1))}
    close(OPS["conv"](args), F.conv2d(t(x), t(w), t(b), **kwargs), tol=1e-4)


def test_conv_1x1_valid_same_and_1d():
    x, w = rand(1, 8, 5, 6), rand(3, 8, 1, 1)
    close(OPS["conv"]({"x": x, "weight": w, "pad_type": "valid"}), F.conv2d(t(x), t(w)), tol=1e-5)
    w3 = rand(3, 8, 3, 3)
    close(OPS["conv"]({"x": x, "weight": w3, "pad_type": "same"}), F.conv2d(t(x), t(w3), padding="same"), tol=1e-4)
    x1, w1 = rand(2, 4, 11), rand(5, 4, 3)
    close(OPS["conv"]({"x": x1, "weight": w1, "pad_type": "custom", "pad": np.array([1, 1], np.int32)}),
          F.conv1d(t(x1), t(w1), padding=1), tol=1e-5)


def test_softmax_and_reductions():
    x = rand(2, 3, 5, 7)
    close(OPS["softmax"]({"x": x, "axis": np.int32(1)}), torch.softmax(t(x), 1), tol=1e-6)
    close(OPS["softmax"]({"x": x}), torch.softmax(t(x), -1), tol=1e-6)
    axes = np.array([2, -1], np.int32)
    close(OPS["reduce_mean"]({"x": x, "axes": axes, "keep_dims": np.bool_(True)}), t(x).mean((2, 3), keepdim=True))
    close(OPS["reduce_sum"]({"x": x, "axes": axes}), t(x).sum((2, 3)))
    close(OPS["reduce_max"]({"x": x, "axes": np.array([1], np.int32)}), t(x).amax(1))
    close(OPS["reduce_mean"]({"x": x}), t(x).mean())
    close(OPS["reduce_argmax"]({"x": x, "axis": np.int32(-1)}), t(x).argmax(-1))
    close(
        OPS["reduce_argmax"]({"x": x, "axis": np.int32(1), "keep_dims": np.bool_(True)}), t(x).argmax(1, keepdim=True)
    )


def test_other_reductions_match_torch():
    x = rand(2, 3, 4) + 0.2
    axes = np.array([0, 2], np.int32)
    close(OPS["reduce_prod"]({"x": x, "axes": axes}), t(x).prod(2).prod(0), tol=1e-5)
    close(OPS["reduce_min"]({"x": x, "axes": axes, "keep_dims": np.bool_(True)}), t(x).amin((0, 2), keepdim=True))
    close(OPS["reduce_sum_square"]({"x": x, "axes": axes}), (t(x) ** 2).sum((0, 2)), tol=1e-5)
    close(OPS["reduce_l1_norm"]({"x": x, "axes": axes}), t(x).abs().sum((0, 2)), tol=1e-5)
    close(OPS["reduce_l2_norm"]({"x": x, "axes": axes}), t(x).norm(dim=(0, 2)), tol=1e-5)
    close(OPS["reduce_log_sum_exp"]({"x": x, "axes": axes}), torch.logsumexp(t(x), (0, 2)), tol=1e-5)
    close(OPS["reduce_log_sum_exp"]({"x": x, "axes": axes, "keep_dims": np.bool_(True)}),
          torch.logsumexp(t(x), (0, 2), keepdim=True), tol=1e-5)
    close(OPS["reduce_argmin"]({"x": x, "axis": np.int32(1)}), t(x).argmin(1))


def test_every_op_of_the_executor_is_tested_here():
    import re
    from pathlib import Path

    source = Path(__file__).read_text(encoding="utf-8")
    tested = set(re.findall(r'OPS\["(\w+)"\]', source)) | set(re.findall(r'\("(\w+)", (?:torch|F|lambda)', source))
    assert sorted(set(OPS) - tested) == []


def test_normalizations_match_torch():
    x = rand(2, 6, 5, 4) * 3 + 1
    g, b = rand(6), rand(6)
    mean, var = rand(6), np.abs(rand(6)) + 0.1
    close(
        OPS["batch_norm"]({"x": x, "mean": mean, "variance": var, "gamma": g, "beta": b, "epsilon": np.float32(1e-3)}),
        F.batch_norm(t(x), t(mean), t(var), t(g), t(b), eps=1e-3),
        tol=1e-5,
    )
    close(
        OPS["instance_norm"]({"x": x, "gamma": g, "beta": b}), F.instance_norm(t(x), weight=t(g), bias=t(b)), tol=1e-4
    )
    h = rand(2, 9, 16) * 2 + 0.5
    gl, bl = rand(16), rand(16)
    close(OPS["layer_norm"]({"x": h, "axes": np.array([-1], np.int32), "gamma": gl, "beta": bl}),
          F.layer_norm(t(h), (16,), t(gl), t(bl)), tol=1e-5)
    close(OPS["layer_norm"]({"x": h, "axes": np.array([1, 2], np.int32)}), F.layer_norm(t(h), (9, 16)), tol=1e-5)
    # Apple's split_einsum layer norm runs over channels (axis 1) of (B, C, 1, S)
    c = rand(1, 16, 1, 5)
    ref = F.layer_norm(t(c).permute(0, 2, 3, 1), (16,), t(gl), t(bl)).permute(0, 3, 1, 2)
    close(OPS["layer_norm"]({"x": c, "axes": np.array([1], np.int32), "gamma": gl, "beta": bl}), ref, tol=1e-5)


def test_reshape_transpose_and_dims():
    x = rand(2, 3, 4)
    close(OPS["reshape"]({"x": x, "shape": np.array([4, -1], np.int32)}), t(x).reshape(4, -1))
    close(OPS["reshape"]({"x": x, "shape": np.array([1, 0, -1, 0], np.int32)}), t(x).reshape(1, 2, 3, 4))  # iOS17
    close(OPS["reshape"]({"x": x, "shape": np.array([0, -1, 2], np.int32)}), t(x).reshape(2, 6, 2))
    close(OPS["transpose"]({"x": x, "perm": np.array([2, 0, 1], np.int32)}), t(x).permute(2, 0, 1))
    close(OPS["expand_dims"]({"x": x, "axes": np.array([0, -1], np.int32)}), t(x)[None, ..., None])
    y = rand(1, 3, 1, 4)
    close(OPS["squeeze"]({"x": y, "axes": np.array([2], np.int32)}), t(y).squeeze(2))
    close(OPS["squeeze"]({"x": y}), t(y).squeeze())
    close(OPS["squeeze"]({"x": y, "axes": np.array([1, 2], np.int32)}), t(y).squeeze(2))  # non-1 axes are ignored


def test_slices_splits_and_joins():
    x = rand(3, 8, 5)
    args = {"x": x, "begin": np.array([1, 6, 0], np.int32), "end": np.array([0, 1, 4], np.int32),
            "stride": np.array([1, -2, 1], np.int32), "end_mask": np.array([True, False, False]),
            "squeeze_mask": np.array([False, False, False])}
    close(OPS["slice_by_index"](args), x[1:, 6:1:-2, 0:4])
    args = {"x": x, "begin": np.array([2, 0, -3], np.int32), "end": np.array([0, 4, 0], np.int32),
            "begin_mask": np.array([False, True, False]), "end_mask": np.array([False, False, True]),
            "squeeze_mask": np.array([True, False, False])}
    close(OPS["slice_by_index"](args), t(x)[2, :4, -3:])
    close(
        OPS["slice_by_size"]({"x": x, "begin": np.array([1, 2, 0], np.int32), "size": np.array([2, -1, 3], np.int32)}),
        t(x)[1:3, 2:, 0:3],
    )
    parts = OPS["split"]({"x": x, "axis": np.int32(1), "split_sizes": np.array([3, 5], np.int32)})
    for ours, ref in zip(parts, torch.split(t(x), [3, 5], dim=1), strict=True):
        close(ours, ref)
    parts = OPS["split"]({"x": x, "axis": np.int32(-2), "num_splits": np.int32(4)})
    assert len(parts) == 4 and all(p.shape == (3, 2, 5) for p in parts)
    y = rand(3, 8, 5)
    close(OPS["concat"]({"values": [x, y], "axis": np.int32(-1)}), torch.cat([t(x), t(y)], -1))
    close(OPS["concat"]({"values": [x, y], "axis": np.int32(1), "interleave": np.bool_(True)}),
          torch.stack([t(x), t(y)], 2).reshape(3, 16, 5))
    close(OPS["stack"]({"values": [x, y], "axis": np.int32(1)}), torch.stack([t(x), t(y)], 1))
    close(OPS["tile"]({"x": x, "reps": np.array([1, 2, 3], np.int32)}), t(x).repeat(1, 2, 3))


def test_gathers():
    table = rand(40, 6)
    ids = np.array([[3, 0, 39, -1]], np.int32)
    close(OPS["gather"]({"x": table, "indices": ids}), F.embedding(t(ids % 40).long(), t(table)))
    x = rand(2, 5, 3)
    close(OPS["gather"]({"x": x, "indices": np.array([4, 1], np.int32), "axis": np.int32(1)}), t(x)[:, [4, 1]])
    batch = OPS["gather"]({"x": x, "indices": np.array([[0, 2], [4, 4]], np.int32), "axis": np.int32(1),
                           "batch_dims": np.int32(1)})
    close(batch, torch.stack([t(x)[0, [0, 2]], t(x)[1, [4, 4]]]))
    # CLIP's pooled output: hidden[batch index, position of the end token]
    nd = np.array([[0, 3], [1, 1]], np.int32)
    close(OPS["gather_nd"]({"x": x, "indices": nd}), t(x)[[0, 1], [3, 1]])
    idx = np.array([[[0], [2], [1], [0], [2]]] * 2, np.int32)
    close(OPS["gather_along_axis"]({"x": x, "indices": idx, "axis": np.int32(2)}),
          torch.gather(t(x), 2, t(idx).long()))


@pytest.mark.parametrize(
    "mode, torch_mode", [("constant", "constant"), ("reflect", "reflect"), ("replicate", "replicate")]
)
def test_pad_modes(mode, torch_mode):
    x = rand(1, 2, 5, 6)
    args = {"x": x, "pad": np.array([1, 2, 0, 3], np.int32)}
    if mode != "constant":
        args["mode"] = mode
    else:
        args["constant_val"] = np.float32(0.5)
    kwargs = {"value": 0.5} if mode == "constant" else {}
    close(OPS["pad"](args), F.pad(t(x), (0, 3, 1, 2), mode=torch_mode, **kwargs))


def test_upsample_nearest_neighbor():
    x = rand(1, 3, 4, 5)
    two = np.float32(2.0)
    close(OPS["upsample_nearest_neighbor"]({"x": x, "scale_factor_height": two, "scale_factor_width": two}),
          F.interpolate(t(x), scale_factor=2, mode="nearest"))
    close(OPS["upsample_nearest_neighbor"]({"x": x, "scale_factor_height": np.int32(3)}),
          F.interpolate(t(x), scale_factor=(3, 1), mode="nearest"))


def _coremltools_op(module: str, name: str):
    import importlib

    return getattr(importlib.import_module(f"coremltools.converters.mil.mil.ops.defs.{module}"), name)


@pytest.mark.parametrize("bits", [1, 2, 4, 6, 8])
def test_lut_to_dense_ios16_expands_as_coremltools(bits):
    shape = (5, 3, 3, 3)
    count = int(np.prod(shape))
    indices = RNG.integers(0, 2**bits, count)
    bitstream = ((indices[:, None] >> np.arange(bits)) & 1).astype(np.uint8).reshape(-1)  # LSB first
    packed = np.packbits(bitstream, bitorder="little")
    lut = rand(2**bits).astype(np.float16)
    ours = OPS["constexpr_lut_to_dense"]({"indices": packed, "lut": lut.astype(np.float32),
                                          "shape": np.array(shape, np.uint32)})
    np.testing.assert_array_equal(ours, lut[indices].reshape(shape).astype(np.float32))
    oracle = _coremltools_op("iOS16.constexpr_ops", "constexpr_lut_to_dense").decompress(lut, packed, np.array(shape))
    np.testing.assert_array_equal(ours, oracle.astype(np.float32))


def test_lut_to_dense_ios18_per_group_tables():
    indices = RNG.integers(0, 16, (6, 4)).astype(np.uint8)
    lut = rand(2, 1, 16, 1)  # two tables over the first axis (rows 0-2 and 3-5)
    ours = OPS["constexpr_lut_to_dense"]({"indices": indices, "lut": lut})
    oracle = _coremltools_op("iOS18.compression", "constexpr_lut_to_dense").decompress(indices, lut, None)
    np.testing.assert_array_equal(ours, oracle)
    assert ours[4, 0] == lut[1, 0, indices[4, 0], 0] and ours[1, 0] == lut[0, 0, indices[1, 0], 0]


def test_affine_dequantize_and_blockwise_shift_scale():
    q = RNG.integers(0, 256, (4, 6)).astype(np.uint8)
    scale, zero = np.abs(rand(4)) + 0.01, RNG.integers(0, 256, 4).astype(np.uint8)
    ours = OPS["constexpr_affine_dequantize"](
        {"quantized_data": q, "zero_point": zero, "scale": scale, "axis": np.int32(0)}
    )
    oracle = _coremltools_op("iOS16.constexpr_ops", "constexpr_affine_dequantize").decompress(q, zero, scale, 0)
    np.testing.assert_allclose(ours, oracle, rtol=1e-6)
    data = RNG.integers(-128, 128, (4, 6)).astype(np.int8)
    bscale, offset = np.abs(rand(2, 3)) + 0.01, RNG.integers(-5, 5, (2, 3)).astype(np.int8)
    ours = OPS["constexpr_blockwise_shift_scale"]({"data": data, "scale": bscale, "offset": offset})
    oracle = _coremltools_op("iOS18.compression", "constexpr_blockwise_shift_scale").decompress(data, bscale, offset)
    np.testing.assert_allclose(ours, oracle, rtol=1e-6)
