"""The text report of `archc kernels`: one row per launch (or per config with --configs), the
totals, and what could fail. Data in, text out; archc.cli.kernels owns the data."""

from __future__ import annotations

from tabulate import tabulate

HEADERS = ("kernel", "flags", "shape", "n", "config", "regs", "spill", "smem KB", "blk/SM",
           "tensor", "ld/st B", "waves", "model us", "ideal us", "bound")


def render(results: list, args, target) -> str:
    rows, problems = [], []
    for r in results:
        best = r.best(target)
        shown = r.configs if args.configs else [best] if best else r.configs
        for c in shown:
            rows.append(_row(r, c, target, marked=args.configs and c is best))
        if r.refused:
            rows.append((r.kernel, r.flags, r.shape, r.count, "none", *[""] * 9, "refused"))
            problems.append(f"{r.kernel} {r.shape}: {r.refused}")
        elif best is None:
            problems.append(f"{r.kernel} {r.shape}: no config can launch on {target.name}: "
                            + "; ".join(_why(c, target) for c in r.configs))
    spilled = sorted({f"{r.kernel} {c.name}" for r in results for c in r.configs
                      if c.usage and c.usage.spill_bytes})
    head = (f"{args.file}: {sum(r.count for r in results)} launches ({len(results)} distinct) "
            f"on {target.name} ({target.device}), {args.dtype}, batch {args.batch}, "
            f"{'train' if args.train else 'eval'}")
    lines = [head, "", tabulate(rows, HEADERS, tablefmt="simple", disable_numparse=True), ""]
    lines.append(_totals(results, target))
    lines += [f"warning: spills registers: {name}" for name in spilled]
    lines += [f"error: {p}" for p in problems]
    return "\n".join(lines) + "\n"


def _row(r, c, target, marked: bool) -> tuple:
    name = f"{c.name} *" if marked else c.name
    if c.usage is None:
        return (r.kernel, r.flags, r.shape, r.count, name, *[""] * 9, "compile error")
    u, t = c.usage, c.timing
    fits = u.launchable(target)
    return (r.kernel, r.flags, r.shape, r.count, name, u.registers, u.spill_bytes,
            f"{u.shared / 1024:.0f}" + ("" if fits else " OVER"), u.blocks_per_sm(target),
            u.tensor_cores, f"{u.widest_load}/{u.widest_store}", f"{t.waves:.2f}",
            f"{t.model_s * 1e6:.1f}", f"{t.ideal_s * 1e6:.1f}", t.bound)


def _why(c, target) -> str:
    if c.usage is None:
        return f"{c.name}: {c.error.splitlines()[-1] if c.error else 'did not compile'}"
    return (f"{c.name}: {c.usage.shared // 1024} KB of shared memory, the limit is "
            f"{target.shared_per_block // 1024} KB")


def totals(results: list, target) -> tuple[float, float]:
    """(modelled, ideal) seconds of the launches that can run, each at its best config (a
    launch's ideal depends on its sizes only, not on the config)."""
    best = [(r.count, r.best(target)) for r in results]
    return (sum(n * b.timing.model_s for n, b in best if b),
            sum(n * b.timing.ideal_s for n, b in best if b))


def _totals(results: list, target) -> str:
    model, ideal = totals(results, target)
    ratio = f" ({model / ideal:.2f}x)" if ideal else ""
    return (f"modelled {model * 1e6:.1f} us against an ideal {ideal * 1e6:.1f} us{ratio} for "
            f"the Triton launches: a roofline model on {target.device}'s public peaks "
            "(targets.json), not a measurement; launch latency and the layers left to torch "
            "are not counted")
