"""The importer and quantizer: accepted chains, and every documented refusal."""

import pytest
import torch
from torch import nn

from golden import contract, integer
from golden.importer import import_chain
from golden.models import AcceleratedModel, SimpleModel, digits_mlp
from golden.quantize import dequantize_output, quantize_model

SUPPORTED = "Linear, ReLU, Flatten, Identity, Dropout"


class Pasted(nn.Module):
    """A user's module whose forward is a chain, with functional ReLU and identities."""

    def __init__(self):
        super().__init__()
        self.flat = nn.Flatten()
        self.a = nn.Linear(6, 4)
        self.drop = nn.Dropout(0.5)
        self.b = nn.Linear(4, 3)

    def forward(self, x):
        return self.b(self.drop(torch.relu(self.a(self.flat(x)))))


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(3, 3)

    def forward(self, x):
        return self.a(x) + x


@pytest.mark.parametrize("model, shape, relu, bias", [
    (SimpleModel(), [(5, 10), (1, 5)], [True, False], True),
    (AcceleratedModel(), [(5, 10), (1, 5)], [True, False], False),
    (digits_mlp(), [(32, 64), (10, 32)], [True, False], True),
    (Pasted(), [(4, 6), (3, 4)], [True, False], True),
    (nn.Sequential(nn.Identity(), nn.Linear(3, 2), nn.ReLU(), nn.ReLU(), nn.Dropout()), [(2, 3)], [True], True),
    (nn.Linear(3, 2), [(2, 3)], [False], True),
])
def test_supported_chains(model, shape, relu, bias):
    specs = import_chain(model)
    assert [tuple(s.weight.shape) for s in specs] == shape
    assert [s.relu for s in specs] == relu
    assert all(s.has_bias == bias for s in specs)


@pytest.mark.parametrize("model, msg", [
    (nn.Sequential(nn.Linear(3, 2), nn.Sigmoid()), rf"^layer 1 \(Sigmoid\) is not supported; supported layers: {SUPPORTED}$"),
    (nn.Sequential(nn.Linear(3, 2), nn.Tanh(), nn.Linear(2, 1)), rf"^layer 1 \(Tanh\) is not supported; supported layers: {SUPPORTED}$"),
    (nn.Sequential(nn.Conv1d(1, 1, 1)), rf"^layer 0 \(Conv1d\) is not supported; supported layers: {SUPPORTED}$"),
    (nn.BatchNorm1d(3), rf"^layer 0 \(BatchNorm1d\) is not supported; supported layers: {SUPPORTED}$"),
    (nn.Sequential(nn.Sequential(nn.Linear(3, 2))), rf"^layer 0 \(Sequential\) is not supported; supported layers: {SUPPORTED}$"),
    (nn.Sequential(nn.ReLU(), nn.Linear(3, 2)), r"^layer 0 \(ReLU\) comes before any Linear layer; a ReLU must follow a Linear$"),
    (nn.Sequential(nn.Identity()), rf"^Sequential has no Linear layer; supported layers: {SUPPORTED}$"),
    (Residual(), r"^Residual: layer 1 \(add\) does not take the previous layer's output as its only input; only a plain chain is supported$"),
])
def test_unsupported_layers(model, msg):
    with pytest.raises(ValueError, match=msg):
        import_chain(model)


def test_not_a_model():
    with pytest.raises(TypeError, match=r"^expected a torch\.nn\.Module, not dict$"):
        import_chain({"weight": [1]})
    with pytest.raises(TypeError, match=r"^expected a torch\.nn\.Module, not str$"):
        quantize_model("model.pt", torch.zeros(1, 3))


def test_non_finite_weights():
    model = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 1))
    with torch.no_grad():
        model[2].weight[0, 1] = float("nan")
        model[0].bias[0] = float("inf")
    with pytest.raises(ValueError, match=r"^layer 0 \(Linear\): bias has 1 NaN or infinite values$"):
        import_chain(model)
    with torch.no_grad():
        model[0].bias[0] = 0.0
    with pytest.raises(ValueError, match=r"^layer 2 \(Linear\): weight has 1 NaN or infinite values$"):
        import_chain(model)


@pytest.mark.filterwarnings("ignore:Initializing zero-element tensors")
def test_zero_sized_layer():
    with pytest.raises(ValueError, match=r"^layer 1 \(Linear\): zero-sized layer: weight shape \[0, 3\] "
                                         r"\(in_features=3, out_features=0\)$"):
        import_chain(nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 0)))


def test_mismatched_shapes():
    with pytest.raises(ValueError, match=r"^layer 2 \(Linear\): in_features=4 does not match out_features=5 "
                                         r"of layer 0 \(Linear\)$"):
        import_chain(nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(4, 1)))
    model = nn.Linear(3, 2)
    model.weight = nn.Parameter(torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"^layer 0 \(Linear\): weight shape \[2, 4\] does not match "
                                         r"in_features=3, out_features=2$"):
        import_chain(model)
    with pytest.raises(ValueError, match=r"^calibration_inputs must have shape \[batch >= 1, 3\], not \[5, 4\]$"):
        quantize_model(nn.Linear(3, 2), torch.zeros(5, 4))


@pytest.mark.parametrize("kw, exc, msg", [
    ({"w_bits": 9}, ValueError, r"^w_bits must be between 2 and 8, not 9$"),
    ({"a_bits": 1}, ValueError, r"^a_bits must be between 2 and 8, not 1$"),
    ({"acc_bits": 64}, ValueError, r"^acc_bits must be between 8 and 48, not 64$"),
    ({"m_bits": 0}, ValueError, r"^m_bits must be between 2 and 24, not 0$"),
    ({"w_bits": "8"}, TypeError, r"^w_bits must be an integer, not '8'$"),
    ({"requantize_last": 1}, TypeError, r"^requantize_last must be True or False, not 1$"),
])
def test_bit_widths_out_of_range(kw, exc, msg):
    with pytest.raises(exc, match=msg):
        quantize_model(nn.Linear(3, 2), torch.randn(4, 3), **kw)


def test_layer_that_could_overflow_is_rejected():
    # per-channel symmetric scaling maps each row's largest weight to exactly 127
    model = nn.Sequential(nn.Linear(64, 4, bias=False))
    with pytest.raises(ValueError, match=r"^layer 0: accumulator may overflow acc_bits=16: "
                                         r"in_features\*max\|w\|\*max\|x\| \+ max\|b\| = 64\*127\*128 \+ 0 "
                                         r"= 1040384 > 32767 \(torch layer 0\)$"):
        quantize_model(model, torch.randn(8, 64), acc_bits=16)


def test_non_finite_calibration():
    x = torch.zeros(2, 3)
    x[1, 2] = float("nan")
    with pytest.raises(ValueError, match=r"^calibration_inputs contain NaN or infinite values$"):
        quantize_model(nn.Linear(3, 2), x)


@pytest.mark.parametrize("w_bits", range(2, 9))
def test_weights_per_channel_symmetric(w_bits):
    gen = torch.Generator().manual_seed(w_bits)
    model = nn.Linear(7, 5)
    with torch.no_grad():
        model.weight.copy_(torch.randn(5, 7, generator=gen))
    image = quantize_model(model, torch.randn(16, 7, generator=gen), w_bits=w_bits)
    q = 2 ** (w_bits - 1) - 1
    layer = image.layers[0]
    w = model.weight.detach().double()
    for j, row in enumerate(layer.weight):
        assert max(abs(v) for v in row) == q  # the row's peak uses the full range
        assert layer.weight_scale[j] == pytest.approx(float(w[j].abs().max()) / q, rel=1e-15)
        for i, v in enumerate(row):  # the nearest integer (ties either way)
            assert abs(v * layer.weight_scale[j] - float(w[j, i])) <= layer.weight_scale[j] / 2 * (1 + 1e-12)


def test_requantization_parameters_follow_the_scales():
    gen = torch.Generator().manual_seed(3)
    model = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 2))
    x = torch.randn(32, 5, generator=gen)
    image = quantize_model(model, x, requantize_last=True)
    s_in = image.input_scale
    for layer in image.layers:
        assert layer.requantize
        for j in range(layer.out_features):
            real = s_in * layer.weight_scale[j] / layer.output_scale
            assert (layer.m[j], layer.s[j]) == contract.quantize_multiplier(real, image.m_bits)
        s_in = layer.output_scale
    assert image.layers[0].relu and not image.layers[1].relu


def test_dequantized_output_tracks_float():
    gen = torch.Generator().manual_seed(5)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    x = torch.randn(64, 6, generator=gen)
    image = quantize_model(model, x)
    assert not image.layers[-1].requantize
    y = dequantize_output(image, integer.infer(image, integer.quantize_input(image, x))[-1])
    with torch.no_grad():
        f = model(x).double()
    # int8 error is a few output LSBs; far below the signal
    assert float(((y - f) ** 2).mean()) < 1e-3 * float((f ** 2).mean())


def test_final_relu_forces_requantization():
    image = quantize_model(nn.Sequential(nn.Linear(3, 2), nn.ReLU()), torch.randn(4, 3))
    assert image.layers[-1].requantize and image.layers[-1].relu


class Sigmoidal(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(3, 3)

    def forward(self, x):
        return torch.sigmoid(self.a(x))


def test_unsupported_function_in_forward():
    with pytest.raises(ValueError, match=rf"^layer 1 \(sigmoid\) is not supported; supported layers: {SUPPORTED}$"):
        import_chain(Sigmoidal())


def test_huge_bias_is_rejected_not_wrapped():
    model = nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.fill_(1e-30)
        model.bias.fill_(1.0)
    x = torch.ones(4, 2)
    # s_in = 1/127, s_w = 1e-30/127: the bias needs 127*127*1e30 LSBs
    w = model.weight[0, 0].item()  # 1e-30 as float32
    want = round(model.bias[0].item() / ((1.0 / 127) * (w / 127)))
    with pytest.raises(ValueError, match=rf"^layer 0: accumulator may overflow acc_bits=32: "
                                         rf"in_features\*max\|w\|\*max\|x\| \+ max\|b\| = 2\*127\*128 \+ {want} "
                                         rf"= {want + 2 * 127 * 128} > 2147483647 \(torch layer 0\)$"):
        quantize_model(model, x)
