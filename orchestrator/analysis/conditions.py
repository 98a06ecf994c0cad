"""Success and failure conditions: a small, safe expression language over a measurement's `result`.

Conditions are written as in Argo Rollouts (`result[0] >= 0.95`, `len(result) > 0 && result[0] < 5`) and
parsed with Python's `ast`, then interpreted node by node against a whitelist. Nothing is ever passed to
`eval`/`exec`, no attribute of a Python object is ever read (`result.key` reads a key of a JSON object, and
names starting with `_` are refused outright), and no function outside the table below can be called.

Language (Argo Rollouts' expr, the parts conditions use):
- the value `result` (a number, a list of numbers, or parsed JSON for webhooks), numbers, strings,
  `true`/`false`/`nil` (also `True`/`False`/`None`), lists;
- `result[0]`, `result[1:]`, `result.key` / `result["key"]` on JSON objects;
- `+ - * / % //`, `**` (on floats), comparisons (`== != < <= > >= in`, chained), `and or not`
  (also expr's `&& || !`), `a if cond else b`, `all(x > 1 for x in result)`;
- expr's predicates, with `#` for the element and `.key` for a key of it, in braces or not:
  `all(result, # < 1000)`, `any(result, {# > 5})`, `none`, `one`, `count`, `filter`, `map`
  (`all(result.items, {asFloat(.value) >= 99})`);
- functions: `len abs round ceil floor min max sum mean median first last isNaN isInf isNil asInt
  asFloat int float`, and `default(value, fallback)`, which gives `fallback` only when `value` is nil, like
  Argo's (which looks at the whole `result`): never for NaN, nor for a value that cannot be computed
  (`result[0]` of an empty result is an Error with or without `default`).
- not supported, and refused by name: expr's `? :` and `??`, `..` ranges, `matches`, `contains`,
  `startsWith`, `endsWith`, and any other function.

No data never passes by accident: `min max sum mean median` and the predicates of an empty list are
Errors (expr gives 0 for `sum([])`, `mean([])` and `median([])`, true for `all([], ...)` and
`none([], ...)`), `first`/`last` of an empty list are nil, which compares with nothing. Passing on no
data is written out: `len(result) == 0 || result[0] < 500`, `isNaN(result[0]) || result[0] >= 99`.

Evaluation semantics (`assess_result`) are Argo Rollouts': no conditions → Successful; a success condition
alone → Failed when it is false; a failure condition alone → Successful when it is false; failure true →
Failed; success true → Successful; neither → Inconclusive. A condition that cannot be evaluated, or does not
give a boolean, makes the measurement an Error.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from orchestrator.analysis.phases import AnalysisPhase

MAX_CONDITION_LENGTH = 2000
# Results are small (a vector of a few samples); these bounds only stop pathological expressions.
MAX_SEQUENCE_LENGTH = 100_000
MAX_STRING_LENGTH = 10_000


class ConditionSyntaxError(ValueError):
    """A condition that cannot be parsed or uses something outside the language."""


class ConditionEvaluationError(ValueError):
    """A condition that parsed but failed on this result (index out of range, wrong types, not a bool)."""


_CONSTANT_NAMES: dict[str, Any] = {
    "true": True,
    "false": False,
    "nil": None,
    "True": True,
    "False": False,
    "None": None,
    "NaN": math.nan,
    "Inf": math.inf,
}

_ALLOWED_BINOPS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.FloorDiv: lambda a, b: a // b,
    ast.Mod: lambda a, b: a % b,
    # floats only: integer powers of huge exponents would hang; float powers overflow at once.
    ast.Pow: lambda a, b: math.pow(float(a), float(b)),
}

_ALLOWED_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: lambda a, b: bool(a == b),
    ast.NotEq: lambda a, b: bool(a != b),
    ast.Lt: lambda a, b: bool(a < b),
    ast.LtE: lambda a, b: bool(a <= b),
    ast.Gt: lambda a, b: bool(a > b),
    ast.GtE: lambda a, b: bool(a >= b),
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _is_inf(value: Any) -> bool:
    return isinstance(value, float) and math.isinf(value)


def _as_float(value: Any) -> float:
    return float(value)


def _as_int(value: Any) -> int:
    return int(float(value)) if isinstance(value, str) else int(value)


def _numbers(args: tuple[Any, ...], name: str) -> list[Any]:
    """expr's aggregate arguments: numbers and lists of numbers, flattened one level; never empty."""
    values: list[Any] = []
    for arg in args:
        values.extend(arg if isinstance(arg, list | tuple) else [arg])
    if not values:
        raise ConditionEvaluationError(f"{name}() of an empty list (no data)")
    for value in values:
        _require_number(value, f"{name}()")
    return values


def _aggregate(name: str, fold: Callable[[list[Any]], Any]) -> Callable[..., Any]:
    def call(*args: Any) -> Any:
        return fold(_numbers(args, name))

    return call


def _nonempty(values: Any, name: str) -> Any:
    if isinstance(values, list | tuple) and not values:
        raise ConditionEvaluationError(f"{name}() of an empty list (no data)")
    return values


def _median(values: list[Any]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return float(ordered[middle])
    return (ordered[middle - 1] + ordered[middle]) / 2


def _end(index: int) -> Callable[[Any], Any]:
    def call(value: Any) -> Any:
        if not isinstance(value, list | tuple):
            raise ConditionEvaluationError(f"first()/last() need a list, got {type(value).__name__}")
        return value[index] if value else None

    return call


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "len": len,
    "all": lambda values: all(_nonempty(values, "all")),
    "any": lambda values: any(_nonempty(values, "any")),
    "min": _aggregate("min", min),
    "max": _aggregate("max", max),
    "sum": _aggregate("sum", sum),
    "mean": _aggregate("mean", lambda values: sum(values) / len(values)),
    "median": _aggregate("median", _median),
    "first": _end(0),
    "last": _end(-1),
    "ceil": lambda value: float(math.ceil(value)),
    "floor": lambda value: float(math.floor(value)),
    "abs": abs,
    "round": round,
    "isNaN": _is_nan,
    "isInf": _is_inf,
    "isNil": lambda value: value is None,
    "asFloat": _as_float,
    "asInt": _as_int,
    "float": _as_float,
    "int": _as_int,
}
_SPECIAL_FORMS = {"default"}
# expr's predicates: (collection, predicate) with `#` the element; `all`/`any` also take one iterable.
_PREDICATES = {"all", "any", "none", "one", "count", "filter", "map"}
_ELEMENT = "__element__"  # what `#` and a leading `.key` become; no user name can start with `_`
_UNSUPPORTED = {
    "matches": "the operator 'matches'",
    "contains": "the operator 'contains'",
    "startsWith": "the operator 'startsWith'",
    "endsWith": "the operator 'endsWith'",
}


@dataclass(frozen=True)
class Condition:
    """A parsed condition, ready to evaluate against many results."""

    text: str
    tree: ast.Expression

    def evaluate(self, result: Any) -> bool:
        """True or False for `result`; ConditionEvaluationError if it cannot be computed or is not a bool."""
        try:
            value = _Interpreter({"result": result}).eval(self.tree.body)
        except ConditionEvaluationError:
            raise
        except (ArithmeticError, LookupError, TypeError, ValueError) as exc:
            raise ConditionEvaluationError(f"{self.text!r}: {_describe_runtime(exc)}") from None
        if not isinstance(value, bool):
            raise ConditionEvaluationError(
                f"{self.text!r} gave {value!r} ({type(value).__name__}); a condition must give true or false"
            )
        return value


def parse_condition(text: str) -> Condition:
    """Parse and check `text`; ConditionSyntaxError says what is wrong and where (column)."""
    return _parse_cached(text)


@lru_cache(maxsize=512)
def _parse_cached(text: str) -> Condition:
    if not text.strip():
        raise ConditionSyntaxError("the condition is empty")
    if len(text) > MAX_CONDITION_LENGTH:
        raise ConditionSyntaxError(f"the condition is longer than {MAX_CONDITION_LENGTH} characters")
    source = translate_argo_operators(text).strip()
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        for word, what in _UNSUPPORTED.items():
            if re.search(rf"\b{word}\b", text):
                raise ConditionSyntaxError(f"{what} is not supported in a condition") from None
        where = f" at column {exc.offset}" if exc.offset and exc.offset <= len(source) else " at the end"
        detail = "" if exc.msg == "invalid syntax" else f" ({exc.msg})"
        raise ConditionSyntaxError(f"invalid syntax{where}{detail}") from None
    _check(tree.body, bound=frozenset())
    return Condition(text=text, tree=tree)


def evaluate_condition(text: str, result: Any) -> bool:
    return parse_condition(text).evaluate(result)


def assess_result(
    result: Any, success_condition: str | None, failure_condition: str | None
) -> tuple[AnalysisPhase, str]:
    """Argo Rollouts' EvaluateResult: the phase of one measurement whose value is `result`, and why."""
    try:
        success = parse_condition(success_condition).evaluate(result) if success_condition else False
        failure = parse_condition(failure_condition).evaluate(result) if failure_condition else False
    except (ConditionSyntaxError, ConditionEvaluationError) as exc:
        return AnalysisPhase.ERROR, f"condition could not be evaluated: {exc}"
    if not success_condition and not failure_condition:
        return AnalysisPhase.SUCCESSFUL, "no conditions: any value passes"
    if success_condition and not failure_condition:
        failure = not success
    elif failure_condition and not success_condition:
        success = not failure
    if failure:
        which = failure_condition if failure_condition else f"not ({success_condition})"
        return AnalysisPhase.FAILED, f"failure condition met: {which}"
    if not success:
        return AnalysisPhase.INCONCLUSIVE, "neither the success nor the failure condition was met"
    which = success_condition if success_condition else f"not ({failure_condition})"
    return AnalysisPhase.SUCCESSFUL, f"success condition met: {which}"


# --- Argo (expr) operators -------------------------------------------------------------------------------


def translate_argo_operators(text: str) -> str:
    """expr's spelling → Python's, outside string literals: `&&` → and, `||` → or, `!x` → not x (but not
    `!=`), `#` → the predicate's element, `.key` where no value precedes it → the element's key, and
    predicate braces `{...}` → parentheses. `? :`, `??` and `..` are refused (ConditionSyntaxError)."""
    out: list[str] = []
    i, n = 0, len(text)
    quote: str | None = None
    while i < n:
        ch = text[i]
        if quote:
            out.append(ch)
            if ch == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 2
                continue
            if ch == quote:
                quote = None
            i += 1
            continue
        if ch in "\"'":
            quote = ch
            out.append(ch)
        elif text.startswith("&&", i):
            out.append(" and ")
            i += 2
            continue
        elif text.startswith("||", i):
            out.append(" or ")
            i += 2
            continue
        elif ch == "!" and not text.startswith("!=", i):
            out.append(" not ")
        elif ch == "?":
            raise ConditionSyntaxError(
                f"expr's {'??' if text.startswith('??', i) else '? :'} at column {i + 1} is not supported; "
                "write `b if a else c`"
            )
        elif text.startswith("..", i):
            raise ConditionSyntaxError(f"expr's range `..` at column {i + 1} is not supported")
        elif ch == "#":
            out.append(f" {_ELEMENT} ")
        elif ch == "{":
            out.append("(")
        elif ch == "}":
            out.append(")")
        elif ch == "." and i + 1 < n and (text[i + 1].isalpha() or text[i + 1] == "_") and _starts_value(out):
            out.append(f" {_ELEMENT}.")
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def _starts_value(out: list[str]) -> bool:
    """Whether a `.` here begins a value (`{.key > 1}`) rather than reading a key of the value before it."""
    before = "".join(out).rstrip()
    return not before or before[-1] in "(,[=<>!&|+-*/%" or before.endswith((" and", " or", " not"))


# --- static check ------------------------------------------------------------------------------------------


def _refuse(node: ast.AST, what: str) -> ConditionSyntaxError:
    column = getattr(node, "col_offset", None)
    where = f" at column {column + 1}" if column is not None else ""
    return ConditionSyntaxError(f"{what}{where} is not allowed in a condition")


def _check(node: ast.AST, bound: frozenset[str]) -> None:
    """Refuse every node outside the language before anything is evaluated."""
    match node:
        case ast.Constant(value=value):
            if not isinstance(value, int | float | str | bool) and value is not None:
                raise _refuse(node, f"the constant {value!r}")
        case ast.Name(id=name):
            if name == _ELEMENT:
                if name not in bound:
                    raise ConditionSyntaxError(
                        "`#` or `.key` is used outside a predicate such as all(result, # > 1)"
                    )
                return
            if name.startswith("_"):
                raise _refuse(node, f"the name {name!r}")
            if name != "result" and name not in _CONSTANT_NAMES and name not in bound:
                known = ", ".join(["result", *sorted(k for k in _CONSTANT_NAMES if k.islower())])
                raise ConditionSyntaxError(f"unknown name {name!r}; a condition can use {known}")
        case ast.Attribute(value=value, attr=attr):
            if attr.startswith("_"):
                raise _refuse(node, f"the attribute {attr!r}")
            _check(value, bound)
        case ast.Subscript(value=value, slice=index):
            _check(value, bound)
            _check(index, bound)
        case ast.Slice(lower=lower, upper=upper, step=step):
            for part in (lower, upper, step):
                if part is not None:
                    _check(part, bound)
        case ast.BoolOp(values=values):
            for value in values:
                _check(value, bound)
        case ast.UnaryOp(op=op, operand=operand):
            if not isinstance(op, ast.Not | ast.USub | ast.UAdd):
                raise _refuse(node, f"the operator {type(op).__name__}")
            _check(operand, bound)
        case ast.BinOp(left=left, op=op, right=right):
            if type(op) not in _ALLOWED_BINOPS:
                raise _refuse(node, f"the operator {type(op).__name__}")
            _check(left, bound)
            _check(right, bound)
        case ast.Compare(left=left, ops=ops, comparators=comparators):
            for cmp in ops:
                if type(cmp) not in _ALLOWED_COMPARE:
                    raise _refuse(node, f"the comparison {type(cmp).__name__}")
            _check(left, bound)
            for comparator in comparators:
                _check(comparator, bound)
        case ast.IfExp(test=test, body=body, orelse=orelse):
            for part in (test, body, orelse):
                _check(part, bound)
        case ast.List(elts=elts) | ast.Tuple(elts=elts):
            for elt in elts:
                _check(elt, bound)
        case ast.Call(func=func, args=args, keywords=keywords):
            if not isinstance(func, ast.Name) or (
                func.id not in _FUNCTIONS and func.id not in _SPECIAL_FORMS and func.id not in _PREDICATES
            ):
                name = func.id if isinstance(func, ast.Name) else ast.unparse(func)
                known = ", ".join(sorted({*_FUNCTIONS, *_SPECIAL_FORMS, *_PREDICATES}))
                raise ConditionSyntaxError(f"unknown function {name!r}; a condition can call {known}")
            if keywords or any(isinstance(arg, ast.Starred) for arg in args):
                raise _refuse(node, "keyword or star arguments")
            if func.id == "default" and len(args) != 2:
                raise ConditionSyntaxError("default() takes two arguments: default(value, fallback)")
            if func.id in _PREDICATES and len(args) == 2:
                _check(args[0], bound)
                _check(args[1], bound | {_ELEMENT})
                return
            if func.id in _PREDICATES - {"all", "any"} or (func.id in _PREDICATES and len(args) != 1):
                raise ConditionSyntaxError(
                    f"{func.id}() takes a list and a predicate: {func.id}(result, # > 1)"
                )
            for arg in args:
                _check(arg, bound)
        case ast.GeneratorExp(elt=elt, generators=generators) | ast.ListComp(elt=elt, generators=generators):
            inner = bound
            for comp in generators:
                if comp.is_async or not isinstance(comp.target, ast.Name):
                    raise _refuse(node, "this comprehension form")
                if comp.target.id.startswith("_") or comp.target.id == "result":
                    raise _refuse(comp.target, f"the loop name {comp.target.id!r}")
                _check(comp.iter, inner)
                inner = inner | {comp.target.id}
                for cond in comp.ifs:
                    _check(cond, inner)
            _check(elt, inner)
        case _:
            raise _refuse(node, type(node).__name__)


# --- interpretation --------------------------------------------------------------------------------------


class _Interpreter:
    def __init__(self, names: dict[str, Any]) -> None:
        self.names = names

    def eval(self, node: ast.AST) -> Any:
        match node:
            case ast.Constant(value=value):
                return value
            case ast.Name(id=name):
                if name in self.names:
                    return self.names[name]
                return _CONSTANT_NAMES[name]
            case ast.Attribute(value=value, attr=attr):
                target = self.eval(value)
                if not isinstance(target, dict):
                    raise ConditionEvaluationError(
                        f".{attr} needs a JSON object, but the value is {type(target).__name__}"
                    )
                if attr not in target:
                    raise ConditionEvaluationError(f"the key {attr!r} is not in the result")
                return target[attr]
            case ast.Subscript(value=value, slice=index):
                target = self.eval(value)
                key = self.eval(index)
                if not isinstance(target, list | tuple | dict | str):
                    raise ConditionEvaluationError(f"cannot index a {type(target).__name__}")
                return target[key]
            case ast.Slice(lower=lower, upper=upper, step=step):
                return slice(*(None if p is None else self.eval(p) for p in (lower, upper, step)))
            case ast.BoolOp(op=op, values=values):
                # short-circuit like Python, and give a bool like Argo's expr does
                if isinstance(op, ast.And):
                    return all(_truthy(self.eval(v)) for v in values)
                return any(_truthy(self.eval(v)) for v in values)
            case ast.UnaryOp(op=op, operand=operand):
                value = self.eval(operand)
                if isinstance(op, ast.Not):
                    return not _truthy(value)
                _require_number(value, type(op).__name__)
                return -value if isinstance(op, ast.USub) else +value
            case ast.BinOp(left=left, op=op, right=right):
                a, b = self.eval(left), self.eval(right)
                if isinstance(op, ast.Mult) and (_is_sized(a) or _is_sized(b)):
                    raise ConditionEvaluationError("repeating strings or lists is not allowed")
                return _bounded(_ALLOWED_BINOPS[type(op)](a, b))
            case ast.Compare(left=left, ops=ops, comparators=comparators):
                current = self.eval(left)
                for cmp, comparator in zip(ops, comparators, strict=True):
                    other = self.eval(comparator)
                    if not _ALLOWED_COMPARE[type(cmp)](current, other):
                        return False
                    current = other
                return True
            case ast.IfExp(test=test, body=body, orelse=orelse):
                return self.eval(body) if _truthy(self.eval(test)) else self.eval(orelse)
            case ast.List(elts=elts) | ast.Tuple(elts=elts):
                return [self.eval(e) for e in elts]
            case ast.Call(func=ast.Name(id="default"), args=[value, fallback]):
                # Argo's default replaces nil only: NaN stays NaN and an error stays an error.
                computed = self.eval(value)
                return self.eval(fallback) if computed is None else computed
            case ast.Call(func=ast.Name(id=name), args=[collection, predicate]) if name in _PREDICATES:
                return self._predicate(name, self.eval(collection), predicate)
            case ast.Call(func=ast.Name(id=name), args=args):
                return _bounded(_FUNCTIONS[name](*(self.eval(a) for a in args)))
            case (
                ast.GeneratorExp(elt=elt, generators=generators)
                | ast.ListComp(elt=elt, generators=generators)
            ):
                return list(self._comprehension(elt, generators, 0))
        raise ConditionEvaluationError(f"cannot evaluate {type(node).__name__}")  # unreachable after _check

    def _predicate(self, name: str, collection: Any, predicate: ast.expr) -> Any:
        """expr's all/any/none/one/count/filter/map: `predicate` evaluated with `#` bound to each element."""
        if not isinstance(collection, list | tuple):
            raise ConditionEvaluationError(f"{name}() needs a list, got {type(collection).__name__}")
        if not collection:
            # expr's all([]) is true and count([]) 0: an empty answer would pass `all(result, # < 1000)`
            raise ConditionEvaluationError(f"{name}() of an empty list (no data)")
        saved = self.names.get(_ELEMENT, _MISSING)
        try:
            if name == "map":
                mapped = []
                for item in collection:
                    self.names[_ELEMENT] = item
                    mapped.append(self.eval(predicate))
                return _bounded(mapped)
            matches = []
            for item in collection:
                self.names[_ELEMENT] = item
                value = self.eval(predicate)
                if not isinstance(value, bool):
                    raise ConditionEvaluationError(
                        f"the predicate of {name}() gave {value!r}, not true or false"
                    )
                if value:
                    matches.append(item)
                elif name == "all":
                    return False
                if name == "any" and value:
                    return True
        finally:
            if saved is _MISSING:
                self.names.pop(_ELEMENT, None)
            else:
                self.names[_ELEMENT] = saved
        if name == "all":
            return True
        if name == "any":
            return False
        if name == "none":
            return not matches
        if name == "one":
            return len(matches) == 1
        if name == "count":
            return len(matches)
        return matches  # filter

    def _comprehension(self, elt: ast.expr, generators: list[ast.comprehension], depth: int) -> Iterator[Any]:
        if depth == len(generators):
            yield self.eval(elt)
            return
        comp = generators[depth]
        assert isinstance(comp.target, ast.Name)
        iterable = self.eval(comp.iter)
        if not isinstance(iterable, list | tuple | dict | str):
            raise ConditionEvaluationError(f"cannot loop over a {type(iterable).__name__}")
        saved = self.names.get(comp.target.id, _MISSING)
        try:
            for item in iterable:
                self.names[comp.target.id] = item
                if all(_truthy(self.eval(c)) for c in comp.ifs):
                    yield from self._comprehension(elt, generators, depth + 1)
        finally:
            if saved is _MISSING:
                self.names.pop(comp.target.id, None)
            else:
                self.names[comp.target.id] = saved


_MISSING = object()


def _truthy(value: Any) -> bool:
    return bool(value)


def _is_sized(value: Any) -> bool:
    return isinstance(value, str | list | tuple)


def _require_number(value: Any, op: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConditionEvaluationError(f"{op} needs a number, got {type(value).__name__}")


def _bounded(value: Any) -> Any:
    if isinstance(value, list | tuple) and len(value) > MAX_SEQUENCE_LENGTH:
        raise ConditionEvaluationError("the value grew too large")
    if isinstance(value, str) and len(value) > MAX_STRING_LENGTH:
        raise ConditionEvaluationError("the value grew too large")
    return value


def _describe_runtime(exc: Exception) -> str:
    if isinstance(exc, IndexError):
        return "index out of range (the result has fewer values than the condition reads; no data?)"
    if isinstance(exc, KeyError):
        return f"the key {exc.args[0]!r} is not in the result"
    if isinstance(exc, ZeroDivisionError):
        return "division by zero"
    return f"{type(exc).__name__}: {exc}"
