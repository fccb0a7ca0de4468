import json
import subprocess
import sys

import pytest

from ddplug.cli import build_parser


def ddplug(*args):
    return subprocess.run([sys.executable, "-m", "ddplug", *args], capture_output=True, text=True)


def test_plugins_command_lists_builtins_with_versions():
    out = ddplug("plugins", "--json")
    assert out.returncode == 0, out.stderr
    infos = {p["name"]: p for p in json.loads(out.stdout)}
    assert infos["ddplug.tasks"]["registered"]["tasks"] == ["ag_news", "sst2"]
    assert infos["ddplug.models"]["version"]


@pytest.mark.parametrize("kind,name", [("tasks", "ag_news"), ("backbones", "minilm"), ("heads", "mlp")])
def test_list_commands(kind, name):
    out = ddplug(kind)
    assert out.returncode == 0 and name in out.stdout


def test_every_subcommand_has_help():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for name in sub.choices:
        out = ddplug(name, "--help")
        assert out.returncode == 0 and "usage: ddplug" in out.stdout, name
