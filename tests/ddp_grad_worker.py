"""Run by tests/test_distributed.py under ``python -m torch.distributed.run --nproc-per-node 2``.

Checks, on every rank, that DDP's averaged gradient is the mean of the per-rank *dithered* gradients:
a comm hook copies each bucket's local gradients before the allreduce; the local bias gradients
(= δ̃z at batch 1) are integer multiples of that rank's Δ (so NSD ran before the allreduce); a rerun
under ``no_sync`` with the same dither seed reproduces the local gradients bit for bit. Then it
trains with :func:`hwsim.capture.distributed.train_distributed` to write ``OUT/rank{r}``.
"""

from __future__ import annotations

import sys

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from hwsim.capture.distributed import train_distributed
from hwsim.capture.session import capture
from hwsim.models import build_model


def main(out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0)
    net = build_model("lenet300", in_channels=1, num_classes=10, image_size=8)
    ddp = DistributedDataParallel(net)
    local: dict[int, torch.Tensor] = {}

    def hook(state, bucket):
        for p, g in zip(bucket.parameters(), bucket.gradients(), strict=True):
            local[id(p)] = g.detach().clone()
        buf = bucket.buffer().div_(world)
        return dist.all_reduce(buf, async_op=True).get_future().then(lambda f: f.value()[0])

    ddp.register_comm_hook(None, hook)
    gen = torch.Generator().manual_seed(100 + rank)  # different data per rank
    x, y = torch.randn(1, 1, 8, 8, generator=gen), torch.randint(0, 10, (1,), generator=gen)
    with capture(net, method="dither", s=4.0, seed=rank) as cap:
        F.cross_entropy(ddp(x), y).backward()
        cap.step()
    stats = cap.last_stats
    assert len(local) == len(list(net.parameters())), "comm hook did not see every parameter"
    names = {id(m.bias): n for n, m in net.named_modules() if isinstance(m, torch.nn.Linear)}
    for p in net.parameters():
        g = local[id(p)]
        parts = [torch.zeros_like(g) for _ in range(world)]
        dist.all_gather(parts, g)
        assert torch.allclose(p.grad, torch.stack(parts).mean(0), rtol=1e-5, atol=1e-7), "DDP grad != mean of ranks"
        if id(p) in names and stats[names[id(p)]]["delta"] > 0:
            k = g / stats[names[id(p)]]["delta"]
            assert torch.allclose(k, k.round(), atol=1e-3), "local bias gradient is not Δ·integers"
        if world > 1:
            assert not torch.equal(parts[0], parts[1]) or not g.any(), "ranks computed identical gradients"
    assert all(st["density"] < 1.0 for st in stats.values())
    net.zero_grad(set_to_none=True)
    with ddp.no_sync(), capture(net, method="dither", s=4.0, seed=rank) as cap2:
        F.cross_entropy(ddp(x), y).backward()
        cap2.step()
    for p in net.parameters():
        assert torch.equal(p.grad, local[id(p)]), "no_sync rerun differs from the hooked local gradient"
    r = train_distributed(model="lenet300", epochs=1, limit_train=64, lr=0.01, sample_every=8, out=out,
                          seed=3)
    assert r.world_size == world and r.iterations == 64 // world
    dist.barrier()
    dist.destroy_process_group()
    print(f"rank {rank}: ok", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
