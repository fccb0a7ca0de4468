"""Plugin discovery through real entry points: a throwaway distribution is put on sys.path for each test."""
import textwrap
import warnings

import pytest

from ddplug.core import DDPlugError
from ddplug.plugins import DISABLE_ENV, KINDS, HookSpecs, Registry, registry, reload_plugins


def make_distribution(root, dist, module, source, version="1.2.3"):
    "Write `module.py` and a dist-info with an entry point in group ddplug, as pip would install them."
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[ddplug]\n{dist} = {module}\n")


@pytest.fixture
def site(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    monkeypatch.undo()
    reload_plugins()


GOOD = """
from ddplug.plugins import hookimpl

def make_shuffle(**options):
    return ("shuffle merger", options)

@hookimpl
def register_mergers(register):
    register("shuffle", make_shuffle, description="a test merger")
"""


def test_entry_point_plugin_is_found_with_its_version(site):
    make_distribution(site, "ddplug-shuffle", "ddplug_shuffle", GOOD, version="0.4.2")
    ps = reload_plugins()
    assert ps.info["ddplug-shuffle"].version == "0.4.2" and ps.info["ddplug-shuffle"].source == "entry point"
    entry = registry("mergers").get("shuffle")
    assert entry.plugin == "ddplug-shuffle" and entry.description == "a test merger"
    assert registry("mergers").create("shuffle", k=1) == ("shuffle merger", {"k": 1})
    assert ps.info["ddplug-shuffle"].registered == {"mergers": ["shuffle"]}


def test_broken_plugin_warns_and_the_rest_works(site):
    make_distribution(site, "ddplug-broken", "ddplug_broken", "import not_a_module_anywhere\n")
    make_distribution(site, "ddplug-shuffle", "ddplug_shuffle", GOOD)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reload_plugins()
    messages = [str(w.message) for w in caught]
    assert any("'ddplug-broken'" in m and "ModuleNotFoundError" in m for m in messages), messages
    assert "shuffle" in registry("mergers") and "ag_news" in registry("tasks")


def test_duplicate_name_names_both_plugins(site):
    make_distribution(site, "ddplug-dup", "ddplug_dup", """
        from ddplug.plugins import hookimpl
        @hookimpl
        def register_tasks(register):
            register("ag_news", dict)
    """)
    reload_plugins()
    with pytest.raises(DDPlugError) as e:
        registry("tasks")
    assert "'ddplug.tasks'" in str(e.value) and "'ddplug-dup'" in str(e.value) and DISABLE_ENV in str(e.value)


def test_disable_env_skips_named_plugins(site, monkeypatch):
    make_distribution(site, "ddplug-dup", "ddplug_dup", """
        from ddplug.plugins import hookimpl
        @hookimpl
        def register_tasks(register):
            register("ag_news", dict)
    """)
    monkeypatch.setenv(DISABLE_ENV, "ddplug-dup")
    ps = reload_plugins()
    assert "ddplug-dup" not in ps.info and registry("tasks").get("ag_news").plugin == "ddplug.tasks"


def test_unknown_name_lists_valid_names():
    reload_plugins()
    with pytest.raises(DDPlugError, match=r"unknown head 'lin'\. Valid heads: linear, mlp"):
        registry("heads").get("lin")
    with pytest.raises(DDPlugError, match="Valid kinds"):
        registry("widgets")


def test_non_callable_factory_is_refused():
    with pytest.raises(DDPlugError, match="not callable"):
        Registry("heads").register("x", 42, plugin="p")


def test_every_kind_has_a_hook():
    assert all(hasattr(HookSpecs, f"register_{kind}") for kind in KINDS)
