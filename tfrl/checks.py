"""Checks of user-given values against a parameter's annotation: type and range.

A parameter annotated `Annotated[int, Range(low=1)]` (or the shorthands below)
says what it accepts; `check_value` turns anything else into one ConfigError
line naming the parameter. `checked_arguments` applies it to every argument
of a function as called (gin bindings included), before the body runs.
"""

import collections.abc
import dataclasses
import functools
import inspect
import numbers
import typing
from typing import Annotated, Any, Optional

from tfrl.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Range:
  """Numbers in [low, high]; `low_open`/`high_open` exclude the bound."""
  low: Optional[float] = None
  high: Optional[float] = None
  low_open: bool = False
  high_open: bool = False

  def contains(self, value) -> bool:
    if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
      return False
    if self.high is not None and (value > self.high or (self.high_open and value == self.high)):
      return False
    return True

  def __str__(self):
    left = "(" if self.low_open else "["
    right = ")" if self.high_open else "]"
    if self.high is None:
      return f"> {self.low:g}" if self.low_open else f">= {self.low:g}"
    if self.low is None:
      return f"< {self.high:g}" if self.high_open else f"<= {self.high:g}"
    return f"in {left}{self.low:g}, {self.high:g}{right}"


Count = Annotated[int, Range(low=1)]          # budgets, sizes, intervals: 0 makes no sense
NonNegativeInt = Annotated[int, Range(low=0)]
PositiveFloat = Annotated[float, Range(low=0, low_open=True)]  # learning rates, scales
NonNegativeFloat = Annotated[float, Range(low=0)]
Fraction = Annotated[float, Range(low=0, high=1)]             # discounts, lambdas, taus
Layers = Annotated[typing.Sequence[int], Range(low=1)]       # hidden layer sizes
# Conv layers, (filters, kernel size, stride) each, all >= 1.
ConvLayers = Annotated[typing.Sequence[typing.Tuple[int, int, int]], Range(low=1)]


_SEQUENCES = (list, tuple, typing.Sequence, collections.abc.Sequence)


def _fixed_tuple_args(annotation):
  """The item types of Tuple[a, b, c] (a fixed-length tuple), else None."""
  args = typing.get_args(annotation)
  if typing.get_origin(annotation) is tuple and len(args) > 1 and Ellipsis not in args:
    return args
  return None


def _numbers(value):
  """The numbers in `value`, nested sequences flattened."""
  if isinstance(value, (list, tuple)):
    return [n for item in value for n in _numbers(item)]
  return [value]


def _type_name(annotation) -> str:
  origin = typing.get_origin(annotation)
  if origin is Annotated:
    return _type_name(typing.get_args(annotation)[0])
  if origin is typing.Union:
    return " or ".join(_type_name(a) for a in typing.get_args(annotation))
  fixed = _fixed_tuple_args(annotation)
  if fixed:
    return f"({', '.join(_type_name(a) for a in fixed)})"
  if origin in _SEQUENCES:
    args = typing.get_args(annotation)
    return f"a sequence of {_type_name(args[0])}" if args else "a sequence"
  if annotation is type(None):
    return "None"
  if annotation is bool:
    return "True/False"
  if annotation is int:
    return "an integer"
  if annotation is float:
    return "a number"
  if annotation is str:
    return "a string"
  return getattr(annotation, "__name__", str(annotation))


def _problem(value, annotation) -> Optional[str]:
  """Why `value` does not fit `annotation` (None if it does)."""
  origin = typing.get_origin(annotation)
  if origin is Annotated:
    base, *marks = typing.get_args(annotation)
    problem = _problem(value, base)
    if problem:
      return problem
    for mark in marks:
      if isinstance(mark, Range):
        for item in _numbers(value):
          if isinstance(item, numbers.Real) and not mark.contains(item):
            return f"must be {mark}"
    return None
  if origin is typing.Union:
    problems = [_problem(value, a) for a in typing.get_args(annotation)]
    if all(problems):
      # A range problem of the matching type says more than the type list.
      ranged = [p for p, a in zip(problems, typing.get_args(annotation))
                if p.startswith("must be") and a is not type(None)]
      return ranged[0] if ranged else f"must be {_type_name(annotation)}"
    return None
  fixed = _fixed_tuple_args(annotation)
  if fixed:
    ok = (isinstance(value, (list, tuple)) and len(value) == len(fixed)
          and not any(_problem(v, a) for v, a in zip(value, fixed)))
    return None if ok else f"must be {_type_name(annotation)}"
  if origin in _SEQUENCES:
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
      return f"must be {_type_name(annotation)}"
    args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
    for item in value:
      if args and _problem(item, args[0]):
        return f"must be {_type_name(annotation)}"
    return None
  if annotation is type(None):
    return None if value is None else "must be None"
  if annotation is bool:
    return None if isinstance(value, bool) else "must be True or False"
  if annotation is int:
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    return None if ok else "must be an integer"
  if annotation is float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    return None if ok else "must be a number"
  if annotation is str:
    return None if isinstance(value, str) else "must be a string"
  return None  # callables, components, anything else: not checked here


def check_value(name: str, value: Any, annotation) -> None:
  """Raises ConfigError "<name> = <value>: must be ..." if `value` does not fit."""
  if annotation is inspect.Parameter.empty:
    return
  problem = _problem(value, annotation)
  if problem:
    raise ConfigError(f"{name} = {value!r}: {problem}")


def checked_arguments(name: str):
  """Decorates a function (under gin's decorator) so every argument it is
  called with is checked against its annotation; errors name `name.param`."""
  def decorate(fn):
    signature = inspect.signature(fn)
    hints = typing.get_type_hints(fn, include_extras=True)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
      bound = signature.bind_partial(*args, **kwargs)
      for param, value in bound.arguments.items():
        if param in hints:
          check_value(f"{name}.{param}", value, hints[param])
      return fn(*args, **kwargs)
    return wrapper
  return decorate


def check_fields(settings, prefix: str) -> None:
  """Every field of a settings dataclass against its annotation; errors name
  `prefix.field` (a frozen gin-configurable dataclass's `__post_init__`)."""
  hints = typing.get_type_hints(type(settings), include_extras=True)
  for field in dataclasses.fields(settings):
    check_value(f"{prefix}.{field.name}", getattr(settings, field.name), hints[field.name])
