import re

import pytest

from tfrs_debias.cli import build_parser, main


def _subcommands():
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return action.choices


@pytest.mark.parametrize("name", sorted(_subcommands()))
def test_help_explains_every_flag(name, capsys):
    sub = _subcommands()[name]
    with pytest.raises(SystemExit) as exit_info:
        main([name, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for action in sub._actions:
        for flag in action.option_strings:
            if flag.startswith("--"):
                assert flag in text
        if action.option_strings and action.dest != "help":
            assert action.help, f"{name} {action.option_strings} has no help"
    assert re.search(r"usage: tfrs-debias " + name, text)
