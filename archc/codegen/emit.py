"""Emit: `Analysis` -> the source of a standalone PyTorch module (archc's lowering).

Contract: `emit` writes one Python file that imports only torch (the triton backend's also
imports archc.backends.functional; a width that rounds, Python's math) and reads like a
hand-written model: one class per net, whose constructor takes the net's width parameters
(`classes`); one class per block, whose constructor takes its input channels and the block's
parameters (as torchvision's `Inception(in_channels, ch1x1, ...)` does), so its widths are
expressions in them; uses of a block whose code differs (the triton plan fused them
differently) get a class each (archc.codegen.drafts); one class per auxiliary head that is
more than one block use. Members are named by archc.codegen.members
(`inception3a.branch3x3[0]`); every layer line carries its output shape in a comment.
`archc.codegen.lower` executes this very source to build the in-memory module, so `archc
compile -o net.py` and `archc.compile()` are the same code.

One class is one walk over its scope's items (archc.codegen.scopes), in order, after the
backend's plan has been applied to them (archc.codegen.rewrite: the statement of forward()
that stands at each item, a layer's call, a GEMM with its fused epilogue, merged sibling
GEMMs, or none where another statement computes the item): a block use writes its child
class and declares it; a layer declares its module, and its statement, if any, is rendered by
the backend's table (archc.codegen.calls); the value is assigned to a variable
(archc.codegen.names) and the heads that branch from it are written. archc.codegen.headers
writes the docstring and constructor, archc.codegen.containers the members of several
layers.

The `state_dict` keys follow from the member names and are a contract: checkpoints depend on
them (tests/golden/state_dict holds GoogLeNet's and NIN's). A checkpoint keyed as an older
archc keyed it (`residual.0.weight` before role names) converts once, by structure:
`archc weights NET.arch --archc OLD.pt -o NEW.pt`.

What the emitted module does (stated in its docstring too):
- forward(x) takes N x C x H x W and returns the main output, flattened to N x classes when it
  is C x 1 x 1. In training mode, with heads, it returns (output, {head: output}); the heads'
  loss weights are the class attribute `loss_weights`. In eval mode heads do not run.
- A softmax that ends the net or a head runs in eval mode only: in training the module returns
  logits and the loss (cross-entropy) applies the softmax. `logits=True` leaves the net's
  final softmax out altogether (for export and evaluation that want logits).
- Weights are Glorot/Xavier-uniform and biases zero, in declaration order, so
  `torch.manual_seed` fixes them.

Names from the .arch file are already identifiers (the grammar admits nothing else); they are
also kept off Python keywords, builtins, nn.Module attributes and the emitter's own names, and
user text reaches comments only through `repr`, so no name can inject code.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace

from archc import ops
from archc.backends.backend import TORCH, Backend
from archc.codegen.buffers import ConcatBuffers
from archc.codegen.calls import Calls
from archc.codegen.containers import declare, sequential
from archc.codegen.drafts import Classes, Draft, Note
from archc.codegen.headers import class_header
from archc.codegen.members import Members, member_names
from archc.codegen.modules import module_source
from archc.codegen.names import LocalNames, camel, fresh, safe
from archc.codegen.preamble import CHECK_INPUT, INIT_WEIGHTS
from archc.codegen.rewrite import Rewritten, rewrite
from archc.codegen.scopes import Scope, attributes, is_module_item, items_of, roles_of
from archc.codegen.widths import Widths
from archc.lang import ast
from archc.lang.functions import FUNCTIONS
from archc.pipeline import Analysis


@dataclass(frozen=True)
class Emitted:
    source: str
    class_name: str
    layer_nodes: dict[str, int]  # qualified module name ("inception3a.branch3x3.0") -> node id


def emit(analysis: Analysis, heads: bool = True, logits: bool = False,
         backend: Backend = TORCH) -> Emitted:
    """The net's source under `backend`. Every backend declares the containers the torch
    backend declares (an nn.Sequential where the torch backend calls a chain, though a fused
    call reads its layers one by one), so `net.conv1(x)` works on each alike."""
    chains = None
    if backend is not TORCH:
        reference = _Emitter(analysis, logits, TORCH)
        reference.run(heads)
        chains = reference.chains
    return _Emitter(analysis, logits, backend, chains).run(heads)


@dataclass
class _Body:
    """One class as the emitter writes it: its items (layers and block uses) and what the
    walk over them has made so far."""

    scope: Scope
    prefix: str  # the state_dict key prefix of its members
    items: list
    members: Members
    widths: Widths
    rewritten: Rewritten  # the plan applied to its items: the statement at each
    var: LocalNames
    sources: dict[int, list]  # value -> the heads branching from it, in order
    attrs: list[tuple]  # per item: (member, attribute, state_dict key)
    roles: dict[str, list[str]]  # the members that hold their layers by role: their names
    buffers: ConcatBuffers
    init: list = field(default_factory=list)  # (member, source, note) of __init__
    forward: Draft = field(default_factory=lambda: Draft([], []))
    pending: list = field(default_factory=list)  # heads' members, declared where written


class _Emitter:
    def __init__(self, analysis: Analysis, logits: bool, backend: Backend,
                 chains: dict[str, set[str]] | None = None):
        self.a = analysis
        self.logits = logits
        self.backend = backend
        self.plan = backend.planner(analysis) if backend.planner else None
        self.graph = analysis.graph
        self.flat = analysis.flat
        self.finals = {self.graph.output} | {h.output for h in self.graph.heads}
        self.classes = Classes()
        self.layer_nodes: dict[str, int] = {}
        self.functions: set[str] = set()  # of archc.lang.functions, that widths call
        self.net_args = analysis.width_params  # the net class's constructor arguments
        self.calls = Calls(self.graph, backend, self.flat, self.finals)
        self.reference_chains = chains  # the torch backend's, by class prefix (None: this is it)
        self.chains: dict[str, set[str]] = {}  # the chains each class declares, by its prefix

    def run(self, heads: bool) -> Emitted:
        graph = self.graph
        main = [n for n in graph.main_nodes() if n != graph.input]
        net = Scope("net", (), main, graph.input, graph.syntax.body, camel(graph.name))
        class_name, _ = self._class(net, "", heads)
        header = [f"# Generated by archc from {self.a.path!r}: net {graph.name}"
                  + ("." if self.backend is TORCH else f", {self.backend.name} backend."),
                  "# Edit the .arch file and run `archc compile` again rather than editing "
                  "this file.", *self.backend.imports, *self._function_helpers("import "), "",
                  "", CHECK_INPUT, "", INIT_WEIGHTS]
        for helper in dict.fromkeys(ops.spec(graph.node(n).op).helper for n in graph.order()):
            header += ["", helper] if helper else []  # what an op's code needs, once
        for helper in self._function_helpers("def "):
            header += ["", helper]
        classes = self.classes.render()
        source = "\n".join(header) + "\n\n" + "\n\n".join(classes)
        return Emitted(source, class_name, dict(self.layer_nodes))

    def _function_helpers(self, kind: str) -> list[str]:
        """The imports ("import ") or definitions ("def ") the widths' functions need."""
        helpers = (FUNCTIONS[name].helper for name in sorted(self.functions))
        return list(dict.fromkeys(h for h in helpers if h.startswith(kind)))

    # ---- one class -------------------------------------------------------------------------

    def _class(self, scope: Scope, prefix: str, heads: bool = True) -> tuple[str, ast.Expr]:
        """Write `scope` as a class; its name, and its output width in its own parameters."""
        body = self._body(scope, prefix)
        forward = body.forward
        if scope.kind == "net" and self.backend.decorator:
            forward.add(f"    @{self.backend.decorator}")
        forward.add("    def forward(self, x):", self._note(scope.input, body.widths, scope))
        if scope.kind == "net":
            forward.add(f"        check_input(x, {tuple(self.a.shapes[scope.input])!r})")
            if self.backend.channels_last:
                forward.add("        x = x.contiguous(memory_format=torch.channels_last)")
        if body.sources:
            forward.add("        aux = {}")
        for position, item in enumerate(body.items):
            declare(body.pending, body.init,
                    before=item.nodes[0] if isinstance(item, Scope) else item)
            if isinstance(item, Scope):
                output, expression = self._block_use(body, position, item)
            else:
                output, expression = self._layer(body, position, item)
            if output is not None:
                self._assign(body, position, output, expression)
        declare(body.pending, body.init, before=len(self.graph))
        forward.add(f"        return {self._result(body)}")
        sizes = Counter(m for m, _, _ in body.init if m is not None)
        declared = self.reference_chains.get(prefix, set()) if self.reference_chains else None
        if declared is not None:  # only the torch backend's chains may be called as one
            sizes = Counter({m: n for m, n in sizes.items() if m in declared})
        chains = sequential(forward, sizes)
        chains = self.chains[prefix] = declared if declared is not None else chains
        draft = class_header(self.a, self.flat, self.logits, scope, body.widths, body.init,
                             heads, chains, body.roles)
        draft.extend(forward)
        self.functions |= body.widths.functions
        last = scope.nodes[-1]
        return self.classes.register(scope.kind, scope.name, draft), body.widths.values[last]

    def _body(self, scope: Scope, prefix: str) -> _Body:
        """One class's state, before its first line: its items, their members and variables,
        and their statements (the plan applied to them)."""
        items = items_of(self.graph, scope)
        members = member_names(scope.body, set())
        block = self.graph.block_uses[scope.use] if scope.kind == "block" else None
        widths = Widths(self.a, self.flat, scope.input, block,
                        self.net_args if scope.kind == "net" else ())
        rewritten = rewrite(self.plan, self.graph, items, scope.input)
        var = LocalNames(rewritten.reads, scope.input, self.flat)
        sources: dict[int, list] = {}  # value -> the heads branching from it, in order
        for head in self.graph.heads if scope.kind == "net" else ():
            sources.setdefault(head.source, []).append(head)
        buffers = ConcatBuffers(rewritten.writes, self.graph, members.taken,
                                self.backend.buffer)
        roles = roles_of(self.graph, items, members)
        return _Body(scope, prefix, items, members, widths, rewritten, var, sources,
                     attributes(self.graph, items, members, roles), roles, buffers)

    def _block_use(self, body: _Body, position: int, item: Scope) -> tuple[int, str]:
        """A block use: its class written, its member declared; its output and call."""
        member, attr, key = body.attrs[position]
        output = item.nodes[-1]
        child, child_width = self._class(item, f"{body.prefix}{key}.")
        args = body.widths.use(output, self.graph.block_uses[item.use], item.input, child_width)
        body.init.append((member, f"{child}({args})", self._note(output, body.widths, body.scope)))
        self.layer_nodes[body.prefix + key] = output
        # As it is: the block's own layers read a flat value as each needs it (its class
        # knows its input is flat), so expanding here too would do it twice.
        return output, f"self.{attr}({body.var.name_of(item.input)})"

    def _layer(self, body: _Body, position: int, item: int) -> tuple[int | None, str]:
        """A layer: its module declared; its output and its call, by the backend's table
        (None: a layer written by another's call, or a final softmax left out)."""
        member, attr, key = body.attrs[position]
        module = is_module_item(self.graph, item)
        widths = body.widths
        if self.logits and item == self.graph.output and not module:
            body.var.alias(item, self.graph.node(item).inputs[0])  # the final softmax, left out
            widths.alias(item, self.graph.node(item).inputs[0])
            return None, ""
        widths.layer(item)
        if module:
            source = module_source(self.graph.node(item).op, widths.module_texts(item))
            body.init.append((member, source, self._note(item, widths, body.scope)))
            self.layer_nodes[body.prefix + key] = item
        statement = body.rewritten.at(position)
        if statement is None:  # computed by another statement (a fused or merged GEMM)
            return None, ""
        if module:
            self.layer_nodes[body.prefix + key] = item
        buffers = body.buffers
        if opening := buffers.open(item):
            body.forward.add(f"        {opening}")
        if widths_line := buffers.widths_line(item, [
                widths.text(i) for i in self.graph.node(item).inputs]):
            body.init.append((None, widths_line, None))
        into = buffers.part(item) or buffers.buffer(item)
        if statement.kind == "merged":
            return item, ""  # `_assign` writes the line that assigns every sibling
        expression = self.calls.layer(statement, attr, body.var, into, body.attrs, body.items)
        for layer in statement.tail:  # the step computes its bn, sum, ReLU or second conv too
            widths.layer(layer)  # for the line's shape comment
        return statement.output, expression

    def _assign(self, body: _Body, position: int, output: int, expression: str) -> None:
        """The line that stores `output` (a merged GEMM's: all its siblings'), and the heads
        that branch from it."""
        widths, var, forward = body.widths, body.var, body.forward
        statement = body.rewritten.at(position)
        if statement.kind == "merged":
            targets = self.calls.merged(statement, body.items, body.attrs, position, var,
                                        body.members, widths, body.buffers.part(output))
            note = self._note(output, widths, body.scope)
            note = replace(note, width=", ".join(widths.text(s) for s in statement.siblings))
            forward.add(f"        {targets}", note)
            return
        member = body.attrs[position][0]
        hint = member if member in body.members.branches else None
        target = var.assign(position, output, hint)
        forward.add(f"        {target} = {expression}", self._note(output, widths, body.scope))
        for head in body.sources.get(output, ()):
            self._head(head, body.members.taken, body.prefix, target, body.pending, forward,
                       widths)

    def _result(self, body: _Body) -> str:
        """What forward() returns: the last value, flattened where the net ends C x 1 x 1,
        with the heads' outputs in training."""
        last = body.scope.nodes[-1]
        result = body.var.name_of(last)
        if body.scope.kind == "net" and self.a.shapes[last][1:] == (1, 1) and \
                not self.flat[last]:
            result = f"torch.flatten({result}, 1)"
        if body.sources:
            result = f"({result}, aux) if self.training and aux else {result}"
        return result

    def _head(self, head, taken: set[str], prefix: str, source: str, pending, forward,
              widths: Widths) -> None:
        attr = fresh(safe(head.name), taken)
        nodes = [n for n in self.graph.order() if self.graph.node(n).head == head.name]
        child = Scope("head", (("head", head.name),), nodes, head.source, head.syntax.body,
                       camel(head.name) + "Head")
        inner = items_of(self.graph, child)
        if len(inner) == 1 and isinstance(inner[0], Scope):  # a head that is one block use
            child = inner[0]
        name, width = self._class(child, f"{prefix}{attr}.")
        args = ""  # a head class is written for its one use
        if child.kind == "block":
            args = widths.use(nodes[-1], self.graph.block_uses[child.use], child.input, width)
        call = f"{name}({args}) if heads else None"
        pending.append((head.declared, (None, f"self.{attr} = {call}", None)))
        self.layer_nodes[prefix + attr] = nodes[-1]
        forward.add(f"        if self.{attr} is not None and self.training:")
        output = Note(str(self.a.shapes[nodes[-1]].c), self.a.shapes[nodes[-1]],
                       self.a.shapes[head.source], self.flat[nodes[-1]])
        forward.add(f"            aux[{head.name!r}] = self.{attr}({source})", output)

    def _note(self, n: int, widths: Widths, scope: Scope) -> Note:
        use = self.graph.block_uses[scope.use] if scope.kind == "block" else None
        params = tuple((widths.params[k], v) for k, v in (use.args if use else ())
                       if k in widths.params and type(v) is int)
        return Note(widths.text(n), self.a.shapes[n], self.a.shapes[scope.input], self.flat[n],
                    params)
