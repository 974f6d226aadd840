"""dbnetpp.cli: the tools' shared -c / -o options."""
import pytest

from dbnetpp.cli import add_config_args, tool_parser

DOC = """First paragraph: what the tool does.

    python tools/x.py -c CONFIG

More detail after the options."""


def test_overrides_take_several_values_and_repeat():
    p = tool_parser(DOC)
    add_config_args(p)
    args = p.parse_args(["-c", "a.yml", "-o", "Global.a=1", "Global.b=2", "--opt", "Global.c=3"])
    assert args.config == "a.yml" and args.opt == ["Global.a=1", "Global.b=2", "Global.c=3"]
    assert p.parse_args(["--config", "b.yml"]).opt == []


def test_config_required_unless_defaulted(capsys):
    p = tool_parser(DOC)
    add_config_args(p)
    with pytest.raises(SystemExit):
        p.parse_args([])
    assert "-c/--config" in capsys.readouterr().err
    q = tool_parser(DOC)
    add_config_args(q, default="configs/x.yml")
    assert q.parse_args([]).config == "configs/x.yml"


def test_help_uses_the_docstring():
    p = tool_parser(DOC, epilog=True)
    text = p.format_help()
    assert "First paragraph" in text and "More detail after the options." in text
    assert "More detail" not in tool_parser(DOC).format_help()
