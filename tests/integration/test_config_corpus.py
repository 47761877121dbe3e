"""Every broken config of the corpus through the real `vigild --check` and through
reload: exit 2 and exactly the expected located errors; a failed reload changes nothing."""

import os
import pathlib
import subprocess

import pytest

from conftest import VIGILD, sleeper

BAD = pathlib.Path(__file__).resolve().parents[1] / "data" / "config" / "bad"
CASES = sorted(p.name for p in BAD.glob("*.yaml"))


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 30


# The environment the corpus is written against (as in tests/unit/config_corpus_test.cc).
CORPUS_ENV = {"PATH": "/usr/bin:/bin", "HOME": "/home/tester", "VIGIL_TEST_DIR": "/srv/test",
              "VIGIL_TEST_EMPTY": ""}


@pytest.mark.skipif(os.geteuid() != 0, reason="the corpus is written for vigild run as root")
@pytest.mark.parametrize("name", CASES)
def test_check_reports_exactly_the_expected_errors(name):
    expected = (BAD / name).with_suffix(".expected").read_text()
    r = subprocess.run([VIGILD, "--check", "-c", name], cwd=BAD, capture_output=True,
                       text=True, timeout=30, env=CORPUS_ENV)
    assert r.returncode == 2
    lines = r.stderr.splitlines()
    assert lines[-1].startswith("vigild: ") and "nothing started" in lines[-1]
    assert "\n".join(lines[:-1]) + "\n" == expected


def test_reload_with_each_broken_file_changes_nothing(vigil):
    vigil.write_config({"a": sleeper()})
    vigil.start()
    pid = vigil.wait_state("a", "running")["pid"]
    good = vigil.config.read_text()
    for name in CASES:
        text = (BAD / name).read_bytes()
        if b"include" in text:
            continue  # includes resolve relative to the corpus folder; --check covers them
        vigil.config.write_bytes(text)
        r = vigil.call("reload")
        assert r["ok"] is False and r["error"]["code"] == "config_error", name
        assert r["error"]["errors"], name
    vigil.config.write_text(good)
    assert vigil.status("a")["pid"] == pid
    assert list(vigil.status()) == ["a"]
