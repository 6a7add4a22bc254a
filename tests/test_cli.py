"""The command line: every command is reachable and documents itself."""
import pytest

from harness.cli import COMMANDS, main


def test_every_command_prints_its_help(capsys):
    """``l2emg --help`` and each command's ``--help`` (argparse %-formats help strings: an
    unescaped ``95% CI`` broke the top-level help)."""
    for argv in [[]] + [list(words) for words in COMMANDS]:
        with pytest.raises(SystemExit) as done:
            main(argv + ["--help"])
        assert done.value.code == 0, argv
    assert "95% CI" in capsys.readouterr().out
