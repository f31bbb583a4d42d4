"""PerVariableCache: values per variable, recomputed only when the variables change."""

from monetk.variable_cache import PerVariableCache


def test_recomputes_only_when_the_variables_are_other_objects():
    calls = []
    cache = PerVariableCache(lambda v: calls.append(v) or id(v), lambda v: "x")
    a, b, c = object(), object(), object()  # stand-ins for Keras variables
    first = cache([a, b])
    assert first == ([id(a), id(b)], ["x", "x"]) and calls == [a, b]
    assert cache([a, b]) is first and calls == [a, b]  # same objects: no look-up
    assert cache([a, c])[0] == [id(a), id(c)]          # one replaced
    assert cache([a, c, b])[0] == [id(a), id(c), id(b)]  # one added
    assert cache([c, a, b])[0] == [id(c), id(a), id(b)]  # reordered
    assert calls == [a, b, a, c, a, c, b, c, a, b]
