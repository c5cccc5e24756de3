"""The per-file step: one module's source -> the uses of table APIs it holds.

:func:`analyse_source` parses the source (it never runs it) and resolves names
the way Python does inside a module: imports and their aliases, attribute
chains, ``getattr(os, "system")``, ``__import__("os")``, module-level aliases,
function, class and comprehension scopes, ``global``/``nonlocal``, star
imports. Arguments are folded to literal values where they can be
(:func:`_fold`), including paths known to be inside the distribution
(``OWN``). The result, a :class:`~capimport.scan.model.FileSummary`, is
plain data so that the step can run in a worker process.
"""

from __future__ import annotations

import ast
import builtins
import os
from typing import Iterable, Optional

from ..table import apis as table
from .contexts import (_FLIPPED, _ORDER_OPS, _and, _import_platform, _is_main_guard, _is_type_checking, _leaves, _marks,
                       _mentions_version, _negate, _platform_term, _version_term)
from .model import MISSING, OWN, STAR, UNKNOWN, FileSummary, Flags, Ref, _names_self, _plain_str

_BUILTINS = frozenset(dir(builtins))
_DYNAMIC_CODE = frozenset({"builtins.exec", "builtins.eval", "builtins.compile"})
_DYNAMIC_IMPORT = {
    "builtins.__import__": 0, "importlib.__import__": 0, "importlib.import_module": 0,
    "importlib.util.spec_from_file_location": 1, "importlib.machinery.SourceFileLoader": 1,
    "importlib.machinery.SourcelessFileLoader": 1, "imp.load_source": 1, "imp.load_module": 0,
    "imp.load_dynamic": 1, "runpy.run_module": 0, "runpy.run_path": 0, "pkgutil.iter_modules": None,
    "zipimport.zipimporter": 0,
}
_DYNAMIC_IMPORT.pop("pkgutil.iter_modules")
#: Qualified names that are modules with table entries below them (``os``, ``os.path``...).
_CAPABILITY_MODULES = frozenset(
    prefix for key in table.APIS for prefix in
    (".".join(key.split(".")[:i]) for i in range(1, key.count(".") + 1))) | frozenset(table.MODULE_USES)
_MAX_VALUES = 16


class _Scope:
    __slots__ = ("kind", "parent", "bindings", "globals", "nonlocals", "qualname", "stars", "memo")

    def __init__(self, kind: str, parent: Optional["_Scope"], qualname: str):
        self.kind = kind
        self.parent = parent
        self.bindings: dict[str, list] = {}
        self.globals: set = set()
        self.nonlocals: set = set()
        self.qualname = qualname
        self.stars: list = []
        self.memo: dict = {}

    def bind(self, name: str, item: tuple) -> None:
        target = self
        if name in self.globals:
            while target.parent is not None:
                target = target.parent
        elif name in self.nonlocals:
            target = self.parent  # type: ignore[assignment]
            while target is not None and (target.kind == "class" or (
                    name not in target.bindings and target.parent is not None and target.parent.kind != "module")):
                target = target.parent  # type: ignore[assignment]
            target = target or self
        target.bindings.setdefault(name, []).append(item)


_OPAQUE = ("opaque",)


def _is_chain(node: ast.AST) -> bool:
    while isinstance(node, ast.Attribute):
        node = node.value
    return isinstance(node, ast.Name)


class _Analyser:
    """One module: collect scopes, bindings and candidate uses in one pass, then resolve."""

    def __init__(self, module: str, is_package: bool, internal: frozenset):
        self.module = module
        self.package = module if is_package else module.rpartition(".")[0]
        self.internal = internal
        self.root = _Scope("module", None, "<module>")
        self.candidates: list = []
        self.findings: list = []
        self.imports: set = set()
        self.typing_only = False           # inside ``if TYPE_CHECKING:``: imports there never run
        self.callees: set = set()
        # id of a string literal given as a call's argument -> that call (see _environ_literal)
        self.literal_args: dict = {}
        # The context of the code being visited: None, or (platform conditions, entry), where
        # the conditions are a tuple of terms that all hold ("win32", "!win32", "?pkg.compat.WIN"
        # for a name another module defines) and entry is "__main__" or "".
        last = module.rpartition(".")[2]
        self.ctx: Optional[tuple] = ((), "__main__") if last == "__main__" else None

    # ---------------------------------------------------------------- pass 1: bind and collect

    def run(self, tree: ast.Module) -> None:
        self._block(tree.body, self.root)

    def _block(self, stmts: list, scope: _Scope) -> Optional[tuple]:
        """Visit a statement list; what follows ``assert P`` or an ``if`` whose one branch always
        leaves the block (``raise``, ``return``...) runs under that platform condition.
        Returns the context at the end of the block (for a ``try``'s ``else``)."""
        saved = self.ctx
        for stmt in stmts:
            self.visit(stmt, scope)
            kind = type(stmt)
            if kind is ast.If:
                leaves_body, leaves_else = _leaves(stmt.body), _leaves(stmt.orelse)
                if leaves_body != leaves_else:
                    condition = self._platform_test(stmt.test, scope)
                    if condition is not None:
                        self.ctx = _and(self.ctx, condition[1] if leaves_body else condition[0])
            elif kind is ast.Assert:
                condition = self._platform_test(stmt.test, scope)
                if condition is not None:
                    self.ctx = _and(self.ctx, condition[0])
            elif kind is ast.Import or kind is ast.ImportFrom:
                # the rest of the block runs only where a platform-only module imports
                term = _import_platform(stmt)
                if term is not None:
                    self.ctx = _and(self.ctx, (term,))
        end = self.ctx
        self.ctx = saved
        return end

    def _if(self, node: ast.If, scope: _Scope) -> None:
        self.visit(node.test, scope)
        outer = self.ctx
        if _is_type_checking(node.test):
            saved, self.typing_only = self.typing_only, True
            self._block(node.body, scope)
            self.typing_only = saved
            self._block(node.orelse, scope)
            return
        if _is_main_guard(node.test):
            self.ctx = ((outer or ((), ""))[0], "__main__")
            self._block(node.body, scope)
            self.ctx = outer
            self._block(node.orelse, scope)
            return
        condition = self._platform_test(node.test, scope)
        if condition is None:
            self._block(node.body, scope)
            self._block(node.orelse, scope)
            return
        self.ctx = _and(outer, condition[0])
        self._block(node.body, scope)
        self.ctx = _and(outer, condition[1])
        self._block(node.orelse, scope)
        self.ctx = outer

    def _if_exp(self, node: ast.IfExp, scope: _Scope) -> None:
        self.visit(node.test, scope)
        condition = self._platform_test(node.test, scope)
        outer = self.ctx
        if condition is not None:
            self.ctx = _and(outer, condition[0])
        self.visit(node.body, scope)
        if condition is not None:
            self.ctx = _and(outer, condition[1])
        self.visit(node.orelse, scope)
        self.ctx = outer

    def _while(self, node: ast.While, scope: _Scope) -> None:
        self.visit(node.test, scope)
        self._block(node.body, scope)
        self._block(node.orelse, scope)

    def _try(self, node, scope: _Scope) -> None:
        end = self._block(node.body, scope)
        for handler in node.handlers:
            self.visit(handler, scope)
        outer = self.ctx
        self.ctx = end
        self._block(node.orelse, scope)
        self.ctx = outer
        self._block(node.finalbody, scope)

    # ------------------------------------------------ platform conditions

    def _platform_test(self, node: ast.AST, scope: _Scope, depth: int = 0) -> Optional[tuple]:
        """(terms when *node* is true, terms when it is false) for a test of the platform
        (``sys.platform == "win32"``, ``os.name != "nt"``, ``sys.platform.startswith(("linux",
        "darwin"))``, ``platform.system() == "Windows"``, a name bound to one, ``not``, ``and``,
        ``or``); None for any other test. A side may be ``()``: nothing is known there."""
        kind = type(node)
        if kind is ast.Compare:
            if len(node.ops) != 1:
                return None
            left, op, right = node.left, node.ops[0], node.comparators[0]
            if type(op) in _ORDER_OPS or _mentions_version(left) or _mentions_version(right):
                return self._version_test(left, op, right, scope)
            subject = self._platform_subject(left, scope)
            if subject is None:
                subject, right = self._platform_subject(right, scope), left
                if subject is None or type(op) not in (ast.Eq, ast.NotEq):
                    return None
            op_kind = type(op)
            if op_kind in (ast.Eq, ast.NotEq, ast.Is, ast.IsNot):
                values = (right.value,) if _literal_str(right) else None
            elif op_kind in (ast.In, ast.NotIn) and isinstance(right, (ast.Tuple, ast.List, ast.Set)) \
                    and right.elts and all(_literal_str(e) for e in right.elts):
                values = tuple(e.value for e in right.elts)
            else:
                return None
            if values is None:
                return None
            term = _platform_term(subject, values, False)
            if term is None:
                return None
            negated = op_kind in (ast.NotEq, ast.IsNot, ast.NotIn)
            return ((_negate(term),), (term,)) if negated else ((term,), (_negate(term),))
        if kind is ast.Call:
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr == "startswith" and len(node.args) == 1 \
                    and not node.keywords:
                subject = self._platform_subject(func.value, scope)
                arg = node.args[0]
                if subject is None:
                    return None
                if _literal_str(arg):
                    values = (arg.value,)
                elif isinstance(arg, ast.Tuple) and arg.elts and all(_literal_str(e) for e in arg.elts):
                    values = tuple(e.value for e in arg.elts)
                else:
                    return None
                term = _platform_term(subject, values, True)
                return None if term is None else ((term,), (_negate(term),))
            return None
        if depth > 3:
            return None
        if kind is ast.UnaryOp and isinstance(node.op, ast.Not):
            inner = self._platform_test(node.operand, scope, depth + 1)
            return None if inner is None else (inner[1], inner[0])
        if kind is ast.BoolOp:
            parts = [self._platform_test(value, scope, depth + 1) for value in node.values]
            known = [p for p in parts if p is not None]
            if not known:
                return None
            complete = len(known) == len(parts)
            if isinstance(node.op, ast.And):
                # true: every part holds; false: only a single-term "or" of negations, not kept
                return (tuple(t for p in known for t in p[0]), ())
            # "or": true only when every part is a single known positive term; false: all negations
            true: tuple = ()
            if complete and all(len(p[0]) == 1 and not p[0][0].startswith(("!", "?", "py:")) for p in known):
                names = sorted({n for p in known for n in p[0][0].split("|")})
                true = ("|".join(names),)
            false = tuple(t for p in known for t in p[1]) if complete else ()
            return (true, false) if (true or false) else None
        if kind is ast.Name or kind is ast.Attribute:
            if kind is ast.Name:
                bindings = self.bindings_of(node.id, scope)
                if bindings is not None and len(bindings) == 1 and bindings[0][0] == "expr" \
                        and bindings[0][1] is not None:
                    return self._platform_test(bindings[0][1], bindings[0][2], depth + 1)
            values = self.resolve(node, scope)
            if len(values) == 1:
                value = next(iter(values))
                if value.split(".", 1)[0] in self.internal and "." in value and not value.endswith("()"):
                    return ((f"?{value}",), (f"!?{value}",))
        return None

    def _version_test(self, left: ast.AST, op: ast.cmpop, right: ast.AST, scope: _Scope) -> Optional[tuple]:
        """``sys.version_info >= (3, 8)``, ``sys.version_info[:2] == (3, 7)``, ``sys.version_info[0] == 2``,
        ``sys.version_info.major < 3`` (either way round) as Python-version terms (``py>=3.8``)."""
        op_kind = type(op)
        truncated = self._version_subject(left, scope)
        other = right
        if truncated is False:
            truncated, other = self._version_subject(right, scope), left
            op_kind = _FLIPPED.get(op_kind, op_kind)
            if truncated is False:
                return None
        if isinstance(other, ast.Tuple) and other.elts and all(
                isinstance(e, ast.Constant) and type(e.value) is int for e in other.elts):
            version = tuple(e.value for e in other.elts)
        elif isinstance(other, ast.Constant) and type(other.value) is int and truncated == 1:
            version = (other.value,)
        else:
            return None
        if truncated is not None:
            if truncated != len(version):
                return None
            # version[:n] compared with an n-tuple: the same as the full comparison for < and >=;
            # <=, > and == move to the next release of the last component.
            bumped = version[:-1] + (version[-1] + 1,)
            if op_kind is ast.LtE:
                op_kind, version = ast.Lt, bumped
            elif op_kind is ast.Gt:
                op_kind, version = ast.GtE, bumped
            elif op_kind is ast.Eq:
                return ((_version_term(ast.GtE, version), _version_term(ast.Lt, bumped)), ())
            elif op_kind is ast.NotEq:
                return ((), (_version_term(ast.GtE, version), _version_term(ast.Lt, bumped)))
        if op_kind not in _ORDER_OPS:
            return None
        term = _version_term(op_kind, version)
        return ((term,), (_negate(term),))

    def _version_subject(self, node: ast.AST, scope: _Scope):
        """None: ``sys.version_info`` itself; n: its first n items; False: not it."""
        if isinstance(node, ast.Subscript):
            key = node.slice
            if not self._is_version_info(node.value, scope):
                return False
            if isinstance(key, ast.Slice) and key.lower is None and key.step is None \
                    and isinstance(key.upper, ast.Constant) and type(key.upper.value) is int and key.upper.value > 0:
                return key.upper.value
            if isinstance(key, ast.Constant) and key.value == 0:
                return 1
            return False
        if isinstance(node, ast.Attribute) and node.attr == "major" and self._is_version_info(node.value, scope):
            return 1
        return None if self._is_version_info(node, scope) else False

    def _is_version_info(self, node: ast.AST, scope: _Scope) -> bool:
        return _is_chain(node) and "sys.version_info" in self.resolve(node, scope)

    def _platform_subject(self, node: ast.AST, scope: _Scope) -> Optional[str]:
        """``sys.platform``, ``os.name`` or ``platform.system()`` when *node* is one of them."""
        kind = type(node)
        if kind is ast.Call:
            if node.args or node.keywords or not _is_chain(node.func):
                return None
            return "platform.system()" if "platform.system" in self.resolve(node.func, scope) else None
        if kind is not ast.Attribute and kind is not ast.Name:
            return None
        if kind is ast.Attribute and node.attr not in ("platform", "name"):
            return None
        if kind is ast.Name and node.id not in ("platform", "name"):
            # a module-level alias such as ``PLATFORM = sys.platform``
            bindings = self.bindings_of(node.id, scope)
            if not (bindings and len(bindings) == 1 and bindings[0][0] == "expr" and bindings[0][1] is not None
                    and isinstance(bindings[0][1], ast.Attribute)):
                return None
        for value in self.resolve(node, scope):
            if value in ("sys.platform", "os.name"):
                return value
        return None

    def visit(self, node: ast.AST, scope: _Scope) -> None:
        method = _DISPATCH.get(type(node))
        if method is not None:
            method(self, node, scope)
            return
        for name in node._fields:
            value = getattr(node, name, None)
            if isinstance(value, list):
                for item in value:
                    if isinstance(item, ast.AST):
                        self.visit(item, scope)
            elif isinstance(value, ast.AST):
                self.visit(value, scope)

    def visit_all(self, nodes: Iterable, scope: _Scope) -> None:
        for node in nodes:
            if node is not None:
                self.visit(node, scope)

    def _function(self, node, scope: _Scope) -> None:
        self.visit_all(getattr(node, "decorator_list", ()), scope)
        args = node.args
        self._defaults(args, scope)
        if not isinstance(node, ast.Lambda):
            scope.bind(node.name, _OPAQUE)
        name = node.name if not isinstance(node, ast.Lambda) else "<lambda>"
        qual = name if scope.kind == "module" else (
            f"{scope.qualname}.{name}" if scope.kind == "class" else f"{scope.qualname}.<locals>.{name}")
        inner = _Scope("function", scope, qual)
        self._bind_params(args, inner, scope)
        if isinstance(node, ast.Lambda):
            self.visit(node.body, inner)
        else:
            self._block(node.body, inner)

    def _defaults(self, args: ast.arguments, scope: _Scope) -> None:
        for default in list(args.defaults) + [d for d in args.kw_defaults if d is not None]:
            if not _is_chain(default):
                self.visit(default, scope)

    def _bind_params(self, args: ast.arguments, inner: _Scope, outer: _Scope) -> None:
        positional = list(args.posonlyargs) + list(args.args)
        defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
        pairs = list(zip(positional, defaults)) + list(zip(args.kwonlyargs, args.kw_defaults))
        for arg, default in pairs:
            if default is not None and _is_chain(default):
                inner.bind(arg.arg, ("expr", default, outer))
            inner.bind(arg.arg, _OPAQUE)
        for arg in (args.vararg, args.kwarg):
            if arg is not None:
                inner.bind(arg.arg, _OPAQUE)

    def _class(self, node: ast.ClassDef, scope: _Scope) -> None:
        self.visit_all(node.decorator_list, scope)
        self.visit_all(node.bases, scope)
        self.visit_all([k.value for k in node.keywords], scope)
        scope.bind(node.name, _OPAQUE)
        qual = node.name if scope.kind == "module" else (
            f"{scope.qualname}.{node.name}" if scope.kind == "class" else f"{scope.qualname}.<locals>.{node.name}")
        inner = _Scope("class", scope, qual)
        self._block(node.body, inner)

    def _import(self, node: ast.Import, scope: _Scope) -> None:
        for alias in node.names:
            if not self.typing_only:
                self.imports.add(alias.name.split(".", 1)[0])
            if alias.asname:
                scope.bind(alias.asname, ("mod", alias.name))
            else:
                top = alias.name.split(".", 1)[0]
                scope.bind(top, ("mod", top))

    def _import_from(self, node: ast.ImportFrom, scope: _Scope) -> None:
        module = self._absolute(node.module or "", node.level)
        if module is None:
            for alias in node.names:
                scope.bind(alias.asname or alias.name, _OPAQUE)
            return
        if not self.typing_only:
            self.imports.add(module.split(".", 1)[0])
        for alias in node.names:
            if alias.name == "*":
                scope.stars.append(module)
            else:
                scope.bind(alias.asname or alias.name, ("mod", f"{module}.{alias.name}" if module else alias.name))

    def _absolute(self, module: str, level: int) -> Optional[str]:
        if not level:
            return module
        base = self.package.split(".") if self.package else []
        if level - 1 > len(base):
            return None
        base = base[: len(base) - (level - 1)]
        parts = base + ([module] if module else [])
        return ".".join(parts) if parts else None

    def _assign(self, node, scope: _Scope) -> None:
        value = node.value
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        if value is not None:
            alias = (_is_chain(value) and scope.kind != "class"
                     and all(isinstance(t, ast.Name) for t in targets))
            if not alias:
                self.visit(value, scope)
        for target in targets:
            self._bind_target(target, value, scope)

    def _bind_target(self, target: ast.AST, value: Optional[ast.AST], scope: _Scope) -> None:
        if isinstance(target, ast.Name):
            scope.bind(target.id, ("expr", value, scope) if value is not None else _OPAQUE)
        elif isinstance(target, (ast.Tuple, ast.List)):
            values = value.elts if isinstance(value, (ast.Tuple, ast.List)) and len(value.elts) == len(target.elts) else None
            for i, element in enumerate(target.elts):
                self._bind_target(element, values[i] if values else None, scope)
        elif isinstance(target, ast.Starred):
            self._bind_target(target.value, None, scope)
        elif isinstance(target, ast.Subscript):
            self.candidates.append(("sub", target, scope, "setitem", self.ctx))
            self._visit_base(target.value, scope)
            self.visit(target.slice, scope)
        elif isinstance(target, ast.Attribute):
            self._visit_base(target.value, scope)

    def _aug_assign(self, node: ast.AugAssign, scope: _Scope) -> None:
        self.visit(node.value, scope)
        if isinstance(node.target, ast.Name):
            scope.bind(node.target.id, _OPAQUE)
        elif isinstance(node.target, ast.Subscript):
            self.candidates.append(("sub", node.target, scope, "setitem", self.ctx))
            self._visit_base(node.target.value, scope)
            self.visit(node.target.slice, scope)
        else:
            self._visit_base(node.target.value, scope)  # type: ignore[attr-defined]

    def _ann_assign(self, node: ast.AnnAssign, scope: _Scope) -> None:
        if node.value is not None:
            self._assign(node, scope)
        elif isinstance(node.target, ast.Name) and scope.kind != "class":
            scope.bind(node.target.id, _OPAQUE)

    def _for(self, node, scope: _Scope) -> None:
        self.visit(node.iter, scope)
        self._bind_target(node.target, None, scope)
        self._block(node.body, scope)
        self._block(node.orelse, scope)

    def _with(self, node, scope: _Scope) -> None:
        for item in node.items:
            self.visit(item.context_expr, scope)
            if item.optional_vars is not None:
                self._bind_target(item.optional_vars, item.context_expr, scope)
        self._block(node.body, scope)

    def _handler(self, node: ast.ExceptHandler, scope: _Scope) -> None:
        # The exception type is a class test, not a use.
        if node.name:
            scope.bind(node.name, _OPAQUE)
        self._block(node.body, scope)

    def _global(self, node: ast.Global, scope: _Scope) -> None:
        scope.globals.update(node.names)

    def _nonlocal(self, node: ast.Nonlocal, scope: _Scope) -> None:
        scope.nonlocals.update(node.names)

    def _delete(self, node: ast.Delete, scope: _Scope) -> None:
        for target in node.targets:
            if isinstance(target, ast.Name):
                scope.bind(target.id, _OPAQUE)
            elif isinstance(target, ast.Subscript):
                self.candidates.append(("sub", target, scope, "delitem", self.ctx))
                self._visit_base(target.value, scope)
                self.visit(target.slice, scope)
            else:
                self.visit(target, scope)

    def _named(self, node: ast.NamedExpr, scope: _Scope) -> None:
        self.visit(node.value, scope)
        target = scope
        while target.kind == "comprehension":
            target = target.parent  # type: ignore[assignment]
        target.bind(node.target.id, ("expr", node.value, scope))

    def _comprehension(self, node, scope: _Scope) -> None:
        generators = node.generators
        self.visit(generators[0].iter, scope)
        inner = _Scope("comprehension", scope, scope.qualname)
        for i, generator in enumerate(generators):
            if i:
                self.visit(generator.iter, inner)
            self._bind_target(generator.target, None, inner)
            self.visit_all(generator.ifs, inner)
        if isinstance(node, ast.DictComp):
            self.visit(node.key, inner)
            self.visit(node.value, inner)
        else:
            self.visit(node.elt, inner)

    def _match_capture(self, node, scope: _Scope) -> None:
        name = getattr(node, "name", None) or getattr(node, "rest", None)
        if name:
            scope.bind(name, _OPAQUE)
        for child in ast.iter_child_nodes(node):
            self.visit(child, scope)

    def _call(self, node: ast.Call, scope: _Scope) -> None:
        self.candidates.append(("call", node, scope, self.ctx))
        func = node.func
        if isinstance(func, ast.Attribute):
            self._visit_base(func.value, scope)
        elif isinstance(func, ast.Call):
            self.callees.add(id(func))
            self.visit(func, scope)
        elif not isinstance(func, ast.Name):
            self.visit(func, scope)
        skip_second = isinstance(func, ast.Name) and func.id in ("isinstance", "issubclass")
        for i, arg in enumerate(node.args):
            if skip_second and i == 1:
                continue
            if type(arg) is ast.Constant or type(arg) is ast.BinOp:
                self.literal_args[id(arg)] = node
            self.visit(arg, scope)
        for keyword in node.keywords:
            self.visit(keyword.value, scope)
        if (isinstance(func, ast.Name) and func.id in ("exec", "eval") and node.args
                and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            self._literal_code(node, scope, func.id)

    def _literal_code(self, node: ast.Call, scope: _Scope, how: str) -> None:
        """``exec("import os; os.system(...)")``: scan the literal as code at the call's place."""
        try:
            tree = ast.parse(node.args[0].value, mode="exec" if how == "exec" else "eval")
        except (SyntaxError, ValueError):
            return
        for child in ast.walk(tree):
            if hasattr(child, "lineno"):
                child.lineno, child.col_offset = node.lineno, node.col_offset  # type: ignore[attr-defined]
        body = tree.body if isinstance(tree, ast.Module) else [tree.body]
        for stmt in body:
            self.visit(stmt, scope)

    def _visit_base(self, node: ast.AST, scope: _Scope) -> None:
        """The receiver of an attribute: a chain is resolved with its use, anything else is visited."""
        while isinstance(node, ast.Attribute):
            node = node.value
        if not isinstance(node, ast.Name):
            self.visit(node, scope)

    def _attribute(self, node: ast.Attribute, scope: _Scope) -> None:
        if isinstance(node.ctx, ast.Load):
            self.candidates.append(("ref", node, scope, self.ctx))
        self._visit_base(node.value, scope)

    def _name(self, node: ast.Name, scope: _Scope) -> None:
        if isinstance(node.ctx, ast.Load):
            self.candidates.append(("ref", node, scope, self.ctx))
        elif isinstance(node.ctx, ast.Store):
            scope.bind(node.id, _OPAQUE)

    def _subscript(self, node: ast.Subscript, scope: _Scope) -> None:
        if isinstance(node.ctx, ast.Load) and _is_chain(node.value):
            self.candidates.append(("sub", node, scope, "getitem", self.ctx))
            self._visit_base(node.value, scope)
        else:
            self.visit(node.value, scope)
        self.visit(node.slice, scope)

    def _compare(self, node: ast.Compare, scope: _Scope) -> None:
        self.visit(node.left, scope)
        for op, comparator in zip(node.ops, node.comparators):
            if isinstance(op, (ast.In, ast.NotIn)) and _is_chain(comparator):
                self.candidates.append(("contains", comparator, scope, node.left, self.ctx))
                self._visit_base(comparator, scope)
            else:
                self.visit(comparator, scope)

    def _skip(self, node, scope) -> None:
        return None

    # Paths to an environment file (``/proc/<pid>/environ``) are noted wherever
    # they are written, since the read may be in a wrapper (psutil's
    # ``open_text(f"{procfs}/{pid}/environ")``) the scanner cannot follow.

    def _constant(self, node: ast.Constant, scope: _Scope) -> None:
        value = node.value
        if type(value) is str and value.endswith("environ") and table.environ_template(value):
            self.candidates.append(("environ", node, scope, self.ctx))

    def _joined_str(self, node: ast.JoinedStr, scope: _Scope) -> None:
        parts = node.values
        if parts and _literal_str(parts[-1]) and parts[-1].value.endswith("environ") \
                and table.environ_template(_template_text(node)):  # type: ignore[attr-defined]
            self.candidates.append(("environ", node, scope, self.ctx))
        for part in parts:
            if not _literal_str(part):
                self.visit(part, scope)

    def _bin_op(self, node: ast.BinOp, scope: _Scope) -> None:
        right = node.right
        if isinstance(node.op, ast.Add) and _literal_str(right) and right.value.endswith("environ") \
                and table.environ_template(_template_text(node)):  # type: ignore[attr-defined]
            self.candidates.append(("environ", node, scope, self.ctx))
        self.visit(node.left, scope)
        self.visit(right, scope)

    def _arg_annotation(self, node, scope) -> None:
        return None

    # ---------------------------------------------------------------- pass 2: resolve

    def defining_scope(self, name: str, scope: _Scope) -> _Scope:
        """The scope whose binding of *name* a use in *scope* sees (Python's LEGB, classes skipped)."""
        if scope.kind == "class":
            if name in scope.bindings:
                return scope
            scope = scope.parent  # type: ignore[assignment]
            while scope.kind == "class":
                scope = scope.parent  # type: ignore[assignment]
        while scope.kind != "module":
            if name in scope.globals:
                return self.root
            if name in scope.bindings and name not in scope.nonlocals:
                return scope
            scope = scope.parent  # type: ignore[assignment]
            while scope.kind == "class":
                scope = scope.parent  # type: ignore[assignment]
        return scope

    def bindings_of(self, name: str, scope: _Scope) -> Optional[list]:
        return self.defining_scope(name, scope).bindings.get(name)

    def resolve_name(self, name: str, scope: _Scope) -> frozenset:
        scope = self.defining_scope(name, scope)
        if name in scope.bindings:
            return self._values(scope, name)
        found = {f"{module}.{name}" for module in scope.stars}
        if name in _BUILTINS:
            found.add(f"builtins.{name}")
        return frozenset(found)

    def _values(self, scope: _Scope, name: str) -> frozenset:
        memo = scope.memo
        if name in memo:
            return memo[name]
        memo[name] = frozenset()  # a cycle (x = y; y = x) resolves to nothing
        out: set = set()
        for item in scope.bindings[name]:
            if item[0] == "mod":
                out.add(item[1])
            elif item[0] == "expr":
                out |= self.resolve(item[1], item[2])
            if len(out) > _MAX_VALUES:
                break
        result = frozenset(out)
        memo[name] = result
        return result

    def resolve(self, node: ast.AST, scope: _Scope) -> frozenset:
        """Every qualified name (or ``Class()`` instance) the expression may stand for."""
        kind = type(node)
        if kind is ast.Name:
            return self.resolve_name(node.id, scope)  # type: ignore[attr-defined]
        if kind is ast.Attribute:
            out = set()
            for value in self.resolve(node.value, scope):  # type: ignore[attr-defined]
                out.add(_attr(value, node.attr))  # type: ignore[attr-defined]
            return frozenset(out)
        if kind is ast.Call:
            return self._call_result(node, scope)  # type: ignore[arg-type]
        if kind is ast.Subscript:
            key = node.slice  # type: ignore[attr-defined]
            if isinstance(key, ast.Constant) and isinstance(key.value, str) \
                    and "sys.modules" in self.resolve(node.value, scope):  # type: ignore[attr-defined]
                return frozenset([key.value])
            return frozenset()
        if kind is ast.BinOp and isinstance(node.op, ast.Div):  # type: ignore[attr-defined]
            return frozenset(v for v in self.resolve(node.left, scope)  # type: ignore[attr-defined]
                             if v.endswith("()") and v[:-2] in table.DIV_RETURNS)
        if kind is ast.IfExp:
            return self.resolve(node.body, scope) | self.resolve(node.orelse, scope)  # type: ignore[attr-defined]
        if kind is ast.BoolOp:
            out = set()
            for value in node.values:  # type: ignore[attr-defined]
                out |= self.resolve(value, scope)
            return frozenset(out)
        if kind is ast.NamedExpr:
            return self.resolve(node.value, scope)  # type: ignore[attr-defined]
        return frozenset()

    def _call_result(self, node: ast.Call, scope: _Scope) -> frozenset:
        out = set()
        for callee in self.resolve(node.func, scope):
            name = table.normalise(callee)
            if name == "builtins.getattr" and len(node.args) >= 2 and _literal_str(node.args[1]):
                out |= {_attr(v, node.args[1].value) for v in self.resolve(node.args[0], scope)}  # type: ignore[attr-defined]
            elif name in ("builtins.__import__", "importlib.__import__") and node.args and _literal_str(node.args[0]):
                literal = node.args[0].value  # type: ignore[attr-defined]
                fromlist = node.args[3] if len(node.args) > 3 else next(
                    (k.value for k in node.keywords if k.arg == "fromlist"), None)
                full = bool(fromlist is not None and not (isinstance(fromlist, ast.Constant) and not fromlist.value)
                            and not (isinstance(fromlist, (ast.Tuple, ast.List)) and not fromlist.elts))
                out.add(literal if full else literal.split(".", 1)[0])
            elif name == "importlib.import_module" and node.args and _literal_str(node.args[0]):
                literal = node.args[0].value  # type: ignore[attr-defined]
                if literal.startswith("."):
                    package = node.args[1] if len(node.args) > 1 else None
                    if package is not None and _literal_str(package):
                        level = len(literal) - len(literal.lstrip("."))
                        base = package.value.split(".")  # type: ignore[attr-defined]
                        base = base[: len(base) - (level - 1)] if level > 1 else base
                        rest = literal.lstrip(".")
                        out.add(".".join(base + ([rest] if rest else [])))
                else:
                    out.add(literal)
            elif name in table.RETURNS:
                out.add(table.RETURNS[name] + "()")
        return frozenset(out)

    # ---------------------------------------------------------------- pass 2: uses

    def uses(self) -> list:
        records: list = []
        for candidate in self.candidates:
            form = candidate[0]
            scope = candidate[2]
            marks = _marks(candidate[-1])
            if form == "call":
                self._use_call(candidate[1], scope, records, candidate[-1])
            elif form == "ref":
                node = candidate[1]
                for value in self.resolve(node, scope):
                    if self._relevant(value):
                        records.append((value, "ref", (), (), node.lineno, node.col_offset + 1,
                                        scope.qualname, False, marks))
            elif form == "environ":
                self._environ_use(candidate[1], scope, records, marks)
            elif form == "sub":
                node, how = candidate[1], candidate[3]
                key = _fold(node.slice, self, scope)
                for value in self.resolve(node.value, scope):
                    if self._relevant(value):
                        records.append((value, how, (key,), (), node.lineno, node.col_offset + 1,
                                        scope.qualname, False, marks))
            else:  # contains
                node, key_node = candidate[1], candidate[3]
                key = _fold(key_node, self, scope)
                for value in self.resolve(node, scope):
                    if self._relevant(value):
                        records.append((value, "contains", (key,), (), node.lineno, node.col_offset + 1,
                                        scope.qualname, False, marks))
        return records

    def _environ_use(self, node: ast.AST, scope: _Scope, records: list, marks) -> None:
        """A path to an environment file: ``env-readonly`` evidence, unless an API's own covers it.

        A literal path given straight to an API of the table (``open("/proc/self/environ")``)
        is that API's evidence already (see evidence_of).
        """
        line, col = node.lineno, node.col_offset + 1
        text = _template_text(node)
        call = self.literal_args.get(id(node))
        if call is not None and "{}" not in table.environ_template(text) and any(not self._internal(v) and table.lookup(v)[0] is not None
                                    for v in self.resolve(call.func, scope)):
            return
        records.append((table.ENVIRON_FILE_USE, "ref", (table.environ_template(text),), (),
                        line, col, scope.qualname, False, marks))

    def _internal(self, value: str) -> bool:
        return value.split(".", 1)[0] in self.internal

    def platform_names(self) -> dict:
        """Module-level names bound once to a platform test (``WIN = sys.platform == "win32"``)."""
        out = {}
        for name, bindings in self.root.bindings.items():
            if len(bindings) == 1 and bindings[0][0] == "expr" and type(bindings[0][1]) in _TEST_NODES:
                condition = self._platform_test(bindings[0][1], bindings[0][2])
                if condition is not None and len(condition[0]) == 1 and "?" not in condition[0][0]:
                    out[name] = condition[0][0]
        return out

    def _relevant(self, value: str) -> bool:
        if value.endswith("()"):
            return False
        if value.split(".", 1)[0] in self.internal:
            return True
        return table.lookup(value)[0] is not None

    def _use_call(self, node: ast.Call, scope: _Scope, records: list, ctx: Optional[tuple] = None) -> None:
        values = self.resolve(node.func, scope)
        line, col = node.lineno, node.col_offset + 1
        func = node.func
        if not values:
            if isinstance(func, ast.Attribute) and func.attr in table.METHOD_HINTS and not (
                    isinstance(func.value, ast.Name) and func.value.id in ("self", "cls")) and not (
                    isinstance(func.value, ast.Call) and isinstance(func.value.func, ast.Name)
                    and func.value.func.id == "super"):
                args, kwargs = _fold_args(node, self, scope)
                own = _fold(func.value, self, scope) is OWN
                records.append((table.METHOD_HINTS[func.attr], "call", args, kwargs, line, col,
                                scope.qualname, True, _marks(ctx, own)))
            return
        folded = None
        marks = _marks(ctx)
        own_receiver: Optional[bool] = None
        for value in values:
            name = table.normalise(value)
            if name in _DYNAMIC_CODE:
                if not (node.args and _literal_str(node.args[0])):
                    what = name.split(".", 1)[1]
                    self.findings.append((line, col, "dynamic-code",
                                          f"{what}() of code that is not a literal"))
                continue
            if name in _DYNAMIC_IMPORT:
                index = _DYNAMIC_IMPORT[name]
                arg = _arg_node(node, index, None)
                if arg is not None and not _literal_str(arg):
                    self.findings.append((line, col, "dynamic-import",
                                          f"{name.replace('builtins.', '')}() of a name that is not a literal"))
                elif name in ("builtins.__import__", "importlib.__import__", "importlib.import_module") \
                        and arg is not None:
                    self.imports.add(arg.value.lstrip(".").split(".", 1)[0])  # type: ignore[attr-defined]
                if not self._relevant(value):
                    continue
            if name == "builtins.getattr" and len(node.args) >= 2:
                if not _literal_str(node.args[1]):
                    targets = [v for v in self.resolve(node.args[0], scope) if v in _CAPABILITY_MODULES]
                    if targets:
                        self.findings.append((line, col, "dynamic-attribute",
                                              f"getattr({targets[0]}, <computed name>)"))
                elif id(node) not in self.callees:
                    for target in self._call_result(node, scope):
                        if self._relevant(target):
                            records.append((target, "ref", (), (), line, col, scope.qualname, False, marks))
                continue
            if not self._relevant(value):
                continue
            if folded is None:
                folded = _fold_args(node, self, scope)
            record_marks = marks
            if "()." in value and isinstance(func, ast.Attribute):
                # a method of an instance: is the instance a path inside the distribution?
                if own_receiver is None:
                    own_receiver = _fold(func.value, self, scope) is OWN
                if own_receiver:
                    record_marks = _marks(ctx, True)
            records.append((value, "call", folded[0], folded[1], line, col, scope.qualname, False, record_marks))

    def exports(self) -> dict:
        out = {}
        for name in self.root.bindings:
            values = tuple(sorted(v for v in self._values(self.root, name)
                                  if v.split(".", 1)[0] in self.internal or table.lookup(v.removesuffix("()"))[0]
                                  or v.endswith("()") or v in _CAPABILITY_MODULES
                                  or v.split(".", 1)[0] in _CAPABILITY_ROOTS))
            if values:
                out[name] = values
        return out


_CAPABILITY_ROOTS = frozenset(m.split(".", 1)[0] for m in _CAPABILITY_MODULES)
_TEST_NODES = (ast.Compare, ast.Call, ast.BoolOp, ast.UnaryOp)


def _attr(value: str, attr: str) -> str:
    """``value.attr``; an attribute of an instance keeps its ``()`` so the table matches it exactly."""
    if value.endswith("()"):
        returned = table.ATTRIBUTE_RETURNS.get(f"{value[:-2]}.{attr}")
        return returned + "()" if returned else f"{value}.{attr}"
    return f"{value}.{attr}"


def _literal_str(node: Optional[ast.AST]) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _template_text(node: ast.AST) -> str:
    """A string expression's text with its computed parts as ``{}``: ``f"/proc/{pid}/environ"``,
    ``"/proc/" + pid + "/environ"`` and ``"/proc/self/environ"`` as written."""
    if _literal_str(node):
        return node.value  # type: ignore[attr-defined]
    if isinstance(node, ast.JoinedStr):
        return "".join(p.value if _literal_str(p) else "{}" for p in node.values)  # type: ignore[attr-defined]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _template_text(node.left) + _template_text(node.right)
    return "{}"


def _arg_node(node: ast.Call, pos: Optional[int], kw: Optional[str]) -> Optional[ast.AST]:
    if kw is not None:
        for keyword in node.keywords:
            if keyword.arg == kw:
                return keyword.value
    if pos is not None and pos < len(node.args) and not any(
            isinstance(a, ast.Starred) for a in node.args[: pos + 1]):
        return node.args[pos]
    return None


def _fold_args(node: ast.Call, analyser: _Analyser, scope: _Scope) -> tuple:
    args = []
    for arg in node.args:
        if isinstance(arg, ast.Starred):
            args.append(STAR)
            break
        args.append(_fold(arg, analyser, scope))
    kwargs = tuple((k.arg or "**", _fold(k.value, analyser, scope) if k.arg else UNKNOWN)
                   for k in node.keywords)
    return tuple(args), kwargs


def _fold(node: ast.AST, analyser: _Analyser, scope: _Scope, depth: int = 0):
    """A literal value for an argument, or a :class:`Ref`/:class:`Flags`, or UNKNOWN."""
    if depth > 6:
        return UNKNOWN
    kind = type(node)
    if kind is ast.Constant:
        value = node.value  # type: ignore[attr-defined]
        if isinstance(value, bytes):
            try:
                return value.decode()
            except UnicodeDecodeError:
                return UNKNOWN
        return value if isinstance(value, (str, int, float, bool, type(None))) else UNKNOWN
    if kind in (ast.Tuple, ast.List):
        out = []
        for element in node.elts:  # type: ignore[attr-defined]
            if isinstance(element, ast.Starred):
                out.append(UNKNOWN)
                break
            out.append(_fold(element, analyser, scope, depth + 1))
        return tuple(out)
    if kind is ast.Name:
        bindings = analyser.bindings_of(node.id, scope)  # type: ignore[attr-defined]
        if bindings is None and node.id == "__file__":  # type: ignore[attr-defined]
            return OWN
        if bindings is not None and len(bindings) == 1 and bindings[0][0] == "expr" and (
                not _is_chain(bindings[0][1]) or _names_file(bindings[0][1])):
            return _fold(bindings[0][1], analyser, bindings[0][2], depth + 1)
    if kind is ast.Attribute:
        attr = node.attr  # type: ignore[attr-defined]
        if attr in _OWN_ATTRIBUTES:
            if attr == "parent":
                if _fold(node.value, analyser, scope, depth + 1) is OWN:  # type: ignore[attr-defined]
                    return OWN
            elif attr == "origin":  # __spec__.origin
                base = node.value  # type: ignore[attr-defined]
                if isinstance(base, ast.Name) and base.id == "__spec__" \
                        and analyser.bindings_of("__spec__", scope) is None:
                    return OWN
            elif any(v.split(".", 1)[0] in analyser.internal and not v.endswith("()")
                     for v in analyser.resolve(node.value, scope)):  # type: ignore[attr-defined]
                return OWN  # <own module>.__file__
    if kind in (ast.Name, ast.Attribute):
        values = analyser.resolve(node, scope)
        return Ref(next(iter(values))) if len(values) == 1 else UNKNOWN
    if kind is ast.BinOp:
        op = node.op  # type: ignore[attr-defined]
        left = _fold(node.left, analyser, scope, depth + 1)  # type: ignore[attr-defined]
        right = _fold(node.right, analyser, scope, depth + 1)  # type: ignore[attr-defined]
        if left is OWN:
            # own / "data.txt" (a Path or Traversable); own + "/data.txt" (a string)
            if isinstance(op, ast.Div) and _stays_inside(right):
                return OWN
            if isinstance(op, ast.Add) and _plain_str(right) and right.startswith(("/", os.sep)) \
                    and _stays_inside(right.lstrip("/" + os.sep)):
                return OWN
            return UNKNOWN
        if isinstance(op, ast.BitOr):
            parts = []
            for side in (left, right):
                parts.extend(side if isinstance(side, Flags) else [side])
            return Flags(parts)
        if isinstance(left, str) and isinstance(right, str) and not isinstance(left, Ref) and not isinstance(right, Ref):
            if isinstance(op, ast.Add):
                return left + right
            if isinstance(op, ast.Div):
                return left.rstrip("/") + "/" + right if not right.startswith("/") else right
        return UNKNOWN
    if kind is ast.Call:
        func = node.func  # type: ignore[attr-defined]
        if isinstance(func, ast.Attribute) and func.attr in _OWN_METHODS \
                and _fold(func.value, analyser, scope, depth + 1) is OWN:
            # Path(__file__).resolve(), files(__package__).joinpath("data", "x.txt")
            args = [_fold(a, analyser, scope, depth + 1) for a in node.args]  # type: ignore[attr-defined]
            return OWN if all(_stays_inside(a) for a in args) else UNKNOWN
        values = analyser.resolve(func, scope)
        names = {table.normalise(v) for v in values}
        if len(names) != 1:
            return UNKNOWN
        name = names.pop()
        args = [_fold(a, analyser, scope, depth + 1) for a in node.args]  # type: ignore[attr-defined]
        if name in _OWN_FUNCTIONS:
            if name == "importlib.resources.files":
                first = args[0] if args else MISSING
                if _names_self(first, analyser.internal) and not node.keywords:  # type: ignore[attr-defined]
                    return OWN
            elif args and args[0] is OWN and all(_stays_inside(a) for a in args[1:]):
                return OWN
        plain = all(isinstance(a, str) and not isinstance(a, Ref) for a in args)
        if name in ("pathlib.Path.home",) and not args:
            return "~"
        if name in ("os.path.expanduser", "pathlib.Path", "pathlib.PurePath", "os.fspath", "builtins.str") \
                and len(args) == 1 and plain:
            return args[0]
        if name in ("os.path.join", "pathlib.Path", "pathlib.PurePath") and args and plain:
            return os.path.join(*args)
        if name == "pathlib.Path.expanduser" and isinstance(node.func, ast.Attribute):  # type: ignore[attr-defined]
            return _fold(node.func.value, analyser, scope, depth + 1)  # type: ignore[attr-defined]
        return UNKNOWN
    if kind is ast.JoinedStr:
        # f"{os.path.dirname(__file__)}/data.txt"
        parts = node.values  # type: ignore[attr-defined]
        if parts and isinstance(parts[0], ast.FormattedValue) \
                and _fold(parts[0].value, analyser, scope, depth + 1) is OWN:
            rest = parts[1:]
            if not rest:
                return OWN
            first = rest[0].value if _literal_str(rest[0]) else None  # type: ignore[attr-defined]
            if isinstance(first, str) and first.startswith(("/", os.sep)) and all(
                    not _literal_str(p) or _stays_inside(p.value.lstrip("/" + os.sep))  # type: ignore[attr-defined]
                    for p in rest):
                return OWN
        return UNKNOWN
    return UNKNOWN


#: Attributes that keep a path inside the distribution (``.parent``), or make one
#: (``<own module>.__file__``, ``__spec__.origin``).
_OWN_ATTRIBUTES = frozenset({"parent", "__file__", "origin"})
#: Methods of a path or resource that keep it inside the distribution.
_OWN_METHODS = frozenset({"resolve", "absolute", "joinpath", "with_name", "with_suffix", "with_stem"})
#: Functions whose result is inside the distribution when their first argument is
#: (``os.path.join(os.path.dirname(__file__), "data")``); ``files()`` of the package itself.
_OWN_FUNCTIONS = frozenset({
    "os.path.dirname", "os.path.abspath", "os.path.realpath", "os.path.normpath", "os.path.join",
    "os.fspath", "builtins.str", "pathlib.Path", "pathlib.PurePath", "importlib.resources.as_file",
    "importlib.resources.files"})


def _names_file(node: ast.AST) -> bool:
    """``__file__`` or ``<module>.__file__`` (a chain that :func:`_fold` reads as a path)."""
    return (isinstance(node, ast.Name) and node.id == "__file__") or (
        isinstance(node, ast.Attribute) and node.attr == "__file__")


def _stays_inside(value) -> bool:
    """A further path component that cannot leave the folder it is joined to by itself: not an
    absolute literal, no ``..``. A computed component is accepted: the run-time layer checks
    the real path."""
    if isinstance(value, str) and not isinstance(value, Ref):
        if value.startswith(("/", "\\")) or (len(value) > 1 and value[1] == ":"):
            return False
        return ".." not in value.replace("\\", "/").split("/")
    return value is not MISSING


_DISPATCH: dict = {
    ast.FunctionDef: _Analyser._function, ast.AsyncFunctionDef: _Analyser._function,
    ast.Lambda: _Analyser._function, ast.ClassDef: _Analyser._class,
    ast.Import: _Analyser._import, ast.ImportFrom: _Analyser._import_from,
    ast.Assign: _Analyser._assign, ast.AnnAssign: _Analyser._ann_assign, ast.AugAssign: _Analyser._aug_assign,
    ast.For: _Analyser._for, ast.AsyncFor: _Analyser._for, ast.With: _Analyser._with,
    ast.AsyncWith: _Analyser._with, ast.ExceptHandler: _Analyser._handler,
    ast.Global: _Analyser._global, ast.Nonlocal: _Analyser._nonlocal, ast.Delete: _Analyser._delete,
    ast.NamedExpr: _Analyser._named, ast.ListComp: _Analyser._comprehension,
    ast.SetComp: _Analyser._comprehension, ast.GeneratorExp: _Analyser._comprehension,
    ast.DictComp: _Analyser._comprehension, ast.Call: _Analyser._call,
    ast.Attribute: _Analyser._attribute, ast.Name: _Analyser._name, ast.Subscript: _Analyser._subscript,
    ast.Compare: _Analyser._compare, ast.arg: _Analyser._arg_annotation,
    ast.If: _Analyser._if, ast.IfExp: _Analyser._if_exp, ast.While: _Analyser._while, ast.Try: _Analyser._try,
}
# Leaves that can hold nothing of interest: skipping them saves a call per node.
for _leaf in (ast.Load, ast.Store, ast.Del, ast.Pass, ast.Break, ast.Continue):
    _DISPATCH[_leaf] = _Analyser._skip
for _base in (ast.operator, ast.unaryop, ast.cmpop, ast.boolop):
    for _leaf in _base.__subclasses__():
        _DISPATCH[_leaf] = _Analyser._skip
for _match_kind in ("MatchAs", "MatchStar", "MatchMapping"):
    if hasattr(ast, _match_kind):
        _DISPATCH[getattr(ast, _match_kind)] = _Analyser._match_capture
if hasattr(ast, "TryStar"):
    _DISPATCH[ast.TryStar] = _Analyser._try
_DISPATCH[ast.Constant] = _Analyser._constant
_DISPATCH[ast.JoinedStr] = _Analyser._joined_str
_DISPATCH[ast.BinOp] = _Analyser._bin_op


def analyse_source(source: bytes, module: str, is_package: bool = False,
                   internal: frozenset = frozenset()) -> FileSummary:
    """The per-file step: parse *source* and collect its uses; never runs it.

    *module* is the file's dotted module name (for relative imports);
    *internal* the top-level names of the distribution's own packages.
    A file that does not parse yields one ``parse-error`` finding.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError as error:
        return FileSummary(module, {}, (), [], [(error.lineno or 0, (error.offset or 0),
                                                  "parse-error", f"{error.msg}")], frozenset())
    except (ValueError, RecursionError, MemoryError) as error:
        return FileSummary(module, {}, (), [], [(0, 0, "parse-error", str(error) or type(error).__name__)],
                           frozenset())
    analyser = _Analyser(module, is_package, internal)
    try:
        analyser.run(tree)
        uses = analyser.uses()
        exports = analyser.exports()
        platforms = analyser.platform_names()
    except RecursionError:
        return FileSummary(module, {}, (), [], [(0, 0, "parse-error", "code nested too deeply to analyse")],
                           frozenset())
    return FileSummary(module, exports, tuple(analyser.root.stars), uses, analyser.findings,
                       frozenset(analyser.imports), platforms)
