"""Build: `Program` -> `ir.Graph`. Expands blocks, repetitions, concats and heads into layers.

Contract:
- Names are lexical: a net body sees the net's parameters, a block body only its own.
- `default OP ...` applies to the rest of its body and to every block used from there (the
  net decides, say, that every conv is followed by ReLU; a block may override).
- Every top-level statement of the net (and each head) becomes one `Row`; every annotation one
  `Claim`. Labels in the net name the output of their statement, and heads branch from them;
  a label inside a block names nothing outside it (a block used twice would repeat it).
- Errors inside a block use carry a note pointing at each use on the way out.
- A statement that fails is reported and skipped, and the build goes on: one pass reports a
  mistake in every statement (each once, however often its block is used).
- Nothing here knows costs, nor shapes but one: a block whose statements read `in_channels`
  is given its input's channel count (archc.ir.shapes.shape_so_far infers the layers
  made so far). Ops check their own arguments (archc.ops).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from archc import ops
from archc.errors import ArchError, ErrorList, Note, Span, UsageError
from archc.ir.graph import MAX_LAYERS, BlockUseInfo, Claim, Graph, HeadInfo, Row
from archc.ir.shapes import SoFar, shape_so_far
from archc.lang import ast
from archc.lang.evaluate import (
    IN_CHANNELS,
    MAX_NUMBER,
    evaluate,
    evaluate_word,
    number,
    suggest,
    window,
)
from archc.lang.loader import Program
from archc.ops.args import Value


@dataclass(frozen=True)
class Scope:
    env: dict[str, int | float]
    defaults: dict[str, dict[str, Value]]  # op family -> options
    notes: tuple[Note, ...]  # block uses we are inside, innermost first
    blocks_in_use: tuple[str, ...]
    blocks: tuple[int, ...] = ()  # ids of the block uses we are inside (Graph.block_uses)
    row: int | None = None
    head: str | None = None
    depth: int = 0  # groups, branches and block uses we are inside


def build_graph(program: Program, overrides: dict[str, int | float] | None = None) -> Graph:
    try:
        return _Builder(program).build(overrides or {})
    except RecursionError:  # MAX_NESTING stops a deep program first; this, a deep stack
        raise ArchError("groups and block uses nested too deeply", program.net.span) from None


def build_partial(program: Program) -> tuple[Graph, list[ArchError]]:
    """The graph of the statements that build, and the errors of those that do not (each left
    out, as a compiler goes on past an error): what an editor shows while one line is wrong.
    Raises ArchError where nothing can be built (no input, a nesting too deep)."""
    builder = _Builder(program)
    builder.keep_going = True
    try:
        return builder.build({}), builder.errors.errors
    except RecursionError:
        raise ArchError("groups and block uses nested too deeply", program.net.span) from None


MAX_NESTING = 100  # real nets nest a few levels; Python's stack allows some 200


class _Builder:
    def __init__(self, program: Program):
        self.net = program.net
        self.blocks = program.blocks
        self.labels: dict[str, tuple[int, Span]] = {}
        self.row_counts: dict[str, int] = {}  # per title, to name unlabelled rows conv1, conv2
        self.made: dict[tuple, tuple] = {}  # see _made_op
        self.words: dict[tuple, tuple] = {}  # see _word_op
        self.errors = ErrorList()
        self.failed_labels: set[str] = set()
        self.nested_labels: dict[str, str] = {}  # label -> the statement or head it is inside
        self.shapes = SoFar()  # of the layers made so far, for `in_channels`
        self.reads_input: dict[str, bool] = {}  # block -> whether it reads `in_channels`
        self.graph = Graph(self.net, {})
        self.keep_going = False  # build_partial: the errors kept, the rest built

    # ---- the net ---------------------------------------------------------------------------

    def build(self, overrides: dict[str, int | float]) -> Graph:
        env = self._bind_net_params(overrides)
        self.graph.params = env
        scope = Scope(env, {}, (), ())
        x, heads, net_claims = None, [], []
        for stmt in self.net.body:
            core = stmt.core
            if isinstance(core, ast.Head):
                heads.append((stmt, x))  # x: the value made before it, where it is declared
            elif core is None:
                net_claims += stmt.annotations
            elif isinstance(core, ast.Op) and core.name == "input":
                x = self._input(core, x, scope)
            elif x is None:
                raise ArchError("a net starts with 'input CxHxW'", stmt.span)
            elif isinstance(core, ast.Default):
                scope = self._collecting(self._default, scope, core, scope)
            else:
                x = self._collecting(self._top, x, stmt, x, scope)
        if x is None:
            raise ArchError("the net has no 'input CxHxW' statement", self.net.span)
        if not self.keep_going:
            self.errors.raise_any()  # before judging the rows, which failed statements left out
        if not self.graph.rows:
            self.errors.raise_any()  # every statement failed: their errors, not this one's
            raise ArchError("the net has no layers after its input", self.net.span)
        self.graph.output = x
        for stmt, before in heads:
            self._collecting(self._head, None, stmt, scope, before)
        if not self.keep_going:
            self.errors.raise_any()
        main = tuple(self.graph.main_nodes())
        self.graph.claims += [Claim(a, main, x, None, ()) for a in net_claims]
        return self.graph

    def _top(self, stmt: ast.Stmt, x: int, scope: Scope) -> int:
        row = self._new_row(stmt, scope)
        first = len(self.graph)
        x = self._stmt(stmt, x, replace(scope, row=row), top=True)
        self.graph.rows[row].output = x
        if len(self.graph) == first:  # x0 (or a group of x0s): no row, its claims unjudged
            self.graph.rows.pop()
            self.graph.claims = [c for c in self.graph.claims if c.row != row]
        return x

    def _collecting(self, step, fallback, stmt, *args):
        """`step(stmt, *args)`; if it fails, the error is kept and `fallback` returned, so the
        next statement is built too: one pass reports every statement's mistake. A label of
        the failed statement is remembered, so a head from it does not fail again."""
        try:
            return step(stmt, *args)
        except ArchError as error:
            self.errors.add(error)
            if isinstance(stmt, ast.Stmt) and stmt.label:
                self.failed_labels.add(stmt.label)
            return fallback

    def _bind_net_params(self, overrides: dict[str, int | float]) -> dict[str, int | float]:
        names = [p.name for p in self.net.params]
        unknown = sorted(set(overrides) - set(names))
        if unknown:
            takes = ", ".join(names) or "no parameters"
            raise UsageError(f"net '{self.net.name}' has no parameter '{unknown[0]}' "
                             f"(it takes: {takes})")
        env: dict[str, int | float] = {}
        for param in self.net.params:
            if param.name in overrides:
                if abs(overrides[param.name]) > MAX_NUMBER:
                    raise UsageError(f"--set {param.name}: number too large (over "
                                     f"{MAX_NUMBER:.0e})")
                env[param.name] = overrides[param.name]
            elif param.default is None:
                raise ArchError(f"net parameter '{param.name}' has no default; give it with "
                                f"--set {param.name}=VALUE", param.span)
            else:
                env[param.name] = evaluate(param.default, env, ())
        return env

    def _input(self, op: ast.Op, x: int | None, scope: Scope) -> int:
        if x is not None:
            raise ArchError("a net has one 'input', before its first layer", op.span)
        bound = self._bound(op, ops.SIGNATURES["input"], scope)
        node = ops.STATEMENTS["input"].make(self._op_args(bound, scope), op.span)
        self.graph.input = self.graph.add(node, (), op, (), None, None)
        return self.graph.input

    def _new_row(self, stmt: ast.Stmt, scope: Scope, head: str | None = None) -> int:
        core = stmt.core
        title = ast.title(core)
        args = ()
        if isinstance(core, ast.BlockUse) and core.name in self.blocks:
            names = [p.name for p in self.blocks[core.name].params]
            index = stmt.index.name if stmt.index else None  # what differs per pass: as written
            args = tuple(zip(names, (ast.text(a.span) if index and ast.reads(a, index) else
                                     _shown(_argument(a, scope.env, scope.notes))
                                     for a in core.args)))
        self.row_counts[title] = self.row_counts.get(title, 0) + 1
        number = f"_{self.row_counts[title]}" if title[-1].isdigit() else \
            str(self.row_counts[title])  # relu6_1, not relu61
        name = stmt.label or (core.name if head else f"{title}{number}")
        self.graph.rows.append(Row(len(self.graph.rows), name, title, stmt.span, args,
                                   repeat_count(stmt, scope), head, stmt.label is not None))
        return len(self.graph.rows) - 1

    def _head(self, stmt: ast.Stmt, scope: Scope, before: int | None) -> None:
        head: ast.Head = stmt.core
        if head.source_label in self.failed_labels:
            return  # its source failed, and said so
        if any(h.name == head.name for h in self.graph.heads):
            raise ArchError(f"head '{head.name}' is defined twice", head.span)
        if head.source_label not in self.labels:
            raise ArchError(f"head '{head.name}' branches from unknown statement "
                            f"'{head.source_label}'{suggest(head.source_label, self.labels)}",
                            head.source_span)
        if head.source_label in self.nested_labels:
            where = self.nested_labels[head.source_label]
            raise ArchError(f"head '{head.name}' branches from '{head.source_label}', which is "
                            f"inside {where}: a head branches from a statement of the net "
                            "itself (label that statement)", head.source_span,
                            (Note(self.labels[head.source_label][1], "labelled here"),))
        source = self.labels[head.source_label][0]
        weight = number(head.weight, scope.env, scope.notes)
        if weight < 0:
            raise ArchError(f"a head's loss weight must be at least 0, got {weight}",
                            head.weight.span)
        row = self._new_row(stmt, scope, head=head.name)
        inner = replace(scope, row=row, head=head.name)
        output = self._body(head.body, source, inner, head.span)
        self.graph.rows[row].output = output
        declared = max(source, before if before is not None else source)
        self.graph.heads.append(HeadInfo(head.name, float(weight), source, output, head,
                                         declared))
        nodes = tuple(self.graph.rows[row].nodes)
        self.graph.claims += [Claim(a, nodes, output, row, ()) for a in stmt.annotations]

    # ---- statements ------------------------------------------------------------------------

    def _body(self, body: tuple[ast.Stmt, ...], x: int, scope: Scope, span: Span) -> int:
        if scope.depth >= MAX_NESTING:
            raise ArchError(f"groups and block uses nested more than {MAX_NESTING} deep", span,
                            scope.notes[:3])  # the innermost uses: the rest repeat them
        scope = replace(scope, depth=scope.depth + 1)
        if not any(s.core is not None and not isinstance(s.core, ast.Default) for s in body):
            raise ArchError("empty body: a group or block needs at least one layer", span,
                            scope.notes)
        for stmt in body:
            if isinstance(stmt.core, ast.Default):
                scope = self._collecting(self._default, scope, stmt.core, scope)
            elif stmt.core is None:
                self.errors.add(ArchError("an annotation on its own line belongs at the top "
                                          "of a net", stmt.span, scope.notes))
            else:
                x = self._collecting(self._stmt, x, stmt, x, scope)
        return x

    def _stmt(self, stmt: ast.Stmt, x: int, scope: Scope, top: bool = False) -> int:
        first = len(self.graph)
        for index in range(repeat_count(stmt, scope)):
            core = _pass(stmt, index, scope)
            if core is not stmt.core:
                self.graph.copied(core, stmt.core)
            x = self._core(core, x, scope)
        if stmt.label is not None and not scope.blocks:  # labels in blocks are local notes
            self._label(stmt, x, scope, top)
        nodes = tuple(range(first, len(self.graph)))
        row = scope.row if top else None
        self.graph.claims += [Claim(a, nodes, x, row, scope.notes) for a in stmt.annotations]
        return x

    def _core(self, core: ast.Core, x: int, scope: Scope) -> int:
        if isinstance(core, ast.Op) and core.name in self.blocks and \
                core.name not in ops.SIGNATURES:  # the loader made a bare name a use
            raise ArchError(f"block '{core.name}' takes its arguments in parentheses: "
                            f"{core.name}(...)", core.span, scope.notes)
        if isinstance(core, ast.Op):
            return self._op(core, x, scope)
        if isinstance(core, ast.BlockUse):
            return self._block_use(core, x, scope)
        if isinstance(core, ast.Group):
            return self._body(core.body, x, scope, core.span)
        if isinstance(core, ast.Concat):
            return self._concat(core, x, scope)
        what = "a head" if isinstance(core, ast.Head) else "'default'"
        raise ArchError(f"{what} cannot stand here", core.span, scope.notes)

    def _label(self, stmt: ast.Stmt, x: int, scope: Scope, top: bool) -> None:
        if stmt.label in self.labels:
            first = Note(self.labels[stmt.label][1], "first named here")
            raise ArchError(f"duplicate statement name '{stmt.label}'", stmt.span,
                            (first,) + scope.notes)
        self.labels[stmt.label] = (x, stmt.span)
        if not top:  # a head's source must be a value the net's own class computes
            row = self.graph.rows[scope.row]
            self.nested_labels[stmt.label] = f"head '{row.head}'" if row.head else \
                f"statement '{row.name}'"

    def _concat(self, concat: ast.Concat, x: int, scope: Scope) -> int:
        """A join's branches (concat, sum, mul), each from `x`; an `id` branch is `x` itself."""
        outputs = []
        for branch in concat.branches:
            if branch.core is None or isinstance(branch.core, ast.Default):
                raise ArchError(f"each line of a {concat.kind} is a branch of layers",
                                branch.span, scope.notes)
            if _is_identity(branch) and not branch.core.args and branch.repeat == 1:
                outputs.append(x)  # no layer: the shortcut is the input itself
                continue
            outputs.append(self._stmt(branch, x, scope))
        group = ops.GROUPS[concat.kind]
        if len(outputs) < group.minimum:
            needs = "at least two branches" if group.minimum == 2 else "at least one branch"
            raise ArchError(f"{concat.kind} needs {needs}", concat.span, scope.notes)
        op = group.make(tuple(_is_identity(b) for b in concat.branches))
        return self.graph.add(op, tuple(outputs), concat, scope.notes, scope.row, scope.head,
                              scope.blocks)

    def _block_use(self, use: ast.BlockUse, x: int, scope: Scope) -> int:
        block = self.blocks.get(use.name)
        if block is None and use.name in ops.SIGNATURES:
            raise ArchError(f"'{use.name}' is an op, not a block: its first argument cannot "
                            f"be in parentheses (write `{use.name} 10`, not `{use.name}(10)`)",
                            use.span, scope.notes)
        if block is None:
            hint = suggest(use.name, [*self.blocks, *ops.SIGNATURES])
            raise ArchError(f"unknown block '{use.name}'{hint}", use.span, scope.notes)
        if use.name in scope.blocks_in_use:
            raise ArchError(f"block '{use.name}' uses itself", use.span, scope.notes)
        env = self._bind_block_args(block, use, scope, x)
        note = Note(use.span, f"in block '{use.name}' used here")
        args = tuple((k, v) for k, v in env.items() if k != IN_CHANNELS)  # its parameters
        info = BlockUseInfo(use.name, args, block, use)
        instance = self.graph.add_block_use(info)
        inner = replace(scope, env=env, notes=(note,) + scope.notes,
                        blocks_in_use=scope.blocks_in_use + (use.name,),
                        blocks=scope.blocks + (instance,))
        return self._body(block.body, x, inner, use.span)

    def _bind_block_args(self, block: ast.BlockDef, use: ast.BlockUse, scope: Scope,
                         x: int) -> dict:
        required = sum(p.default is None for p in block.params)
        if not required <= len(use.args) <= len(block.params):
            wanted = (str(required) if required == len(block.params)
                      else f"{required} to {len(block.params)}")
            raise ArchError(f"block '{block.name}' takes {wanted} argument"
                            f"{'' if wanted == '1' else 's'}, got {len(use.args)}", use.span,
                            scope.notes)
        env = {p.name: _argument(a, scope.env, scope.notes)
               for p, a in zip(block.params, use.args)}
        if self._reads_input(block):
            env[IN_CHANNELS] = shape_so_far(self.graph, x, self.shapes).c
        for param in block.params[len(use.args):]:
            env[param.name] = _argument(param.default, env, scope.notes)
        return env

    def _reads_input(self, block: ast.BlockDef) -> bool:
        if block.name not in self.reads_input:
            self.reads_input[block.name] = ast.reads(block, IN_CHANNELS)
        return self.reads_input[block.name]

    # ---- ops and their arguments -----------------------------------------------------------

    def _op(self, op: ast.Op, x: int, scope: Scope) -> int:
        word = scope.env.get(op.name)
        if isinstance(word, str):  # a parameter holding an activation, used as a layer
            if op.args:
                raise ArchError(f"'{op.name}' is the activation '{word}': it takes no "
                                "arguments", op.args[0].span, scope.notes)
            if word == "linear":
                return x  # no activation: no layer
            op = self._word_op(op, word)
        if op.name == ops.IDENTITY:
            if op.args:
                raise ArchError("'id' takes no arguments", op.args[0].span, scope.notes)
            raise ArchError("'id' stands alone as a branch of a sum or concat (a shortcut)",
                            op.span, scope.notes)
        node, given = self._made_op(op, scope)
        if isinstance(node, ops.Act):
            self._refuse_second_activation(node, x, op, scope)
        return self.graph.add(node, (x,), op, scope.notes, scope.row, scope.head,
                              scope.blocks, given)

    def _word_op(self, op: ast.Op, word: str) -> ast.Op:
        """The statement `act` as `relu`: one syntax node per word, so the layers it makes
        share their statement as other layers do (members, `_made_op`'s cache)."""
        key = (id(op), word)
        if key not in self.words:
            self.words[key] = (replace(op, name=word), op)  # op kept: its id stays taken
        return self.words[key][0]

    def _refuse_second_activation(self, act: ops.Act, x: int, op: ast.Op, scope: Scope):
        """`conv 3x3 64 relu` then `relu`: the second does nothing, and is likely a slip."""
        before = self.graph.node(x).op if 0 <= x < len(self.graph) else None
        earlier = before.kind if isinstance(before, ops.Act) else getattr(before, "act", None)
        if earlier not in (None, "linear"):
            raise ArchError(f"'{act.kind}' after a layer that already applies '{earlier}' "
                            f"({ops.describe(before)})", op.span, scope.notes)

    def _made_op(self, op: ast.Op, scope: Scope) -> tuple[ops.OpT, tuple]:
        """The op a statement makes and its arguments by slot, made once per statement,
        bindings and defaults: nets repeat the same layer many times (VGG's conv3-512, a
        block used nine times)."""
        key = (id(op), id(scope.defaults), tuple(scope.env.items()))
        made = self.made.get(key)
        if made is None:
            # The entry holds the statement and the defaults, so their ids are not reused.
            made = self.made[key] = (*self._make_op(op, scope), op, scope.defaults)
        return made[0], made[1]

    def _make_op(self, op: ast.Op, scope: Scope) -> tuple[ops.OpT, tuple]:
        signature = ops.SIGNATURES.get(op.name)
        if signature is None or op.name == "input":
            if op.name == "input":
                raise ArchError("'input' belongs at the top of a net", op.span, scope.notes)
            hint = suggest(op.name, [*ops.SIGNATURES, *self.blocks])
            raise ArchError(f"unknown op '{op.name}'{hint}", op.span, scope.notes)
        args = dict(scope.defaults.get(ops.family(op.name), {}))
        bound = self._bound(op, signature, scope)
        args.update(self._op_args(bound, scope))
        try:
            return ops.STATEMENTS[op.name].make(args, op.span), tuple(bound.items())
        except ArchError as error:
            raise ArchError(error.message, error.span, scope.notes) from None

    def _bound(self, op: ast.Op | ast.Default, signature: ops.Signature, scope: Scope) -> dict:
        """The statement's arguments by slot, a window parameter written as its window."""
        try:
            given = ops.windows_given(_name(op), op.args, signature, scope.env)
            return ops.bind(_name(op), given, signature)
        except ArchError as error:
            raise ArchError(error.message, error.span, scope.notes) from None

    def _op_args(self, bound: dict, scope: Scope) -> dict:
        args: dict[str, Value] = {}
        for key, arg in bound.items():
            if isinstance(arg, ast.Window):
                args[key] = Value(window(arg, scope.env, scope.notes), arg.span)
            elif isinstance(arg, ast.KeyArg):
                args[key] = Value(evaluate_word(arg.value, scope.env, scope.notes), arg.span)
            elif key == "act":
                args[key] = Value(arg.name, arg.span)
            else:
                args[key] = Value(evaluate_word(arg, scope.env, scope.notes), arg.span)
        return args

    def _default(self, default: ast.Default, scope: Scope) -> Scope:
        families = {ops.family(name): name for name in ops.SIGNATURES if name != "input"}
        if default.op not in families:
            hint = suggest(default.op, families)
            raise ArchError(f"unknown op '{default.op}' in default{hint}", default.span,
                            scope.notes)
        signature = ops.SIGNATURES[families[default.op]]
        if any(isinstance(a, (ast.Window, ast.Num, ast.Neg)) or
               (isinstance(a, ast.Ref) and a.name not in signature.flags) for a in default.args):
            raise ArchError("'default' sets options (pad=same) and flags (relu) only",
                            default.span, scope.notes)
        merged = dict(scope.defaults.get(default.op, {}))
        merged.update(self._op_args(self._bound(default, signature, scope), scope))
        return replace(scope, defaults={**scope.defaults, default.op: merged})


def repeat_count(stmt: ast.Stmt, scope: Scope) -> int:
    """How many times a statement repeats: `x4`, or `x(blocks)`, `x(ceil(3 * depth))` with
    their names bound here. `x0` is allowed: the statement makes nothing and passes its input
    on (a depth multiplier's stage of one block: `x(ceil(depth) - 1)`)."""
    count, span = stmt.repeat, stmt.span
    if not isinstance(count, int):
        span = count.span
        count = number(count, scope.env, scope.notes)
        if not isinstance(count, int):
            raise ArchError(f"a repetition is a whole number of times; '{ast.text(span)}' is "
                            f"{count}", span, scope.notes)
    if count < 0 or count > MAX_LAYERS:
        raise ArchError(f"repetition must be between x0 and x{MAX_LAYERS}, got x{count}", span,
                        scope.notes)
    return count


def _pass(stmt: ast.Stmt, index: int, scope: Scope) -> ast.Core:
    """The statement's core for its pass `index`: with its index's name (`x3 as i`) read as
    that number, so the graph and the emitted code see numbers."""
    if stmt.index is None:
        return stmt.core
    name = stmt.index.name
    if name in scope.env:
        raise ArchError(f"the repetition's index '{name}' would hide the parameter '{name}'",
                        stmt.index.span, scope.notes)
    return ast.bind(stmt.core, name, index)


def _argument(expr: ast.Expr, env: dict, notes: tuple) -> int | float | ast.Window | str:
    """A block argument's value: a number, a window, or an activation's name (`relu`,
    `linear`), which the block's statements then use as a flag or as a layer."""
    if isinstance(expr, ast.Ref) and expr.name not in env and expr.name in ops.ACTIVATIONS:
        return expr.name
    return evaluate(expr, env, notes)


def _name(op: ast.Op | ast.Default) -> str:
    return op.op if isinstance(op, ast.Default) else op.name


def _is_identity(branch: ast.Stmt) -> bool:
    return isinstance(branch.core, ast.Op) and branch.core.name == ops.IDENTITY


def _shown(value):
    """A block argument as the stats table shows it: a number, or a window's text."""
    if isinstance(value, ast.Window):
        stride = "" if value.stride is None else f"/{value.stride}"
        return "x".join(map(str, value.dims)) + stride
    return value
