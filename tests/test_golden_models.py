"""Training reproducibility, the digits thresholds and the zoo's API."""

import pytest
import torch

from golden import integer, randmodel, train, zoo
from golden.image import save
from golden.models import AcceleratedModel, SimpleModel
from golden.quantize import predict_classes
from golden.report import DIGITS_MIN_FLOAT_ACCURACY, MAX_ACCURACY_DROP


@pytest.fixture(scope="module")
def entries():
    return {e.name: e for e in zoo.default_models(0)}


def _same_weights(a, b) -> bool:
    pa, pb = list(a.parameters()), list(b.parameters())
    return len(pa) == len(pb) and all(torch.equal(x, y) for x, y in zip(pa, pb))


@pytest.mark.parametrize("cls", [SimpleModel, AcceleratedModel])
def test_article_training_reproduces(cls):
    state = torch.random.get_rng_state()
    a, b = train.train_article(cls, 0), train.train_article(cls, 0)
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's RNG is untouched
    assert _same_weights(a.model, b.model)
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.labels, b.labels)
    assert a.inputs.shape == (100, 10) and a.labels.shape == (100, 1)
    assert len(a.losses) == train.ARTICLE_EPOCHS and a.losses[-1] < a.losses[0]
    assert not _same_weights(a.model, train.train_article(cls, 1).model)


def test_article_training_is_the_articles_recipe():
    # the article's script, verbatim in spirit: seed, model, inputs, labels, 100 SGD steps
    with train.deterministic(0):  # same thread count, so the same float reductions
        model = SimpleModel()
        inputs, labels = torch.randn(100, 10), torch.randn(100, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
        for _ in range(100):
            optimizer.zero_grad()
            torch.nn.MSELoss()(model(inputs), labels).backward()
            optimizer.step()
    run = train.train_article(SimpleModel, 0)
    assert torch.equal(run.inputs, inputs) and torch.equal(run.labels, labels)
    assert _same_weights(run.model, model)


def test_digits_training_reproduces(entries):
    again = train.train_digits(0)
    assert _same_weights(again.model, entries["digits"].model)


def test_digits_thresholds(entries):
    e = entries["digits"]
    test = e.test_index
    with torch.no_grad():
        float_acc = float((e.model(e.inputs[test]).argmax(1) == e.targets[test]).double().mean())
    y = integer.infer(e.image, e.x_q)[-1]
    int_acc = float((predict_classes(e.image, y[test]) == e.targets[test]).double().mean())
    assert float_acc >= DIGITS_MIN_FLOAT_ACCURACY
    assert float_acc - int_acc <= MAX_ACCURACY_DROP


def test_zoo_api(entries):
    assert list(entries) == ["simple", "accelerated", "digits"]
    for e in entries.values():
        assert e.x_q.dtype == torch.int64 and e.x_q.shape == (len(e.inputs), e.image.in_features)
        assert torch.equal(e.x_q, integer.quantize_input(e.image, e.inputs))
        assert not e.model.training
    for name, cls in (("simple", SimpleModel), ("accelerated", AcceleratedModel)):
        e = entries[name]
        assert e.kind == "regression" and e.targets is None and e.test_index is None
        assert isinstance(e.model, cls) and e.inputs.shape == (200, 10)
        assert torch.equal(e.inputs[:100], train.train_article(cls, 0).inputs)
        assert not torch.equal(e.inputs[100:], e.inputs[:100])
    assert entries["accelerated"].image.layers[0].bias == (0,) * 5
    d = entries["digits"]
    assert d.kind == "classification" and d.inputs.shape == (1797, 64) and d.targets.shape == (1797,)
    assert d.test_index.dtype == torch.int64 and 0 < len(d.test_index) < 1797
    assert d.image.in_features == 64 and d.image.out_features == 10


def test_entry_from_files(tmp_path, entries):
    torch.save(entries["simple"].model, tmp_path / "simple.pt")
    e = zoo.entry_from_file(tmp_path / "simple.pt", n_vectors=7, seed=3)
    assert e.name == "simple" and e.x_q.shape == (7, 10) and e.model is not None
    save(entries["digits"].image, tmp_path / "digits.json")
    e = zoo.entry_from_file(tmp_path / "digits.json", n_vectors=5)
    assert e.model is None and e.image == entries["digits"].image and e.x_q.shape == (5, 64)
    lo, hi = -128, 127
    assert int(e.x_q.min()) >= lo and int(e.x_q.max()) <= hi


def test_entry_from_bad_files(tmp_path):
    missing = tmp_path / "nope.pt"
    with pytest.raises(ValueError, match=rf"^model file {missing} does not exist$"):
        zoo.entry_from_file(missing)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x80\x04not a pickle at all")
    with pytest.raises(ValueError, match=rf"^model file {junk} is not a readable torch file or model image: .+$"):
        zoo.entry_from_file(junk)
    sd = tmp_path / "sd.pt"
    torch.save(SimpleModel().state_dict(), sd)
    with pytest.raises(ValueError, match=rf"^model file {sd} holds a dict \(a state_dict\?\), not a model; "
                                         r"save it with torch\.save\(model\)$"):
        zoo.entry_from_file(sd)
    tensor = tmp_path / "t.pt"
    torch.save(torch.zeros(3), tensor)
    with pytest.raises(ValueError, match=rf"^model file {tensor} holds a Tensor, not a torch\.nn\.Module$"):
        zoo.entry_from_file(tensor)
    tanh = tmp_path / "tanh.pt"
    torch.save(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Tanh()), tanh)
    with pytest.raises(ValueError, match=rf"^model file {tanh}: layer 1 \(Tanh\) is not supported; "
                                         r"supported layers: Linear, ReLU, Flatten, Identity, Dropout$"):
        zoo.entry_from_file(tanh)


@pytest.mark.parametrize("seed", range(20))
def test_random_images_respect_requests(seed):
    img = randmodel.random_image(seed, depth=(2, 3), width=(1, 16), bias=False, relu=True, requantize_last=False)
    assert 2 <= len(img.layers) <= 3
    assert all(1 <= l.out_features <= 16 for l in img.layers)
    assert all(b == 0 for l in img.layers for b in l.bias)
    assert all(l.relu for l in img.layers[:-1]) and not img.layers[-1].requantize
    assert img == randmodel.random_image(seed, depth=(2, 3), width=(1, 16), bias=False, relu=True,
                                         requantize_last=False)


def test_random_image_shrinks_to_fit_accumulator():
    img = randmodel.random_image(0, acc_bits=20, depth=1, width=128)
    layer = img.layers[0]
    assert 128 * layer.max_abs_weight * 128 + layer.max_abs_bias <= 2**19 - 1


def test_random_image_bad_arguments():
    with pytest.raises(ValueError, match=r"^depth must satisfy 1 <= min <= max, not \(3, 2\)$"):
        randmodel.random_image(0, depth=(3, 2))
    with pytest.raises(TypeError, match=r"^width must be an integer or a \(min, max\) tuple of integers, not \[1, 2\]$"):
        randmodel.random_image(0, width=[1, 2])
    with pytest.raises(ValueError, match=r"^acc_bits=12 cannot hold even one product of max\|w\|=127 and max\|x\|=128$"):
        randmodel.corner_images(acc_bits=12)


def test_corner_images_are_the_corners():
    corners = dict(randmodel.corner_images(max_features=48, out_features=4))
    assert tuple(corners) == randmodel.CORNER_TAGS
    assert {w for row in corners["max_weights"].layers[0].weight for w in row} == {127}
    assert {w for row in corners["min_weights"].layers[0].weight for w in row} == {-127}
    assert corners["longest_accumulation"].in_features == 48
    assert set(corners["shift_1"].layers[0].s) == {1}
    assert set(corners["shift_max"].layers[0].s) == {63}
    assert set(corners["m_zero"].layers[0].m) == {0}
    assert set(corners["m_max"].layers[0].m) == {2**16 - 1}
    # the extreme biases drive the accumulator exactly to its proven bound
    mx = corners["min_weights"]
    acc = integer.infer(mx, randmodel.corner_inputs(mx))[-1]
    assert int(acc.max()) == 2**31 - 1
    # every corner input hits an exact tie before the shift
    ties = corners["rounding_ties"]
    layer = ties.layers[0]
    x = randmodel.corner_inputs(ties)
    acc = x @ torch.tensor(layer.weight).T + torch.tensor(layer.bias)
    for row in acc.tolist():
        for j, a in enumerate(row):
            assert (a * layer.m[j]) % 2 ** layer.s[j] == 2 ** (layer.s[j] - 1)
    assert min(min(r) for r in acc.tolist()) < 0 < max(max(r) for r in acc.tolist())


def test_corner_inputs():
    img = randmodel.random_image(1, a_bits=4, depth=1, width=5)
    x = randmodel.corner_inputs(img)
    assert x.tolist() == [[7] * 5, [-8] * 5, [0] * 5, [7, -8, 7, -8, 7], [-8, 7, -8, 7, -8]]
