"""Ranks: one process, or one of torchrun's, and the few collective operations the loop needs.

Under torchrun (WORLD_SIZE > 1 in the environment) the process group is started with gloo on
CPUs and NCCL on GPUs; each rank uses the GPU of its LOCAL_RANK. Alone, every operation is
the identity, so the loop reads the same either way.
"""

from __future__ import annotations

import datetime
import os
import sys

import torch
import torch.distributed as dist


class Ranks:
    def __init__(self, rank: int, world: int, device: torch.device):
        self.rank, self.world, self.device = rank, world, device

    @property
    def main(self) -> bool:
        return self.rank == 0

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """`values` summed over the ranks (a copy, on the CPU)."""
        values = values.detach().clone()
        if self.world > 1:
            dist.all_reduce(values)
        return values.cpu()

    def any(self, flag: torch.Tensor) -> bool:
        """Whether `flag` is true on any rank: a decision every rank takes together."""
        return bool(self.sum(flag.to(torch.float64).reshape(1)).item() > 0)

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def say(self, text: str) -> None:
        if self.main:
            print(text, file=sys.stderr, flush=True)

    def progress(self, total: int, position, enabled: bool):
        """A tqdm bar on rank 0 (to stderr, when it is a terminal): loss, accuracy, images/s
        and the ETA."""
        if not (enabled and self.main):
            return None
        from tqdm import tqdm

        return tqdm(total=total, initial=position.step, desc=f"epoch {position.epoch + 1}",
                    unit="step", leave=False, dynamic_ncols=True,
                    disable=None)  # on a terminal only: a log file gets the epoch lines


_started = False


def setup(device: str, timeout: int = 300) -> Ranks:
    """This process's rank and device; under torchrun, the process group, whose collectives
    give up after `timeout` seconds (a stalled rank stops the others then, not in 30 min)."""
    global _started
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if device == "cuda":
        if not torch.cuda.is_available():
            from archc.train.errors import DataError

            raise DataError("--device cuda: no CUDA device here (use --device cpu)")
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        where = torch.device("cuda", local)
    else:
        where = torch.device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if where.type == "cuda" else "gloo",
                                timeout=datetime.timedelta(seconds=timeout))
        _started = True
    return Ranks(rank, world, where)


def teardown() -> None:
    global _started
    if _started and dist.is_initialized():
        dist.destroy_process_group()
    _started = False
