"""A roofline model of one launch on a target: a bound, not a measurement.

Each kernel file says what a launch must do (`work(args, blocks, target)`: its useful and
padded tensor-core FLOPs, its compulsory DRAM bytes and the bytes its tiling moves); this turns
that into time on a target's public peaks (targets.json):

- ideal: max(useful FLOPs at the tensor-core peak, compulsory bytes at the HBM bandwidth);
- model: max(the busiest SM's padded FLOPs at its share of the peak (tile and wave
  quantisation), the moved bytes at the HBM bandwidth (re-reads of operands that L2 does not
  hold)).

Not modelled: launch latency, L2 and shared-memory bandwidth, latency hiding by occupancy,
CUDA-core work (pool compares, epilogues). An operand is held by L2 when it fits in half of it
(an H100's L2 is two partitions; an A100's too).
"""

from __future__ import annotations

from dataclasses import dataclass

from .aot import Target, Usage


@dataclass(frozen=True)
class Work:
    """What one launch with one config does."""

    flops: int  # useful tensor-core FLOPs (two per multiply-add); 0 without a dot
    padded_flops: int  # what the tiles compute, padding included
    bytes: int  # compulsory DRAM traffic: each input read once, each output written once
    moved: int  # the DRAM traffic of this config's tiles and grid order


@dataclass(frozen=True)
class Timing:
    model_s: float
    ideal_s: float
    bound: str  # "memory" or "compute": which side of the model is longer
    waves: float  # programs over the blocks resident at once on all SMs


def timing(work: Work, programs: int, usage: Usage, target: Target, dtype: str) -> Timing:
    peak = target.tensor_flops[dtype]
    bandwidth = target.hbm_bytes_per_s
    busiest = -(-programs // target.sms)  # programs on the SM that has the most
    compute = busiest * work.padded_flops / max(1, programs) / (peak / target.sms)
    memory = work.moved / bandwidth
    ideal = max(work.flops / peak, work.bytes / bandwidth)
    resident = target.sms * max(1, usage.blocks_per_sm(target))
    return Timing(max(compute, memory), ideal, "compute" if compute > memory else "memory",
                  programs / resident)


def held_by_l2(nbytes: int, target: Target) -> bool:
    return nbytes <= target.l2_bytes // 2


def cdiv(a: int, b: int) -> int:
    return -(-a // b)
