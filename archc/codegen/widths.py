"""Widths: the channel counts of the values of one emitted class, as expressions.

In a block class they are expressions in the block's parameters and its input channels
(`n1 + n3 + n5 + proj`), read from the statements that made each layer, so one class serves
every use of the block. A net class is written for one build, but its width parameters
(archc.analysis.params: `classes`, a width multiplier) are constructor arguments, so its widths
are expressions in those, its other parameters' values put in; a head class that is not one
block use is written in numbers.
`Widths` keeps them for one class as the emitter walks its layers, and prints them as Python
for the class's code.
"""

from __future__ import annotations

from archc import ops
from archc.codegen import pyexpr
from archc.codegen.names import fresh, safe
from archc.ir.graph import BlockUseInfo
from archc.lang import ast
from archc.lang.evaluate import evaluate
from archc.pipeline import Analysis


class Widths:
    def __init__(self, analysis: Analysis, flat: dict[int, bool], scope_input: int,
                 block: BlockUseInfo | None, net_args: tuple[str, ...] = ()):
        """`block`: the use a block class is written from; `net_args`: for a net class, its
        width parameters (the constructor arguments)."""
        self.a, self.flat = analysis, flat
        self.symbolic = block is not None or bool(net_args)
        self.params = _python_names(block) if block is not None else \
            _net_names(net_args)
        self.defaults = {} if block is not None else \
            {name: analysis.graph.params[name] for name in net_args}
        # A net parameter whose default reads another (`wide = width * 2`) is computed in
        # __init__ from the arguments given, as the front end computes it for `--set`; unless
        # this build was given its value (`--set wide=96`).
        params = analysis.graph.params
        self.derived = {} if block is not None else {
            p.name: p.default for p in analysis.graph.syntax.params
            if p.name in net_args and p.default is not None and
            any(ast.reads(p.default, other) for other in net_args if other != p.name) and
            evaluate(p.default, dict(params), ()) == params[p.name]}
        span = analysis.graph.node(scope_input).span
        self.fixed = {} if block is not None else {  # the net's other parameters: values
            k: pyexpr.number(v, span) for k, v in analysis.graph.params.items()
            if k not in net_args}
        first = ast.Ref(pyexpr.INPUT, span) if block is not None else \
            self._number(scope_input)
        self.values: dict[int, ast.Expr] = {scope_input: first}
        self.functions: set[str] = set()  # of archc.lang.functions, that its widths call
        values = dict(block.args) if block is not None else analysis.graph.params
        self.reals = {name for name, v in values.items() if isinstance(v, float)}

    def text(self, n: int) -> str:
        return self.python(self.values[n])

    def python(self, expr: ast.Expr, real: bool = False) -> str:
        """`real`: the value is a real number (a rate), so `/` divides as `/`, not `//`."""
        return pyexpr.python(pyexpr.substitute(expr, self.fixed), self.params, real=real,
                             used=self.functions)

    def signature(self) -> list[str]:
        """The class's constructor parameters, after self: a net's with their defaults (None
        for a derived one: `derivations` computes it)."""
        return [f"{python}=None" if name in self.derived else
                f"{python}={self.defaults[name]!r}" if name in self.defaults else python
                for name, python in self.params.items()]

    def derivations(self) -> list[str]:
        """`wide = width * 2 if wide is None else wide`: each derived parameter's default."""
        lines = []
        for name, default in self.derived.items():
            python = self.params[name]
            value = self.python(default, isinstance(self.defaults[name], float))
            lines.append(f"{python} = {value} if {python} is None else {python}")
        return lines

    # ---- values, as the emitter meets them -------------------------------------------------

    def layer(self, n: int) -> None:
        node = self.a.graph.node(n)
        rule = ops.spec(node.op).width
        if rule == "total":
            width = pyexpr.total([self.values[i] for i in node.inputs])
        elif rule == "flattened":
            width = self._flattened(node.inputs[0])
        elif rule == "divided":  # a chunk of the channels
            width = pyexpr.divided(self.values[node.inputs[0]], node.op.chunks)
        elif rule == "same":  # a sum's branches agree (checked): its first input's
            width = self.values[node.inputs[0]]
        else:  # the slot that gave it: conv's channels, fc's features
            width = self._given(n, rule, getattr(node.op, rule))
        self.values[n] = width

    def alias(self, n: int, of: int) -> None:
        self.values[n] = self.values[of]

    def use(self, output: int, use: BlockUseInfo, input: int, child_width: ast.Expr) -> str:
        """A block use's constructor arguments (input channels first), as Python; `output`
        gets the block's output width (`child_width`, in the block's names) in ours."""
        values: dict[str, ast.Expr] = {}
        if self.symbolic:  # a use inside a block: its own expressions, in our names
            child_input = {pyexpr.INPUT: self.values[input]}  # what its defaults read
            for i, param in enumerate(use.block.params):
                given = use.syntax.args[i] if i < len(use.syntax.args) else None
                values[param.name] = given or pyexpr.substitute(param.default,
                                                                {**values, **child_input})
        else:  # numbers; a real one as the source wrote it (`0.2 * 6 / 16`)
            written = dict(zip((p.name for p in use.block.params), use.syntax.args))
            values = {k: pyexpr.substitute(written[k], self.fixed)
                      if isinstance(v, float) and k in written else
                      pyexpr.number(v, use.syntax.span) for k, v in use.args
                      if not isinstance(v, ast.Window | str)}
        windows = {k for k, v in use.args if isinstance(v, ast.Window | str)}
        values = {k: v for k, v in values.items() if k not in windows}
        self.values[output] = pyexpr.substitute(
            child_width, {**values, pyexpr.INPUT: self.values[input]})
        reals = {k for k, v in use.args if isinstance(v, float)}
        return ", ".join([self.python(self.values[input])] +
                         [self.python(v, k in reals) for k, v in values.items()])

    def module_texts(self, n: int) -> dict[str, str]:
        """The constructor arguments of layer `n` that may be expressions (codegen.modules)."""
        node = self.a.graph.node(n)
        operand = node.inputs[0]
        texts = {"in": self.text(operand), "out": self.text(n),
                 "features_in": self.python(self._flattened(operand))}
        for key in ops.spec(node.op).given:  # conv's groups and stride, dropout's p
            if key != "window":
                texts[key] = self.python(self._given(n, key, getattr(node.op, key)))
        if "window" in ops.spec(node.op).given:
            texts.update(self._window(n))
        return texts

    def _window(self, n: int) -> dict[str, str]:
        """A window a block parameter sizes (`conv (k)x(k) c pad=same`), as the class's
        Python: `window` (`k`), `pad` (`k // 2`, where the statement says pad=same) and a
        window's stride (`3x3/(s)`); a padding a parameter gives (`pad=p`: `padding=p`). One
        class then serves every size it is used with."""
        node = self.a.graph.node(n)
        if not self.symbolic:
            return {}
        window, pad = dict(node.given).get("window"), dict(node.given).get("pad")
        pad = pad.value if isinstance(pad, ast.KeyArg) else None
        texts = {}
        if isinstance(window, ast.Window):
            sizes = [self.python(ast.Ref(d, window.span)) if isinstance(d, str) else str(d)
                     for d in window.dims]
            named = [isinstance(d, str) and not size.isdigit()
                     for d, size in zip(window.dims, sizes)]
            if any(named):
                texts["window"] = _pair_text(sizes)
                if isinstance(pad, ast.Ref) and pad.name == "same":
                    texts["pad"] = _pair_text([f"{size} // 2" if name else str(int(size) // 2)
                                               for size, name in zip(sizes, named)])
            if isinstance(window.stride, str):
                texts["stride"] = self.python(ast.Ref(window.stride, window.span))
        if isinstance(pad, (ast.Ref, ast.BinOp, ast.Neg, ast.Call)) and "pad" not in texts and \
                not (isinstance(pad, ast.Ref) and pad.name == "same"):
            texts["pad"] = self.python(pad)
        return texts

    # ---- helpers ---------------------------------------------------------------------------

    def _given(self, n: int, key: str, value) -> ast.Expr:
        """The expression a block's statement gives for `key`, else the value as a number."""
        node = self.a.graph.node(n)
        if self.symbolic:
            arg = dict(node.given).get(key)  # as archc.ir.build bound the statement
            arg = arg.value if isinstance(arg, ast.KeyArg) else arg
            if isinstance(arg, (ast.Num, ast.Ref, ast.BinOp, ast.Neg, ast.Call)):
                whole = isinstance(value, int) and pyexpr.real(arg, self.reals)
                return ast.Call("round", (arg,), arg.span) if whole else arg  # (f * 8)
        elif isinstance(value, float):  # a rate as the source wrote it
            arg = dict(node.given).get(key)
            arg = arg.value if isinstance(arg, ast.KeyArg) else arg
            if isinstance(arg, (ast.Num, ast.Ref, ast.BinOp, ast.Neg, ast.Call)):
                return pyexpr.substitute(arg, self.fixed)
        return pyexpr.number(value, node.span)

    def _flattened(self, n: int) -> ast.Expr:
        shape = self.a.shapes[n]
        return pyexpr.times(self.values[n], 1 if self.flat[n] else shape.h * shape.w)

    def _number(self, n: int) -> ast.Num:
        return pyexpr.number(self.a.shapes[n].c, self.a.graph.node(n).span)


def _pair_text(texts: list[str]) -> str:
    """A window's or padding's sizes as a module argument: `k`, or `(k, 1)`."""
    return texts[0] if texts[0] == texts[1] else f"({texts[0]}, {texts[1]})"


def _net_names(args: tuple[str, ...]) -> dict[str, str]:
    taken: set[str] = set()
    return {name: fresh(safe(name), taken) for name in args}


def _python_names(block: BlockUseInfo) -> dict[str, str]:
    """A block's parameters, language name -> Python name, its input channels first. A
    parameter holding a window or an activation is no constructor argument: the class is
    written for its value (a use with another gets a class of its own)."""
    taken = {pyexpr.INPUT}
    names = {pyexpr.INPUT: pyexpr.INPUT}
    windows = {k for k, v in block.args if isinstance(v, ast.Window | str)}
    for param in block.block.params:
        if param.name not in windows:
            names[param.name] = fresh(safe(param.name), taken)
    return names
