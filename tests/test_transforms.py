"""Each transform of the registry, with what it must give and how it must fail."""

from __future__ import annotations

import pytest

from flows.transforms import TransformError, get_transform, registry


def run(name: str, source, root=None, **args):
    return get_transform(name)(source, args, root=root)


@pytest.mark.parametrize(
    ("name", "value", "args", "expected"),
    [
        ("copy", {"a": 1}, {}, {"a": 1}),
        ("trim", "  Ada  ", {}, "Ada"),
        ("lower", " Ada@Example.COM ", {}, "ada@example.com"),
        ("upper", "fr", {}, "FR"),
        ("title", "ada LOVELACE", {}, "Ada Lovelace"),
        ("digits", "732 829 320 00074", {}, "73282932000074"),
        ("phone_e164", "06 12 34 56 78", {}, "+33612345678"),
        ("phone_e164", "+44 20 7946 0958", {}, "+442079460958"),
        ("phone_e164", "(415) 555-2671", {"region": "us"}, "+14155552671"),
        ("date", "2026-03-05T10:00:00Z", {}, "2026-03-05"),
        ("date", "05/03/2026", {"input_format": "%d/%m/%Y"}, "2026-03-05"),
        ("date", "2026-03-05", {"output_format": "%d/%m/%Y"}, "05/03/2026"),
        (
            "datetime",
            "2026-03-05T10:00:00Z",
            {"timezone": "Europe/Paris"},
            "2026-03-05T11:00:00+01:00",
        ),
        ("datetime", 0, {}, "1970-01-01T00:00:00+00:00"),
        ("datetime", "1700000000", {"output_format": "%Y-%m-%d %H:%M"}, "2023-11-14 22:13"),
        (
            "datetime",
            "05/03/2026 10:00",
            {"input_format": "%d/%m/%Y %H:%M", "from_timezone": "Europe/Paris"},
            "2026-03-05T09:00:00+00:00",
        ),
        ("decimal", "12,345", {}, "12.35"),
        ("decimal", 2.5, {"places": 0}, "3"),
        ("to_minor_units", "12.34", {"currency": "eur"}, 1234),
        ("to_minor_units", 1500, {"currency": "JPY"}, 1500),
        ("to_minor_units", "1.234", {"currency": "KWD"}, 1234),
        ("to_major_units", 1234, {}, "12.34"),
        ("to_major_units", 5, {"currency": "EUR"}, "0.05"),
        ("to_major_units", 1500, {"currency": "JPY"}, "1500"),
        ("boolean", "Oui", {}, True),
        ("boolean", "off", {}, False),
        ("boolean", 1, {}, True),
        ("boolean", False, {}, False),
        ("lookup", "gold", {"table": {"gold": "VIP", "silver": "Regular"}}, "VIP"),
        ("lookup", "bronze", {"table": {"gold": "VIP"}, "default": "Other"}, "Other"),
        ("constant", None, {"value": ["customer"]}, ["customer"]),
        ("split", "a, b,,c ", {}, ["a", "b", "c"]),
        ("split", "a;b", {"separator": ";"}, ["a", "b"]),
        ("join", ["a", "b", None], {"separator": "|"}, "a|b"),
    ],
)
def test_transform(name, value, args, expected):
    assert run(name, value, **args) == expected


def test_template_reads_several_fields_of_the_source_and_its_own_value():
    root = {"customer": {"first": "Ada", "last": "Lovelace"}, "items": [{"sku": "A1"}]}
    assert run("template", "x", root, template="{customer.first} {customer.last}") == (
        "Ada Lovelace"
    )
    assert run("template", "pay_1", root, template="{value}/{items.0.sku}/{missing}") == (
        "pay_1/A1/"
    )


def test_sha256_pseudonymises_the_normalised_text_unless_told_not_to():
    import hashlib

    assert run("sha256", " Ann@Example.com ") == hashlib.sha256(b"ann@example.com").hexdigest()
    assert run("sha256", "Ann", normalize=False) == hashlib.sha256(b"Ann").hexdigest()


@pytest.mark.parametrize(
    ("name", "value", "args", "message"),
    [
        ("phone_e164", "12", {}, "not a valid phone number"),
        ("phone_e164", "call me", {}, "not a phone number"),
        ("date", "31/02/2026", {"input_format": "%d/%m/%Y"}, "is not a date"),
        ("datetime", "yesterday", {}, "is not a date/time"),
        ("datetime", "2026-01-01T00:00:00", {"timezone": "Mars/Olympus"}, "unknown time zone"),
        ("decimal", "12 euros", {}, "is not a number"),
        ("decimal", "NaN", {}, "not a finite number"),
        ("to_minor_units", "12.345", {"currency": "EUR"}, "more decimals than EUR allows"),
        ("to_minor_units", "12", {"currency": "euro"}, "not an ISO 4217 currency code"),
        ("to_major_units", "12.5", {}, "not a whole number"),
        ("boolean", "maybe", {}, "not a yes/no value"),
        ("lookup", "bronze", {"table": {"gold": "VIP"}}, "not in the lookup table"),
        ("join", "a,b", {}, "expected a list"),
        ("lower", {"a": 1}, {}, "expected text"),
    ],
)
def test_transform_errors_say_what_is_wrong(name, value, args, message):
    with pytest.raises(TransformError, match=message):
        run(name, value, **args)


def test_unknown_transform_names_the_known_ones():
    with pytest.raises(TransformError, match=r'unknown transform "nope" \(known: .*lower'):
        get_transform("nope")


def test_arguments_are_checked_against_the_signature():
    assert get_transform("phone_e164").check_arguments({"region": "FR"}) == []
    assert get_transform("phone_e164").check_arguments({"country": "FR"}) == [
        'unknown argument "country" for transform phone_e164 (it takes: region)'
    ]
    assert get_transform("lookup").check_arguments({}) == [
        'transform lookup needs the argument "table"'
    ]


def test_every_transform_is_documented():
    for name, spec in registry.items():
        assert spec.doc, f"transform {name} has no docstring (it is shown in the docs)"
