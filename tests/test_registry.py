"""Every table of plugins behaves alike: a duplicate key is an error, an unknown key lists the
known ones."""

from __future__ import annotations

import pytest

from connectors.engine.auth import get_auth_method
from connectors.engine.auth import registry as auth_methods
from connectors.engine.errors import AuthError
from connectors.registry import Registry, UnknownKey
from flows.transforms import TransformError, get_transform
from flows.transforms import registry as transforms
from syncs.pagination import get_strategy
from syncs.pagination import registry as paginations
from syncs.registry import sources, targets
from webhooks.handlers import registry as handlers
from webhooks.schemes import get_scheme
from webhooks.schemes import registry as schemes


def test_a_duplicate_key_is_an_error_and_an_unknown_one_lists_the_known():
    registry = Registry("widget")
    registry.add("b", 2)
    registry.add("a", 1)
    with pytest.raises(ValueError, match="widget 'a' is already registered"):
        registry.add("a", 3)
    with pytest.raises(ValueError, match="needs a key"):
        registry.add("", 3)
    with pytest.raises(UnknownKey) as unknown:
        registry.lookup("c")
    assert str(unknown.value) == 'unknown widget "c" (known: a, b)'
    assert isinstance(unknown.value, LookupError) and registry["a"] == 1


@pytest.mark.parametrize(
    "registry", [auth_methods, transforms, paginations, sources, targets, handlers, schemes]
)
def test_every_plugin_table_is_a_registry(registry):
    assert isinstance(registry, Registry)
    key = next(iter(registry), None)
    if key is not None:
        with pytest.raises(ValueError, match="already registered"):
            registry.add(key, object())


def test_each_lookup_names_the_known_keys_in_its_own_error():
    with pytest.raises(AuthError, match=r'unknown auth method "nope" \(known: .*api_key_header'):
        get_auth_method("nope")
    with pytest.raises(TransformError, match=r'unknown transform "nope" \(known: .*lower'):
        get_transform("nope")
    with pytest.raises(KeyError, match=r'unknown pagination "nope" \(known: .*cursor_token'):
        get_strategy("nope")
    with pytest.raises(LookupError, match=r'unknown verification scheme "nope" \(known: .*github'):
        get_scheme("nope")
    with pytest.raises(LookupError, match=r'unknown sync source "nope"'):
        sources.lookup("nope")
