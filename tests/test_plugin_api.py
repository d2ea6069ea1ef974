"""The versioned plugin API (CNNKIT_API) and choosing plugins (CNNKIT_PLUGINS, CNNKIT_DISABLE_PLUGINS)."""

from __future__ import annotations

import json

import pytest

from cnnkit.contracts import API_VERSION
from cnnkit.errors import PluginError
from cnnkit.plugins import PluginHost


def versioned(api, name="api-net"):
    declared = f"CNNKIT_API = {api!r}\n" if api is not None else ""
    return f"""
from cnnkit import hookimpl

{declared}
@hookimpl
def register_models(register):
    register("{name}", lambda **kw: None)
"""


def quiet_host(**kwargs):
    warnings: list[str] = []
    return PluginHost(warn=warnings.append, **kwargs), warnings


def test_api_version_is_a_pep440_version():
    from packaging.version import Version

    assert str(Version(API_VERSION)) == API_VERSION == "1.1"


@pytest.mark.parametrize("api", [">=1.0,<2", "~=1.0", "==1.*", None])
def test_a_plugin_whose_range_includes_cnnkits_api_loads(install_plugin, api):
    install_plugin("cnnkit-fits", versioned(api))
    host, warnings = quiet_host()
    assert host.registry("models").get("api-net").plugin == "cnnkit-fits" and warnings == []
    assert host.plugins["cnnkit-fits"].api == api


def test_a_plugin_for_another_api_is_skipped_with_one_line_naming_both_ranges(install_plugin):
    install_plugin("cnnkit-future", versioned(">=2.0,<3"))
    host, warnings = quiet_host()
    assert "api-net" not in host.registry("models") and "mnist-cnn" in host.registry("models")
    assert warnings == [
        "plugin 'cnnkit-future' is written for cnnkit API >=2.0,<3, and this cnnkit provides API 1.1; the plugin is "
        "skipped (install a version of it made for this cnnkit). See 'cnnkit plugins'; CNNKIT_NO_PLUGINS=1 loads no "
        "third-party plugins."]
    assert not host.plugins["cnnkit-future"].loaded


@pytest.mark.parametrize("api", ["1.0", ">=one", 2])
def test_a_range_that_is_not_a_pep440_specifier_is_refused(install_plugin, api):
    install_plugin("cnnkit-garbled", versioned(api))
    host, _ = quiet_host()
    assert "api-net" not in host.registry("models")
    assert host.plugins["cnnkit-garbled"].errors == [
        f"declares CNNKIT_API = {api!r}, which is not a version range such as '>=1.0,<2'; the plugin is skipped"]


def test_an_api_mismatch_is_fatal_in_strict_mode(install_plugin):
    install_plugin("cnnkit-future", versioned(">=2"))
    with pytest.raises(PluginError, match=r"^plugin 'cnnkit-future' is written for cnnkit API >=2, and this cnnkit provides "
                                          r"API 1.1; .* \(CNNKIT_STRICT_PLUGINS is set\)$"):
        PluginHost(strict=True).load()


def test_plugins_json_shows_each_plugins_api_range_version_registrations_and_errors(install_plugin, run_cli):
    install_plugin("cnnkit-fits", versioned(">=1.0,<2"))
    install_plugin("cnnkit-future", versioned(">=2", "future-net"), version="3.1")
    result = run_cli("plugins", "--json")
    plugins = {p["name"]: p for p in json.loads(result.out)}
    fits, future = plugins["cnnkit-fits"], plugins["cnnkit-future"]
    assert (fits["api"], fits["version"], fits["ok"], fits["registers"], fits["errors"]) == (
        ">=1.0,<2", "1.0", True, {"models": ["api-net"]}, [])
    assert (future["api"], future["version"], future["ok"], future["registers"]) == (">=2", "3.1", False, {})
    assert "this cnnkit provides API 1.1" in future["errors"][0]
    assert plugins["builtins.models"]["api"] is None
    listing = run_cli("plugins").out
    assert "cnnkit-fits 1.0 (cnnkit-fits; API >=1.0,<2)\n  models: api-net\n" in listing
    assert "cnnkit-future 3.1 (cnnkit-future; API >=2)  FAILED\n" in listing


def test_cnnkit_plugins_loads_only_the_named_third_party_plugins(install_plugin, monkeypatch, run_cli):
    install_plugin("cnnkit-one", versioned(None, "one-net"))
    install_plugin("cnnkit-two", versioned(None, "two-net"))
    monkeypatch.setenv("CNNKIT_PLUGINS", "cnnkit-one")
    host, warnings = quiet_host()
    models = host.registry("models")
    assert "one-net" in models and "two-net" not in models and "mnist-cnn" in models and "lenet5" not in models
    assert host.plugins["cnnkit-two"].disabled == "not in CNNKIT_PLUGINS" and warnings == []
    listing = run_cli("plugins", "--json")
    assert {p["name"]: p["disabled"] for p in json.loads(listing.out)}["lenet5"] == "not in CNNKIT_PLUGINS"
    assert "cnnkit-two 1.0 (cnnkit-two)  not loaded (not in CNNKIT_PLUGINS)" in run_cli("plugins").out


def test_cnnkit_disable_plugins_skips_those_by_entry_point_or_distribution_name(install_plugin, monkeypatch):
    install_plugin("cnnkit-one", versioned(None, "one-net"))
    install_plugin("cnnkit-two", versioned(None, "two-net"), entry_point="two")
    monkeypatch.setenv("CNNKIT_DISABLE_PLUGINS", " two , cnnkit-lenet5")
    host, warnings = quiet_host()
    models = host.registry("models")
    assert "one-net" in models and "two-net" not in models and "lenet5" not in models and warnings == []
    assert host.plugins["two"].disabled == host.plugins["lenet5"].disabled == "in CNNKIT_DISABLE_PLUGINS"


@pytest.mark.parametrize("variable", ["CNNKIT_PLUGINS", "CNNKIT_DISABLE_PLUGINS"])
def test_an_unknown_name_in_either_variable_is_one_warning_with_a_suggestion(install_plugin, monkeypatch, variable):
    install_plugin("cnnkit-one", versioned(None, "one-net"))
    monkeypatch.setenv(variable, "lenet")
    host, warnings = quiet_host()
    host.load()
    [warning] = warnings
    assert warning.startswith(f"{variable} names 'lenet', which is not an installed plugin (did you mean 'lenet5'?); installed: ")
    assert "cnnkit-one" in warning and "lenet5" in warning and "\n" not in warning


def test_an_unknown_name_says_which_plugin_left_unloaded_may_provide_it(install_plugin, run_cli):
    result = run_cli("train", "--model", "lenet5", env={"CNNKIT_DISABLE_PLUGINS": "lenet5"})
    assert result.code == 2
    assert result.err.strip().endswith(
        "The installed plugin 'lenet5' (cnnkit-lenet5) may provide 'lenet5'; it was not loaded (in CNNKIT_DISABLE_PLUGINS).")
