from pathlib import Path

import pytest

from faceguard.config import Settings
from faceguard.errors import ConfigError


def test_defaults_derive_db_from_home():
    s = Settings.load({}, config_file=Path("/nonexistent.toml"))
    assert s.home == Path("data") and s.db_path == Path("data/faceguard.duckdb")
    assert s.models == Path("models") and s.max_pixels == 100_000_000
    assert s.rollout.canary_percent == 5 and s.review.retention_days == 7


def test_toml_then_environment_wins(tmp_path):
    cfg = tmp_path / "faceguard.toml"
    cfg.write_text('home = "h1"\nmax_pixels = 2_000_000\n[guard]\nmax_mean_ms = 80\n[rollout]\nunion_blur = false\n')
    s = Settings.load({"FACEGUARD_HOME": "h2", "FACEGUARD_GUARD_MAX_MEAN_MS": "90"}, config_file=cfg)
    assert s.home == Path("h2") and s.db_path == Path("h2/faceguard.duckdb")
    assert s.max_pixels == 2_000_000
    assert s.guard.max_mean_ms == 90.0
    assert s.rollout.union_blur is False


def test_explicit_db_path_is_kept():
    s = Settings.load({"FACEGUARD_HOME": "h", "FACEGUARD_DB": "/tmp/x.duckdb"}, config_file=Path("/none"))
    assert s.db_path == Path("/tmp/x.duckdb")


@pytest.mark.parametrize(
    "env, key",
    [
        ({"FACEGUARD_MAX_PIXELS": "lots"}, "max_pixels"),
        ({"FACEGUARD_MAX_PIXELS": "-5"}, "max_pixels"),
        ({"FACEGUARD_ROLLOUT_UNION_BLUR": "maybe"}, "rollout.union_blur"),
        ({"FACEGUARD_ROLLOUT_CANARY_PERCENT": "150"}, "rollout.canary_percent"),
    ],
)
def test_bad_values_name_the_setting(env, key):
    with pytest.raises(ConfigError) as err:
        Settings.load(env, config_file=Path("/none"))
    assert key in str(err.value)


def test_unknown_toml_key_is_refused(tmp_path):
    cfg = tmp_path / "f.toml"
    cfg.write_text("colour = 'blue'\n")
    with pytest.raises(ConfigError, match="colour"):
        Settings.load({}, config_file=cfg)
