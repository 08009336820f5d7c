"""Run by tests/test_distributed.py under ``python -m torch.distributed.run --nproc-per-node 2``.

Checks, on every rank, that the explicit gradient average of :mod:`hwsim.capture.distributed`
(``average_gradients``, used instead of a ``DistributedDataParallel`` wrapper) equals DDP's:
the same model, data and dither seed run once under DDP (a comm hook copies each bucket's local
gradients before its allreduce) and once plain + ``average_gradients``. The local gradients agree
bit for bit, the averaged ones to float rounding, and both are the mean of the per-rank *dithered*
gradients; the local bias gradients (= δ̃z at batch 1) are integer multiples of that rank's Δ (so NSD
ran before the allreduce). Then it trains with :func:`hwsim.capture.distributed.train_distributed`
to write ``OUT/rank{r}`` and leaves through ``shutdown()`` (gc + barrier + destroy).
"""

from __future__ import annotations

import copy
import gc
import sys

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from hwsim.capture import CaptureConfig, DistributedOptions, TrainConfig
from hwsim.capture.distributed import average_gradients, shutdown, train_distributed
from hwsim.capture.session import capture
from hwsim.capture.zoo.models import build_model


def ddp_reference(net: torch.nn.Module, x, y, rank: int, world: int):
    """(local grads before the allreduce, averaged grads, dither stats) under a real DDP wrapper."""
    net = copy.deepcopy(net)
    ddp = DistributedDataParallel(net)
    local: dict[int, torch.Tensor] = {}
    index = {id(p): i for i, p in enumerate(net.parameters())}

    def hook(state, bucket):
        for p, g in zip(bucket.parameters(), bucket.gradients(), strict=True):
            local[index[id(p)]] = g.detach().clone()
        buf = bucket.buffer().div_(world)
        return dist.all_reduce(buf, async_op=True).get_future().then(lambda f: f.value()[0])

    ddp.register_comm_hook(None, hook)
    with capture(net, method="dither", s=4.0, seed=rank) as cap:
        F.cross_entropy(ddp(x), y).backward()
        cap.step()
    assert len(local) == len(list(net.parameters())), "comm hook did not see every parameter"
    averaged = [p.grad.detach().clone() for p in net.parameters()]
    del ddp, net, hook
    gc.collect()  # the reducer (and its Gloo work) goes now, not at interpreter exit
    return [local[i] for i in range(len(local))], averaged, cap.last_stats


def main(out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0)
    net = build_model("lenet300", in_channels=1, num_classes=10, image_size=8)
    gen = torch.Generator().manual_seed(100 + rank)  # different data per rank
    x, y = torch.randn(1, 1, 8, 8, generator=gen), torch.randint(0, 10, (1,), generator=gen)
    ddp_local, ddp_avg, ddp_stats = ddp_reference(net, x, y, rank, world)

    with capture(net, method="dither", s=4.0, seed=rank) as cap:  # same dither seed: same δ̃z
        F.cross_entropy(net(x), y).backward()
        cap.step()
    params = list(net.parameters())
    local = [p.grad.detach().clone() for p in params]
    assert cap.last_stats == ddp_stats
    for a, b in zip(local, ddp_local, strict=True):
        assert torch.equal(a, b), "local gradient differs from DDP's pre-allreduce gradient"
    average_gradients(params, world)
    names = {id(m.bias): n for n, m in net.named_modules() if isinstance(m, torch.nn.Linear)}
    for p, g, ref in zip(params, local, ddp_avg, strict=True):
        assert torch.allclose(p.grad, ref, rtol=1e-6, atol=1e-9), "average_gradients != DDP's average"
        parts = [torch.zeros_like(g) for _ in range(world)]
        dist.all_gather(parts, g)
        assert torch.allclose(p.grad, torch.stack(parts).mean(0), rtol=1e-5, atol=1e-7), "grad != mean of ranks"
        if id(p) in names and cap.last_stats[names[id(p)]]["delta"] > 0:
            k = g / cap.last_stats[names[id(p)]]["delta"]
            assert torch.allclose(k, k.round(), atol=1e-3), "local bias gradient is not Δ·integers"
        if world > 1:
            assert not torch.equal(parts[0], parts[1]) or not g.any(), "ranks computed identical gradients"
    assert all(st["density"] < 1.0 for st in cap.last_stats.values())
    config = TrainConfig(model="lenet300", epochs=1, batch_size=1, limit_train=64,
                         capture=CaptureConfig(sample_every=8, seed=3))
    r = train_distributed(config, DistributedOptions(), out=out)  # lr: the linear rule from config.lr = 0.05
    assert r.world_size == world and r.iterations == 64 // world
    shutdown()
    print(f"rank {rank}: ok", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
