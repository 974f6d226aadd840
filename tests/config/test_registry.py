"""Registry: name lookup with suggestions, kwargs validated against the class signature."""
import pytest

from dbnetpp.errors import ConfigError
from dbnetpp.registry import Registry


def _reg():
    reg = Registry("widget")

    @reg.register()
    class Gear:
        def __init__(self, teeth, module=1.0):
            self.teeth, self.module = teeth, module

    @reg.register(aliases=("Cog",))
    class Sprocket:
        def __init__(self, pitch=12.7):
            self.pitch = pitch

    return reg


@pytest.mark.smoke
def test_build_and_alias():
    reg = _reg()
    g = reg.build({"name": "Gear", "teeth": 20}, where="Parts.A")
    assert (g.teeth, g.module) == (20, 1.0)
    assert reg.build({"name": "Cog"}).pitch == 12.7
    assert reg.names() == ["Cog", "Gear", "Sprocket"]


def test_unknown_name_lists_choices_and_suggests():
    with pytest.raises(ConfigError) as e:
        _reg().build({"name": "Gaer", "teeth": 3}, where="Parts.A")
    msg = str(e.value)
    assert "unknown widget 'Gaer'" in msg and "Did you mean 'Gear'" in msg
    assert "Cog, Gear, Sprocket" in msg and "Parts.A.name" in msg


def test_unknown_and_missing_kwargs():
    with pytest.raises(ConfigError) as e:
        _reg().build({"name": "Gear", "teeth": 3, "modul": 2}, where="Parts.A")
    assert "unknown key 'modul'" in str(e.value) and "Did you mean 'module'" in str(e.value)
    assert "Valid keys: module, teeth" in str(e.value) and "Parts.A.modul" in str(e.value)
    with pytest.raises(ConfigError, match="needs key\\(s\\) teeth"):
        _reg().build({"name": "Gear"}, where="Parts.A")


def test_injected_kwargs_are_not_offered_as_choices():
    reg = Registry("layer")

    @reg.register()
    class Conv:
        def __init__(self, in_channels, out_channels=8):
            self.c = (in_channels, out_channels)

    assert reg.build({"name": "Conv"}, in_channels=3).c == (3, 8)
    with pytest.raises(ConfigError) as e:
        reg.build({"name": "Conv", "outchannels": 4}, in_channels=3)
    assert "Valid keys: out_channels" in str(e.value)


def test_double_registration_is_refused():
    reg = Registry("x")

    @reg.register()
    class A:
        pass

    with pytest.raises(ValueError, match="registered twice"):
        reg.register(name="A")(type("B", (), {}))
