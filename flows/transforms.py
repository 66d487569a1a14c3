"""Transforms: the small plain functions a mapping rule applies to a value.

Adding one is one function here and one test:

    @transform("reverse")
    def reverse(value):
        return str(value)[::-1]

A transform takes the value and its arguments as keywords, and returns the new value or raises
``TransformError`` with a message a person can act on. A transform declared with
``needs_root=True`` also receives ``root``: the whole source payload (``template`` uses it).
"""

from __future__ import annotations

import hashlib
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.utils.translation import gettext

from connectors.registry import Registry, UnknownKey
from flows.paths import MISSING, get_path

__all__ = ["Transform", "TransformError", "get_transform", "registry", "transform"]


class TransformError(ValueError):
    """The value cannot be transformed; the message says why."""


@dataclass(frozen=True)
class Transform:
    name: str
    func: Callable
    needs_root: bool
    doc: str
    needs_source: bool = True

    @property
    def arguments(self) -> dict[str, bool]:
        """Argument name → required, from the function's signature."""
        params = list(inspect.signature(self.func).parameters.values())[1:]
        return {
            p.name: p.default is inspect.Parameter.empty
            for p in params
            if p.name != "root" and p.kind is inspect.Parameter.KEYWORD_ONLY
        }

    def check_arguments(self, args: dict) -> list[str]:
        """Problems with ``args`` for this transform (unknown or missing arguments)."""
        known = self.arguments
        takes = ", ".join(known) or gettext("no arguments")
        problems = [
            gettext('unknown argument "%(name)s" for transform %(transform)s (it takes: %(takes)s)')
            % {"name": name, "transform": self.name, "takes": takes}
            for name in args
            if name not in known
        ]
        problems += [
            gettext('transform %(transform)s needs the argument "%(name)s"')
            % {"transform": self.name, "name": name}
            for name, required in known.items()
            if required and name not in args
        ]
        return problems

    def __call__(self, value, args: dict, root=None):
        if self.needs_root:
            return self.func(value, root=root, **args)
        return self.func(value, **args)


registry: Registry = Registry("transform")


def transform(name: str, *, needs_root: bool = False, needs_source: bool = True):
    """Register ``func``. ``needs_source=False``: it also runs when the rule's source is empty
    or missing (``constant``, ``template``)."""

    def register(func):
        registry.add(
            name, Transform(name, func, needs_root, inspect.getdoc(func) or "", needs_source)
        )
        return func

    return register


def get_transform(name: str) -> Transform:
    try:
        return registry.lookup(name)
    except UnknownKey as exc:
        raise TransformError(str(exc)) from None


def _text(value) -> str:
    if isinstance(value, (dict, list)):
        raise TransformError(f"expected text, got {type(value).__name__}")
    return str(value)


@transform("copy")
def copy(value):
    """The value unchanged."""
    return value


@transform("trim")
def trim(value):
    """Spaces removed at both ends."""
    return _text(value).strip()


@transform("lower")
def lower(value):
    """Lower case (and trimmed)."""
    return _text(value).strip().lower()


@transform("upper")
def upper(value):
    """Upper case (and trimmed)."""
    return _text(value).strip().upper()


@transform("title")
def title(value):
    """Each word capitalised (and trimmed)."""
    return _text(value).strip().title()


@transform("digits")
def digits(value):
    """Only the digits kept (e.g. a SIRET written with spaces)."""
    return re.sub(r"\D", "", _text(value))


@transform("phone_e164")
def phone_e164(value, *, region: str = "FR"):
    """A phone number in E.164 (+33612345678); ``region`` is for numbers written nationally."""
    import phonenumbers

    try:
        number = phonenumbers.parse(_text(value), region.upper())
    except phonenumbers.NumberParseException as exc:
        raise TransformError(f"not a phone number: {exc}") from None
    if not phonenumbers.is_valid_number(number):
        raise TransformError(f"not a valid phone number for region {region.upper()}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise TransformError(f'unknown time zone "{name}"') from None


def _parse_datetime(value, input_format: str | None, from_timezone: str) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        parsed = datetime.fromtimestamp(value, UTC)  # a Unix timestamp
    else:
        text = _text(value).strip()
        try:
            if input_format:
                parsed = datetime.strptime(text, input_format)  # noqa: DTZ007 - zone below
            elif text.isdigit():
                parsed = datetime.fromtimestamp(int(text), UTC)
            else:
                parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            expected = input_format or "ISO 8601 or a Unix timestamp"
            raise TransformError(f'"{text}" is not a date/time ({expected})') from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=_zone(from_timezone))
    return parsed


@transform("datetime")
def datetime_(
    value,
    *,
    input_format: str | None = None,
    output_format: str | None = None,
    timezone: str = "UTC",
    from_timezone: str = "UTC",
):
    """A date and time parsed (ISO 8601, a Unix timestamp, or ``input_format``), converted to
    ``timezone`` and written as ISO 8601 or ``output_format``. Times without a zone are taken
    in ``from_timezone``."""
    parsed = _parse_datetime(value, input_format, from_timezone).astimezone(_zone(timezone))
    return parsed.strftime(output_format) if output_format else parsed.isoformat()


@transform("date")
def date_(value, *, input_format: str | None = None, output_format: str = "%Y-%m-%d"):
    """A date parsed (ISO 8601 or ``input_format``) and written as ``output_format``."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.strftime(output_format)
    text = _text(value).strip()
    try:
        if input_format:
            parsed = datetime.strptime(text, input_format).date()  # noqa: DTZ007 - a date
        else:
            parsed = date.fromisoformat(text[:10])
    except ValueError:
        raise TransformError(f'"{text}" is not a date ({input_format or "YYYY-MM-DD"})') from None
    return parsed.strftime(output_format)


def _decimal(value) -> Decimal:
    if isinstance(value, bool):
        raise TransformError("expected a number, got a boolean")
    try:
        number = Decimal(str(value).strip().replace(",", "."))
    except InvalidOperation:
        raise TransformError(f'"{value}" is not a number') from None
    if not number.is_finite():
        raise TransformError(f'"{value}" is not a finite number')
    return number


@transform("decimal")
def decimal_(value, *, places: int = 2):
    """A number rounded half-up to ``places`` decimals, written as text (exact, no float)."""
    return str(_decimal(value).quantize(Decimal(1).scaleb(-int(places)), ROUND_HALF_UP))


# ISO 4217 minor units that are not 2; every other currency has 2.
MINOR_UNITS = {
    **dict.fromkeys(["BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG"], 0),
    **dict.fromkeys(["RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF"], 0),
    **dict.fromkeys(["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"], 3),
}


def _exponent(currency: str) -> int:
    code = str(currency).strip().upper()
    if not re.fullmatch(r"[A-Z]{3}", code):
        raise TransformError(f'"{currency}" is not an ISO 4217 currency code')
    return MINOR_UNITS.get(code, 2)


@transform("to_minor_units")
def to_minor_units(value, *, currency: str = "EUR"):
    """An amount in major units (12.34 EUR) as an integer in minor units (1234)."""
    number = _decimal(value).scaleb(_exponent(currency))
    if number != number.to_integral_value():
        raise TransformError(f"{value} has more decimals than {currency.upper()} allows")
    return int(number)


@transform("to_major_units")
def to_major_units(value, *, currency: str = "EUR"):
    """An integer amount in minor units (1234) as major units written exactly ("12.34")."""
    number = _decimal(value)
    if number != number.to_integral_value():
        raise TransformError(f"{value} is not a whole number of minor units")
    exponent = _exponent(currency)
    return str(number.scaleb(-exponent).quantize(Decimal(1).scaleb(-exponent)))


TRUE = {"true", "yes", "y", "1", "on", "oui", "vrai"}
FALSE = {"false", "no", "n", "0", "off", "non", "faux", ""}


@transform("boolean")
def boolean(value):
    """true/false from booleans, 0/1 and the usual words (yes/no, on/off, oui/non)."""
    if isinstance(value, bool):
        return value
    text = _text(value).strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise TransformError(f'"{value}" is not a yes/no value')


_NO_DEFAULT = object()


@transform("lookup")
def lookup(value, *, table: dict, default=_NO_DEFAULT):
    """The value translated through ``table``; unknown values give ``default`` (an error if
    there is none)."""
    if not isinstance(table, dict):
        raise TransformError("the lookup table must be a mapping of value → replacement")
    key = value if isinstance(value, str) else str(value)
    if key in table:
        return table[key]
    if default is _NO_DEFAULT:
        raise TransformError(f'"{value}" is not in the lookup table and there is no default')
    return default


@transform("constant", needs_source=False)
def constant(source, *, value):
    """Always ``value``, whatever the source (which may be empty)."""
    return value


def _dig(root, path: str):
    found = get_path(root, path)
    return "" if found is MISSING or found is None else found


@transform("template", needs_root=True, needs_source=False)
def template(value, *, template: str, root=None):
    """Text built from several source fields: ``"{customer.first} {customer.last}"``; ``{value}``
    is the rule's own source value. Missing fields are empty."""

    def fill(match: re.Match) -> str:
        name = match.group(1)
        found = value if name == "value" else _dig(root, name)
        return _text(found)

    return re.sub(r"\{([A-Za-z0-9_.\[\]]+)\}", fill, template).strip()


@transform("split")
def split(value, *, separator: str = ",", strip: bool = True):
    """Text cut into a list at ``separator`` (items trimmed, empty items dropped)."""
    parts = _text(value).split(separator)
    if strip:
        parts = [part.strip() for part in parts]
    return [part for part in parts if part != ""]


@transform("join")
def join(value, *, separator: str = ", "):
    """A list written as one text, items joined by ``separator``."""
    if not isinstance(value, (list, tuple)):
        raise TransformError(f"expected a list, got {type(value).__name__}")
    return separator.join(_text(item) for item in value if item is not None)


@transform("sha256")
def sha256(value, *, normalize: bool = True):
    """SHA-256 hex digest, for pseudonymisation (the text is trimmed and lower-cased first
    unless ``normalize`` is false, so "Ann@X.com " and "ann@x.com" give the same digest)."""
    text = _text(value)
    if normalize:
        text = text.strip().lower()
    return hashlib.sha256(text.encode()).hexdigest()
