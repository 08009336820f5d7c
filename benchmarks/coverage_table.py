"""GEMM-MAC coverage, δ̃z density, max bits and scnn iteration speed-up of five model families.

Small stand-ins written here (no torchvision/timm/transformers): a ResNet (hwsim's resnet18_cifar), a
MobileNet-style net (in-place ReLU6, depthwise + pointwise inverted residuals), a ViT whose blocks use
``nn.MultiheadAttention``, a GPT-2-style LM whose layers are Hugging Face-style ``Conv1D`` (addmm) with explicit
matmul attention, a BERT-style encoder (separate Linear q/k/v, ``torch.matmul`` scores), and two decoders through
``F.scaled_dot_product_attention`` as Hugging Face runs them in ``train()``: GPT-2-style with attention dropout 0.1,
Llama-style with grouped-query attention (``enable_gqa=True``), RMSNorm and SwiGLU. Vision models train on
the embedded digits (8×8, upsampled to 16×16); the language models on characters of a CPython standard-library
source file (next-character loss). Each runs ``--steps`` SGD iterations under ``capture(method="dither")``, then
the last sampled iteration is simulated on the shipped ``scnn`` architecture. Two more rows are hwsim's own zoo
transformers, as ``hwsim trace`` builds them: ``vit_digits`` on the 8×8 digits and ``gpt_char`` on the embedded
``pystdlib`` corpus (context 32). Writes ``benchmarks/results/coverage_table.json`` (the README's coverage table,
``scripts/readme_tables.py``).

    python benchmarks/coverage_table.py [--steps 20] [--models resnet mobilenet vit gpt2 bert gpt2_sdpa llama_gqa
                                                          vit_digits gpt_char]
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import hwsim
from hwsim.capture.session import capture
from hwsim.capture.zoo.data import load_dataset
from hwsim.capture.zoo.models import build_model
from hwsim.trace.format import load

if str(Path(__file__).resolve().parent) not in sys.path:  # run by path from elsewhere
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from mobilenet_block import InvertedResidual  # noqa: E402  (shared with noise_table.py)


class Conv1D(nn.Module):
    def __init__(self, nf: int, nx: int) -> None:
        super().__init__()
        self.nf = nf
        self.weight = nn.Parameter(torch.randn(nx, nf) * 0.02)
        self.bias = nn.Parameter(torch.zeros(nf))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addmm(self.bias, x.view(-1, x.size(-1)), self.weight).view(*x.shape[:-1], self.nf)


class MobileNetish(nn.Module):
    def __init__(self, classes: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(16),
                                  nn.ReLU6(inplace=True))
        self.blocks = nn.Sequential(InvertedResidual(16, 16, 4, 1), InvertedResidual(16, 16, 4, 2),
                                    InvertedResidual(16, 16, 4, 1))
        self.head = nn.Linear(16, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)).mean((2, 3)))


class ViTBlock(nn.Module):
    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.ln1(x)
        x = x + self.attn(h, h, h)[0]
        return x + self.mlp(self.ln2(x))


class ViT(nn.Module):
    def __init__(self, classes: int, d: int = 32) -> None:
        super().__init__()
        self.patch = nn.Conv2d(1, d, 4, stride=4)  # 16×16 → 4×4 tokens
        self.cls = nn.Parameter(torch.zeros(1, 1, d))
        self.pos = nn.Parameter(torch.randn(1, 17, d) * 0.02)
        self.blocks = nn.Sequential(ViTBlock(d, 4), ViTBlock(d, 4))
        self.ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.patch(x).flatten(2).transpose(1, 2)
        t = torch.cat([self.cls.expand(len(t), -1, -1), t], 1) + self.pos
        return self.head(self.ln(self.blocks(t))[:, 0])


class GPT2Block(nn.Module):
    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.h = heads
        self.ln_1, self.ln_2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.c_attn, self.c_proj = Conv1D(3 * d, d), Conv1D(d, d)
        self.c_fc, self.mlp_proj = Conv1D(4 * d, d), Conv1D(d, 4 * d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(d, 2)
        q, k, v = (z.view(b, t, self.h, d // self.h).transpose(1, 2) for z in (q, k, v))
        s = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(d // self.h)
        s = s.masked_fill(~torch.ones(t, t, dtype=torch.bool).tril(), float("-inf"))
        a = torch.matmul(s.softmax(-1), v).transpose(1, 2).reshape(b, t, d)
        x = x + self.c_proj(a)
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x))))


class GPT2ish(nn.Module):
    def __init__(self, vocab: int = 128, d: int = 32, t: int = 16) -> None:
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, d), nn.Embedding(t, d)
        self.h = nn.Sequential(GPT2Block(d, 4), GPT2Block(d, 4))
        self.ln_f = nn.LayerNorm(d)
        self.lm_head = nn.Linear(d, vocab, bias=False)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
        return self.lm_head(self.ln_f(self.h(x)))


class BertLayer(nn.Module):
    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.h = heads
        self.query, self.key, self.value = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.dense, self.ln1 = nn.Linear(d, d), nn.LayerNorm(d)
        self.intermediate, self.output, self.ln2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d), nn.LayerNorm(d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape

        def heads(z: torch.Tensor) -> torch.Tensor:
            return z.view(b, t, self.h, d // self.h).permute(0, 2, 1, 3)
        q, k, v = heads(self.query(x)), heads(self.key(x)), heads(self.value(x))
        p = (torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(d // self.h)).softmax(-1)
        ctx = torch.matmul(p, v).permute(0, 2, 1, 3).reshape(b, t, d)
        x = self.ln1(x + self.dense(ctx))
        return self.ln2(x + self.output(F.gelu(self.intermediate(x))))


class Bertish(nn.Module):
    def __init__(self, vocab: int = 128, d: int = 32, t: int = 16) -> None:
        super().__init__()
        self.word, self.pos = nn.Embedding(vocab, d), nn.Embedding(t, d)
        self.encoder = nn.Sequential(BertLayer(d, 4), BertLayer(d, 4))
        self.decoder = nn.Linear(d, vocab)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(self.word(idx) + self.pos(torch.arange(idx.shape[1]))))


class SdpaBlock(nn.Module):
    """A GPT-2 block as Hugging Face runs it in train(): SDPA, causal, attention dropout 0.1 (issue 20 item 4)."""

    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.h = heads
        self.ln_1, self.ln_2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.c_attn, self.c_proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.c_fc, self.mlp_proj = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = (z.view(b, t, self.h, d // self.h).transpose(1, 2) for z in self.c_attn(self.ln_1(x)).split(d, 2))
        a = F.scaled_dot_product_attention(q, k, v, dropout_p=0.1 if self.training else 0.0, is_causal=True)
        x = x + self.c_proj(a.transpose(1, 2).reshape(b, t, d))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x))))


class LlamaBlock(nn.Module):
    """A Llama-style block: RMSNorm, grouped-query attention through SDPA(enable_gqa=True), SwiGLU (issue 20 item 4)."""

    def __init__(self, d: int, heads: int, kv_heads: int) -> None:
        super().__init__()
        self.h, self.kv, self.hd = heads, kv_heads, d // heads
        self.q_proj, self.o_proj = nn.Linear(d, d, bias=False), nn.Linear(d, d, bias=False)
        self.k_proj = nn.Linear(d, kv_heads * self.hd, bias=False)
        self.v_proj = nn.Linear(d, kv_heads * self.hd, bias=False)
        self.gate, self.up = nn.Linear(d, 2 * d, bias=False), nn.Linear(d, 2 * d, bias=False)
        self.down = nn.Linear(2 * d, d, bias=False)
        self.w1, self.w2 = nn.Parameter(torch.ones(d)), nn.Parameter(torch.ones(d))

    @staticmethod
    def _rms(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        h = self._rms(x, self.w1)
        q = self.q_proj(h).view(b, t, self.h, self.hd).transpose(1, 2)
        k = self.k_proj(h).view(b, t, self.kv, self.hd).transpose(1, 2)
        v = self.v_proj(h).view(b, t, self.kv, self.hd).transpose(1, 2)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        x = x + self.o_proj(a.transpose(1, 2).reshape(b, t, d))
        h = self._rms(x, self.w2)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


class DecoderLM(nn.Module):
    def __init__(self, blocks: nn.Module, vocab: int = 128, d: int = 32) -> None:
        super().__init__()
        self.wte, self.blocks, self.lm_head = nn.Embedding(vocab, d), blocks, nn.Linear(d, vocab, bias=False)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.lm_head(self.blocks(self.wte(idx)))


def _text_batches(batch: int, t: int, steps: int):
    text = inspect.getsource(textwrap).encode("ascii", "replace")
    data = torch.tensor(list(text), dtype=torch.long).clamp(max=127)
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        i = torch.randint(0, len(data) - t - 1, (batch,), generator=g)
        x = torch.stack([data[j:j + t] for j in i])
        y = torch.stack([data[j + 1:j + t + 1] for j in i])
        yield x, lambda out, y=y: F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))


def _zoo_batches(dataset: str, batch: int, size: int, steps: int):
    d = load_dataset(dataset)
    for i, (x, y) in enumerate(d.batches(split="train", batch_size=batch, image_size=size, shuffle=True,
                                         generator=torch.Generator().manual_seed(0))):
        if i >= steps:
            return
        yield x, lambda out, y=y: F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))


def _image_batches(batch: int, steps: int):
    d = load_dataset("digits")
    for i, (x, y) in enumerate(d.batches(split="train", batch_size=batch, image_size=16, shuffle=True,
                                                 generator=torch.Generator().manual_seed(0))):
        if i >= steps:
            return
        yield x, lambda out, y=y: F.cross_entropy(out, y)


ROWS = {"resnet": "ResNet-18 (hwsim resnet18_cifar)", "mobilenet": "MobileNet-style (in-place ReLU6, depthwise)",
        "vit": "ViT, nn.MultiheadAttention", "gpt2": "GPT-2-style, HF-style Conv1D", "bert": "BERT-style encoder",
        "gpt2_sdpa": "GPT-2-style, SDPA with attention dropout 0.1 (HF train())",
        "llama_gqa": "Llama-style, SDPA grouped-query attention (enable_gqa), RMSNorm, SwiGLU",
        "vit_digits": "zoo: vit_digits (on digits)", "gpt_char": "zoo: gpt_char (on pystdlib)"}
COLUMNS = ["model", "GEMMs", "GEMM-MAC coverage (forward / backward-data / backward-weight)", "δ̃z density",
           "max bits", "scnn iteration speed-up"]


def build(name: str) -> tuple[nn.Module, str]:
    if name == "vit_digits":
        return build_model(name, in_channels=1, num_classes=10, image_size=8), "digits"
    if name == "gpt_char":
        return build_model(name, in_channels=1, num_classes=128, image_size=32), "pystdlib"
    if name == "resnet":
        return build_model("resnet18_cifar", in_channels=1, num_classes=10, image_size=16), "image"
    if name == "gpt2_sdpa":
        return DecoderLM(nn.Sequential(SdpaBlock(32, 4), SdpaBlock(32, 4))), "text"
    if name == "llama_gqa":
        return DecoderLM(nn.Sequential(LlamaBlock(32, 4, 2), LlamaBlock(32, 4, 2))), "text"
    return {"mobilenet": (MobileNetish(10), "image"), "vit": (ViT(10), "image"), "gpt2": (GPT2ish(), "text"),
            "bert": (Bertish(), "text")}[name]


def run(name: str, steps: int, workdir: Path) -> dict:
    torch.manual_seed(0)
    net, kind = build(name)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    if kind in ("digits", "pystdlib"):
        batches = _zoo_batches(kind, 8, 8 if kind == "digits" else 32, steps)
    else:
        batches = _image_batches(8, steps) if kind == "image" else _text_batches(8, 16, steps)
    out = workdir / name
    t0 = time.perf_counter()
    with capture(net, method="dither", out=out, sample_every=max(1, steps // 2), optimizer=opt) as cap:
        for x, loss_fn in batches:
            opt.zero_grad()
            loss_fn(net(x)).backward()
            opt.step()
    t_cap = time.perf_counter() - t0
    tr = load(out)
    cov = tr.meta["coverage"]
    t0 = time.perf_counter()
    r = hwsim.simulate(tr, "scnn")
    return {"model": name, "gemms": len(tr.layers), "coverage": min(cov[p] for p in ("forward", "backward_data",
                                                                                       "backward_weight")),
            "passes": [cov[p] for p in ("forward", "backward_data", "backward_weight")],
            "missed": cov["missed"], "density": cap.summary()["weighted_density"], "max_bits": cap.summary()["max_bits"],
            "speedup": r.speedup(), "capture_s": t_cap, "sim_s": time.perf_counter() - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--models", nargs="+", default=list(ROWS))
    ap.add_argument("--json", default=str(Path(__file__).parent / "results" / "coverage_table.json"),
                    help="where to write the table (default: benchmarks/results/coverage_table.json; '' for none)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    print("| model | GEMMs | GEMM-MAC coverage (min over passes) | δ̃z density | max bits | scnn iteration speed-up |")
    print("|---|---|---|---|---|---|")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            r = run(name, args.steps, Path(tmp))
            print(f"| {name} | {r['gemms']} | {r['coverage']:.1%} | {r['density']:.3f} | {r['max_bits']} | "
                  f"{r['speedup']:.2f}× |  <!-- capture {r['capture_s']:.1f} s, sim {r['sim_s']:.1f} s"
                  f"{', missed: ' + str(r['missed']) if r['missed'] else ''} -->", flush=True)
            rows.append(dict(zip(COLUMNS, [ROWS.get(name, name), str(r["gemms"]),
                                           " / ".join(f"{c:.1%}" for c in r["passes"]), f"{r['density']:.3f}",
                                           str(r["max_bits"]), f"{r['speedup']:.2f}×"], strict=True)))
    if args.json:
        cmd = "python benchmarks/coverage_table.py" + "".join(f" {a}" for a in sys.argv[1:])
        doc = {"command": cmd, "steps": args.steps, "torch": torch.__version__, "columns": COLUMNS, "rows": rows}
        Path(args.json).write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
