"""The training loop: a `Config` -> a trained net, its checkpoints, metrics and curves.

    prepare (net, data, out folder; all checked before any step)
      -> resume (the newest checkpoint in --out, if any)
      -> epochs of steps (checkpoints every --save-every steps and every epoch)
      -> evaluate each epoch (sharded over ranks, reduced), log, plot

Runs alone or under torchrun (DistributedDataParallel: gloo on CPUs, NCCL on GPUs); only
rank 0 writes files, and every decision that ends a run (a loss that is not finite) is
agreed by all ranks. A run killed at any point and started again with the same --out goes on
from its newest checkpoint and ends with the weights it would have had (bit for bit on a CPU).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn import functional as F

from archc.train import checkpoint, data, distributed, metrics, resume
from archc.train.config import Config
from archc.train.errors import DataError
from archc.train.state import Run, prepare

PLOT_EVERY_S = 30.0  # curves.png is redrawn at most this often, and after the last epoch


class Diverged(DataError):
    """The loss turned NaN or infinite: the run stops, its last good checkpoint kept."""


@dataclass
class Position:
    epoch: int = 0
    step: int = 0  # batches done in this epoch
    global_step: int = 0


@dataclass(frozen=True)
class Finished:
    """The run trained its last epoch."""

    epoch: int
    test_top1_error: float
    test_top5_error: float
    metrics: dict  # the epoch's row of metrics.jsonl, every figure by name


@dataclass(frozen=True)
class Stopped:
    """--max-steps ended the run mid-epoch: its place is saved, no epoch finished there (so no
    metrics row)."""

    global_step: int
    epoch: int  # counted from 1
    step_in_epoch: int


@dataclass(frozen=True)
class AlreadyDone:
    """--out holds a run of all the epochs asked for: nothing was trained."""

    epochs: int


Outcome = Finished | Stopped | AlreadyDone


def train(config: Config, progress: bool = True) -> Outcome:
    """Train as `config` says, resuming from the newest intact checkpoint in its folder."""
    ranks = distributed.setup(config.device, config.timeout)
    try:
        return _train(prepare(config, ranks), progress)
    finally:
        distributed.teardown()


def dry_run(config: Config) -> dict:
    """What `train(config)` would do (data, net, optimiser, steps), by name, without training."""
    ranks = distributed.setup(config.device, config.timeout)
    try:
        return prepare(config, ranks).plan()
    finally:
        distributed.teardown()


def _train(run: Run, progress: bool) -> Outcome:
    """The run in run.out, under its folder lock (rank 0 holds it)."""
    if not run.ranks.main:
        return _train_locked(run, progress)
    with resume.FolderLock(run.out):
        return _train_locked(run, progress)


def _train_locked(run: Run, progress: bool) -> Outcome:
    c, ranks = run.config, run.ranks
    position = Position()
    tally = None
    found = checkpoint.newest_intact(run.out, ranks.say)
    if found is not None:
        position, tally = _resume(run, *found)
        ranks.say(f"resuming from {found[0]} (epoch {position.epoch + 1}, step "
                  f"{position.step})")
    elif c.init_from:
        run.init_from(Path(c.init_from))
    if ranks.main:
        resume.write_manifest(run.out, run.manifest(), found[0] if found else None)
        resume.drop_rows_after(run.out / "metrics.jsonl", position.epoch)
    outcome: Outcome = AlreadyDone(c.epochs)
    total = data.steps_per_epoch(len(run.train), c.batch_size, ranks.world)
    while position.epoch < c.epochs:
        if c.max_steps and position.global_step >= c.max_steps:
            return outcome if isinstance(outcome, Finished) and not position.step else \
                _stopped(position)
        tally = _epoch(run, position, tally, progress)
        if position.step < total:  # --max-steps ended it early: keep the place, not an epoch
            if ranks.main:
                _save(run, position, tally)
            ranks.barrier()
            return _stopped(position)
        record = _end_of_epoch(run, position, tally)
        outcome = Finished(record["epoch"], record["test_top1_error"],
                           record["test_top5_error"], record)
        position = Position(position.epoch + 1, 0, position.global_step)
        tally = None
        if ranks.main:
            _save(run, position, None)
        ranks.barrier()
    return outcome


def _stopped(position: Position) -> Stopped:
    return Stopped(position.global_step, position.epoch + 1, position.step)


def _epoch(run: Run, position: Position, tally, progress: bool):
    c, ranks = run.config, run.ranks
    tally = tally or metrics.Tally(run.device, run.classes)
    total = data.steps_per_epoch(len(run.train), c.batch_size, ranks.world)
    bar = ranks.progress(total, position, progress)
    last_shown, seen, started = time.monotonic(), 0, time.monotonic()
    run.model.train()
    for b, index in data.batches(run.train, c.batch_size, c.seed, position.epoch, True,
                                 ranks.rank, ranks.world):
        if b < position.step:
            continue  # done before the checkpoint this run resumed from
        if c.max_steps and position.global_step >= c.max_steps:
            break
        x, y = data.make_batch(run.train, index, run.mean, run.std, run.augment, c.seed,
                               position.epoch, b)
        _set_lr(run, position.epoch + b / total)
        loss, logits = _step(run, x, y)
        tally.add(loss, logits, y)
        run.nonfinite |= ~torch.isfinite(loss.detach())
        position.step, position.global_step = b + 1, position.global_step + 1
        seen += len(y) * ranks.world
        if c.save_every and position.global_step % c.save_every == 0:
            _check_finite(run, position)
            if ranks.main:
                _save(run, position, tally)
            ranks.barrier()
        if bar is not None:
            bar.update(1)
            if time.monotonic() - last_shown > 1 or position.step == total:
                last_shown = time.monotonic()
                summary = metrics.Tally.summary(tally.tensor())
                bar.set_postfix(loss=f"{summary['loss']:.3f}",
                                acc=f"{1 - summary['top1_error']:.1%}",
                                img_s=f"{seen / (last_shown - started + 1e-9):.0f}")
    if bar is not None:
        bar.close()
    run.images_per_s = seen / (time.monotonic() - started + 1e-9)
    _check_finite(run, position)
    return tally


def _step(run: Run, x: torch.Tensor, y: torch.Tensor):
    c = run.config
    if c.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with run.autocast():
        outputs = run.ddp(x)
        main = outputs[0] if isinstance(outputs, tuple) else outputs
        loss = F.cross_entropy(main.float(), y, label_smoothing=c.label_smoothing)
        if isinstance(outputs, tuple):
            for name, logits in outputs[1].items():
                loss = loss + run.model.loss_weights[name] * F.cross_entropy(
                    logits.float(), y, label_smoothing=c.label_smoothing)
    # Under DDP the gradients stay allocated as views of its all-reduce buckets (see
    # state.prepare), so backward writes them in the buckets' layout; alone, None is cheaper.
    run.optimizer.zero_grad(set_to_none=run.ranks.world == 1)
    run.scaler.scale(loss).backward()
    run.scaler.step(run.optimizer)
    run.scaler.update()
    if run.ema is not None:
        run.ema.update_parameters(run.model)
    return loss, main


def _set_lr(run: Run, epoch: float) -> None:
    lr = run.schedule.lr(epoch)
    for group in run.optimizer.param_groups:
        group["lr"] = lr * group["lr_mult"]


def _check_finite(run: Run, position: Position) -> None:
    """Diverged on every rank if the loss was not finite on any since the last check."""
    if run.ranks.any(run.nonfinite):
        last = checkpoint.latest(run.out)
        kept = f"; the last good checkpoint is {last}" if last else ""
        raise Diverged(f"the loss turned NaN or infinite in epoch {position.epoch + 1} "
                       f"(by step {position.step}); stopping (try a lower --lr){kept}")


def _end_of_epoch(run: Run, position: Position, tally) -> dict:
    c, ranks = run.config, run.ranks
    train = metrics.Tally.summary(ranks.sum(tally.tensor()))
    test = evaluate(run.evaluated(), run.test, run, c.batch_size * 2)
    run.schedule.observe(test["top1_error"])
    record = {"epoch": position.epoch + 1, "step": position.global_step,
              "lr": run.schedule.lr(position.epoch + 1 - 1e-9),
              **{f"train_{k}": v for k, v in train.items()},
              **{f"test_{k}": v for k, v in test.items()},
              "images_per_s": run.images_per_s, "seconds": time.monotonic() - run.started}
    if ranks.main:
        metrics.append_jsonl(run.out / "metrics.jsonl", record)
        last = record["epoch"] == c.epochs
        if last or time.monotonic() - run.plotted >= PLOT_EVERY_S:
            # Drawing costs ~0.6 s: each epoch, it was three quarters of a digits run.
            metrics.plot_curves(metrics.read_jsonl(run.out / "metrics.jsonl"),
                                run.out / "curves.png")
            run.plotted = time.monotonic()
        ranks.say(f"epoch {record['epoch']}/{c.epochs}: train loss {train['loss']:.4f}, "
                  f"test top-1 error {test['top1_error']:.2%} (top-5 {test['top5_error']:.2%})"
                  f", {run.images_per_s:.0f} img/s")
    return record


def evaluate(model: torch.nn.Module, split: data.Split, run: Run, batch_size: int,
             predictions: list | None = None) -> dict:
    """Loss and top-1/top-5 error on `split`, each rank a disjoint shard, summed."""
    tally = metrics.Tally(run.device, run.classes)
    model.eval()
    with torch.no_grad(), run.autocast():
        for b, index in data.batches(split, batch_size, 0, 0, False, run.ranks.rank,
                                     run.ranks.world):
            x, y = data.make_batch(split, index, run.mean, run.std, None, 0, 0, b)
            if run.config.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            logits = _logits(model(x)).float()
            tally.add(F.cross_entropy(logits, y), logits, y)
            if predictions is not None:
                predictions.append((logits.argmax(1).cpu(), y.cpu()))
    return metrics.Tally.summary(run.ranks.sum(tally.tensor()))


def _logits(outputs):
    return outputs[0] if isinstance(outputs, tuple) else outputs


def _save(run: Run, position: Position, tally) -> None:
    state = run.state()
    state.update({"epoch": position.epoch, "step": position.step,
                  "global_step": position.global_step,
                  "tally": tally.tensor().cpu() if tally is not None else None})
    checkpoint.save(run.out, position.global_step, state, run.config.keep)


def _resume(run: Run, path: Path, state: dict):
    from archc.train.config import Config

    resume.refuse_other_net(state, run.analysis.graph, path)
    resume.same_options(run.config, Config.from_json(json.loads(state["config"])), run.out)
    run.load_state(path, state)
    position = Position(int(state["epoch"]), int(state["step"]), int(state["global_step"]))
    tally = None
    if state.get("tally") is not None:
        tally = metrics.Tally(run.device, run.classes)
        loss, top1, top5, count = state["tally"].tolist()
        tally.loss += loss
        tally.top1 += int(top1)
        tally.top5 += int(top5)
        tally.count += int(count)
    return position, tally
