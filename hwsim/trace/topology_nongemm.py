"""The non-GEMM work of a named topology, derived from its structure (for synthetic traces).

Same records and the same per-call rule as capture (:func:`hwsim.trace.nongemm.call_row`), charged to
the last GEMM that ran before the op (ops before the first GEMM go to the first). Every op is in the
autograd graph, so each has its backward; parameters (norm scales and shifts) get gradients too.

CNNs (``hwsim.trace.topology``), per mini-batch of ``batch`` examples:

* ``lenet5``, ``alexnet``, ``vgg16``: ReLU after every layer but the classifier; a max-pool after every
  convolution whose output is larger than the next layer's input (LeNet-5 2×2 after conv1 and conv2,
  AlexNet 3×3/2 after conv1, conv2 and conv5, VGG-16 2×2 after each stage), from input to that size.
* ``resnet18``: BatchNorm after every conv (downsamples included), ReLU after conv1 and each block's
  first conv and after each residual add, 3×3/2 max-pool after conv1, global average pool before fc.
* Classifiers end in a softmax cross-entropy (``loss``) over ``batch × classes`` logits.

Transformers (``hwsim.trace.transformers``), per block at B examples × T tokens, hidden d, H heads, MLP
width F: two LayerNorms (RMSNorms for Llama) over B·T·d, a softmax over the B·H·T·T scores of each
head's QKᵀ (charged to ``…:qk``), GELU over B·T·F (Llama: SiLU and the gate product over B·T·F),
two residual adds over B·T·d. GPT-2, ViT and Llama are pre-norm (the block's first norm is charged to
the GEMM before the block); BERT is post-norm (each add is followed by its LayerNorm). ``head=True`` adds
the token and position embedding look-ups and their add (GPT-2, BERT; Llama: token only; ViT: the
position add after the patch embedding; BERT: the embeddings' LayerNorm), the final norm (BERT: its MLM
transform's GELU and LayerNorm) and a softmax cross-entropy over the head's logits. Dropout rates are a training choice: none are charged. Overlapping max-pools (3×3/2)
count their input elements, not the 2.25× more window comparisons.

Layer lists the module does not know (custom layers, SCALE-Sim files) get no records (``None``).
numpy-free.
"""

from __future__ import annotations

from hwsim.trace.nongemm import NonGemmWork, call_row
from hwsim.trace.transformers import TRANSFORMERS, transformer_shape


class _Rows:
    def __init__(self, first: str) -> None:
        self.rows: list[tuple[str, str, list[int]]] = []
        self.at = first

    def op(self, kind: str, ins: list[int], out: int, grads: list[int] | None = None) -> None:
        self.rows.append((self.at, kind, call_row(kind, ins, out, ins if grads is None else grads)))

    def eltwise(self, kind: str, n: int) -> None:
        self.op(kind, [n], n)

    def norm(self, kind: str, n: int, channels: int) -> None:
        params = [channels, channels] if kind != "rmsnorm" else [channels]
        self.op(kind, [n, *params], n)

    def add(self, n: int) -> None:
        self.op("add", [n, n], n)

    def loss(self, batch: int, classes: int) -> None:
        self.op("loss", [batch * classes, batch], 1, [batch * classes])


def _cnn(model: str, batch: int) -> list[tuple[str, str, list[int]]] | None:
    from hwsim.trace.topology import MODELS

    if model not in MODELS:
        return None
    specs = MODELS[model]()
    geoms = [s.geometry(batch) for s in specs]
    r = _Rows(specs[0].name)
    names = {s.name for s in specs}
    for i, (s, g) in enumerate(zip(specs, geoms, strict=True)):
        r.at, n = s.name, g.N * g.K * g.P * g.Q
        if model == "resnet18" and s.kind == "conv2d":
            r.norm("batchnorm", n, g.K)
            if s.name == "conv1" or s.name.endswith(".conv1"):
                r.eltwise("relu", n)
            if s.name.endswith(".downsample.0") or (s.name.endswith(".conv2")
                                                    and f"{s.name[:-6]}.downsample.0" not in names):
                r.add(n)
                r.eltwise("relu", n)
            if s.name == "layer4.1.conv2":
                r.op("avgpool", [n], g.N * g.K)
        elif i < len(specs) - 1:
            r.eltwise("relu", n)
        nxt = geoms[i + 1] if i + 1 < len(geoms) else None
        if nxt is not None and s.kind == "conv2d" and s.name != "layer4.1.conv2":
            pooled = nxt.N * nxt.C * nxt.H * nxt.W  # the next layer's input: smaller when this one pools
            if pooled < n:
                r.op("maxpool", [n], pooled)
    if specs[-1].kind == "linear":
        r.loss(batch, geoms[-1].K)
    return r.rows


def _transformer(model: str, batch: int, options: dict) -> list[tuple[str, str, list[int]]]:
    from hwsim.trace.transformers import transformer_layers

    t = TRANSFORMERS[model]
    sh = transformer_shape(model, **options)
    T, H, d, F, nb, head = sh["seq"], sh["heads"], sh["hidden"], sh["ffn"], sh["blocks"], sh["head"]
    names = [s.name for s in transformer_layers(model, **options)]
    r = _Rows(names[0])
    x, scores, mlp = batch * T * d, batch * H * T * T, batch * T * F
    norm = "rmsnorm" if t.family == "llama" else "layernorm"
    if head:
        if t.family == "vit":
            r.add(x)  # + position embeddings, after the patch embedding (charged to it)
        else:
            r.op("embedding", [batch * T, t.vocab * d], x, [t.vocab * d])
            if t.family != "llama":
                r.op("embedding", [batch * T, T * d], x, [T * d])
                r.add(x)
            if t.family == "bert":
                r.norm(norm, x, d)
    at = {"gpt2": ("h.{}", "attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"),
          "vit": ("blocks.{}", "attn", "attn.proj", "mlp.fc1", "mlp.fc2"),
          "bert": ("layer.{}", "attention.self", "attention.output.dense", "intermediate.dense", "output.dense"),
          "llama": ("layers.{}", "self_attn", "self_attn.o_proj", "mlp.gate_proj", "mlp.down_proj")}[t.family]
    for i in range(nb):
        p = at[0].format(i)
        if t.family != "bert":
            r.norm(norm, x, d)  # pre-norm: charged to the GEMM before the block
        r.at = f"{p}.{at[1]}:qk"
        r.eltwise("softmax", scores)
        r.at = f"{p}.{at[2]}"
        r.add(x)
        r.norm(norm, x, d)  # BERT: after the add; pre-norm: the MLP's norm
        r.at = f"{p}.{at[3]}"
        if t.family == "llama":
            r.eltwise("silu", mlp)
            r.at = f"{p}.mlp.up_proj"
            r.op("mul", [mlp, mlp], mlp)
        else:
            r.eltwise("gelu", mlp)
        r.at = f"{p}.{at[4]}"
        r.add(x)
        if t.family == "bert":
            r.norm(norm, x, d)
    if head:
        if t.family == "bert":
            r.at = "cls.predictions.transform.dense"
            r.eltwise("gelu", x)
        r.norm(norm, x, d)  # the final norm (BERT: the head transform's)
        r.at = names[-1]
        r.loss(batch if t.family == "vit" else batch * T, t.classes or t.vocab)
    return r.rows


def topology_nongemm(model: str | None, batch: int, options: dict | None = None) -> NonGemmWork | None:
    """The non-GEMM work of ``model`` at ``batch`` examples (``options``: a transformer's seq, heads, ...);
    ``None`` for a model this module does not describe."""
    if model is None:
        return None
    if model in TRANSFORMERS:
        rows = _transformer(model, batch, {k: v for k, v in (options or {}).items() if v is not None})
    else:
        rows = _cnn(model, batch)
    return None if rows is None else NonGemmWork.from_rows(rows)
