import pytest

from replab.core.config import ClusterSpec, load_spec, node_names, quote_ident, validate_identifier
from replab.core.errors import ConfigError
from replab.core.state import _ephemeral_range, _free_ports


def test_node_names():
    assert node_names(3) == ["mysql-m", "mysql-s1", "mysql-s2"]
    assert node_names(2) == ["mysql-m", "mysql-s1"]


def test_validate_returns_every_error_at_once():
    errors = ClusterSpec(nodes=1, binlog_format="JSON", base_port=80, engine="k8s").validate()
    assert len(errors) == 4
    assert any("--nodes" in e for e in errors)
    assert any("binlog format" in e for e in errors)
    assert any("--base-port" in e for e in errors)
    assert any("engine" in e for e in errors)


@pytest.mark.parametrize("nodes", [2, 9])
def test_node_bounds_ok(nodes):
    assert ClusterSpec(nodes=nodes).validate() == []


@pytest.mark.parametrize("nodes", [0, 1, 10])
def test_node_bounds_bad(nodes):
    assert ClusterSpec(nodes=nodes).validate()


def test_layers_defaults_toml_env_flags(tmp_path, monkeypatch):
    toml = tmp_path / "replab.toml"
    toml.write_text('[cluster]\nnodes = 4\nbinlog_format = "mixed"\nbase_port = 20000\n')
    monkeypatch.delenv("REPLAB_NODES", raising=False)
    spec = load_spec(toml)
    assert (spec.nodes, spec.binlog_format, spec.base_port) == (4, "MIXED", 20000)
    monkeypatch.setenv("REPLAB_NODES", "5")
    assert load_spec(toml).nodes == 5
    assert load_spec(toml, nodes=2).nodes == 2


def test_bad_env_value_is_a_config_error(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REPLAB_NODES", "three")
    with pytest.raises(ConfigError, match="whole number") as err:
        load_spec()
    # issue 23.14: the value already refused is not checked again ("... between 2 and 9 (got None)")
    assert str(err.value) == "REPLAB_NODES: nodes must be a whole number (got 'three')"


def test_unknown_toml_setting(tmp_path):
    toml = tmp_path / "replab.toml"
    toml.write_text("[cluster]\nnodez = 3\n")
    with pytest.raises(ConfigError, match="unknown setting"):
        load_spec(toml)


@pytest.mark.parametrize("bad", ["a b", "x;drop", "`x`", "1abc", "a'b", "", "x" * 65])
def test_identifiers_rejected(bad):
    with pytest.raises(ConfigError):
        validate_identifier(bad, "column")


def test_identifier_quoting():
    assert quote_ident(validate_identifier("events")) == "`events`"
    assert quote_ident("a`b") == "`a``b`"


def test_free_ports_are_distinct_and_outside_the_ephemeral_range() -> None:
    """Server ports are bound a moment after they are chosen; a port in the kernel's ephemeral range could be
    handed meanwhile to a relay's listening socket or an outgoing connection, and the server would not start."""
    low, high = _ephemeral_range()
    ports = _free_ports("127.0.0.1", 9)
    assert len(set(ports)) == 9
    assert all(not low <= p <= high for p in ports), (ports, low, high)
