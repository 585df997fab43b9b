"""Settings: TOML sections, paths relative to the file, flags over the file, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.settings import DEFAULT_PORT, RESERVED_PORTS, SettingsError, load_settings


def test_the_default_port_is_clear_of_the_ports_daws_and_tools_already_use():
    assert DEFAULT_PORT not in RESERVED_PORTS and load_settings().port == DEFAULT_PORT
    assert load_settings().host == "127.0.0.1"


def test_a_settings_file_is_read_with_paths_relative_to_it_and_flags_win(tmp_path):
    f = tmp_path / "conf" / "bridge.toml"
    f.parent.mkdir()
    f.write_text(
        '[osc]\nport = 9960\nsubscribers = ["127.0.0.1:9961"]\n[folders]\nproject = "takes"\n'
        '[output]\nsample_rate = 48000\nformat = "float"\n[inbox]\npolling = true\n[model]\nprecision = "bfloat16"\ncompile = true\n'
    )
    s = load_settings(f, port=9970, inbox_dir=None)
    assert s.precision == "bfloat16" and s.compile_steps and load_settings().precision == "auto"
    assert s.port == 9970 and s.subscribers == (("127.0.0.1", 9961),)
    assert s.project_dir == (f.parent / "takes").resolve() and s.sample_rate == 48000 and s.inbox_polling


@pytest.mark.parametrize(
    "text,needle",
    [
        ("[osc]\nprot = 1\n", "unknown key 'prot' in [osc]"),
        ("[sound]\n", "unknown section [sound]"),
        ("[osc]\nport = 70000\n", "not a port"),
        ("[osc]\nsubscribers = ['nope']\n", "host:port"),
        ("[inbox]\npolling = 'yes'\n", "true or false"),
        ("[output]\nformat = 'mp3'\n", "pcm24"),
        ("[osc\n", "bridge.toml"),
        ("[osc]\nallow = ['192.168.1.300']\n", "not an IP address or network"),
        ("[model]\nprecision = 'int8'\n", "precision must be one of auto, float32, bfloat16, float16"),
        ("[model]\nmeasure_rates_s = -1\n", "measure_rates_s must be 0"),
    ],
)
def test_bad_settings_files_are_refused_naming_the_file_and_key(tmp_path, text, needle):
    f = tmp_path / "bridge.toml"
    f.write_text(text)
    with pytest.raises(SettingsError, match=needle.replace("[", r"\[").replace("]", r"\]")):
        load_settings(f)


def test_a_missing_settings_file_is_a_clear_error(tmp_path):
    with pytest.raises(SettingsError, match="not found"):
        load_settings(Path(tmp_path / "none.toml"))


def test_the_engine_casts_its_priors_to_the_precision_asked_for_and_reports_it(tiny_bundle):
    import torch

    from jukebox_model.api import BundleSource
    from jukebox_model.engine import load_engine

    engine = load_engine(BundleSource(tiny_bundle), device="cpu", precision="bfloat16")
    assert engine.info().precision == "bfloat16"
    assert all(m.prior.prior.compute_dtype == torch.bfloat16 for m in engine.sampler.levels.values())
    assert load_engine(BundleSource(tiny_bundle), device="cpu").info().precision == "float32"  # auto on a CPU
