"""Named crash points (config/failpoints.py): the grammar, the actions, the counts, the refusal,
and the registry kept in step with the code."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from config import failpoints
from config.failpoints import Action, FailpointError, failpoint

ROOT = Path(__file__).resolve().parents[2]
POINT = "settle.after_entitlement"


# --- the grammar --------------------------------------------------------------------------------


def test_a_spec_arms_each_named_point_with_its_action_and_count():
    assert failpoints.parse("settle.after_lock=kill; outbox.after_esp_accepted=2*raise;"
                            "sweep.before_fix=sleep(250);settle.before_commit=off") == {
        "settle.after_lock": Action("kill"),
        "outbox.after_esp_accepted": Action("raise", 2),
        "sweep.before_fix": Action("sleep", None, 250),
        "settle.before_commit": Action("off"),
    }


@pytest.mark.parametrize(("spec", "words"), [
    ("settle.after_lok=kill", "'settle.after_lok' is not a failpoint"),
    ("settle.after_lock", "is not name=action"),
    ("settle.after_lock=panic", "'panic' is not an action"),
    ("settle.after_lock=sleep(ms)", "is not an action"),
    ("settle.after_lock=0*kill", "a count is at least 1"),
    ("settle.after_lock=kill;settle.after_lock=raise", "armed twice"),
])
def test_a_malformed_spec_is_refused_naming_the_bad_entry(spec, words):
    with pytest.raises(ValueError, match=re.escape(words)):
        failpoints.parse(spec)


def test_a_malformed_spec_stops_the_process_at_its_first_hit(arm):
    arm("settle.after_lock=explode")
    with pytest.raises(ImproperlyConfigured, match="BACKSTOP_FAILPOINTS: 'explode' is not an action"):
        failpoint("settle.after_lock")


# --- the actions --------------------------------------------------------------------------------


def test_a_point_does_nothing_when_nothing_is_armed(arm):
    failpoint(POINT)
    assert failpoints.hits[POINT] == 0


def test_a_point_does_nothing_when_only_other_points_are_armed(arm):
    arm("settle.after_lock=raise")
    failpoint(POINT)
    assert failpoints.hits[POINT] == 0


def test_a_point_armed_to_raise_raises_and_counts_the_hit(arm):
    arm(f"{POINT}=raise")
    with pytest.raises(FailpointError, match=POINT):
        failpoint(POINT)
    assert failpoints.hits[POINT] == 1


def test_a_count_fires_that_many_times_then_the_point_is_inert(arm):
    arm(f"{POINT}=2*raise")
    for _ in range(2):
        with pytest.raises(FailpointError):
            failpoint(POINT)
    failpoint(POINT)
    failpoint(POINT)
    assert failpoints.hits[POINT] == 4


def test_a_point_armed_off_is_counted_but_does_nothing(arm):
    arm(f"{POINT}=off")
    failpoint(POINT)
    assert failpoints.hits[POINT] == 1


def test_a_point_armed_to_sleep_sleeps_that_many_milliseconds(arm):
    arm(f"{POINT}=sleep(120)")
    started = time.monotonic()
    failpoint(POINT)
    assert time.monotonic() - started >= 0.12


def test_each_hit_is_logged_before_its_action(arm, monkeypatch, tmp_path):
    log = tmp_path / "failpoints.log"
    monkeypatch.setenv(failpoints.LOG_ENV, str(log))
    arm(f"{POINT}=1*raise")
    with pytest.raises(FailpointError):
        failpoint(POINT)
    failpoint(POINT)
    assert [(name, kind, pid) for name, kind, pid, _at in failpoints.read_log(log)] == [
        (POINT, "raise", os.getpid()), (POINT, "off", os.getpid())]


# --- refused outside DEBUG -------------------------------------------------------------------------


def test_failpoints_are_refused_when_debug_is_off_and_they_are_not_allowed(arm, monkeypatch):
    monkeypatch.setenv("DJANGO_DEBUG", "false")
    monkeypatch.delenv(failpoints.ALLOW_ENV)
    arm(f"{POINT}=kill")
    with pytest.raises(ImproperlyConfigured, match="DJANGO_DEBUG is off"):
        failpoints.refuse_unless_allowed()
    with pytest.raises(ImproperlyConfigured, match="DJANGO_DEBUG is off"):
        failpoint(POINT)


def test_failpoints_are_accepted_in_debug(arm, monkeypatch):
    monkeypatch.setenv("DJANGO_DEBUG", "true")
    monkeypatch.delenv(failpoints.ALLOW_ENV)
    arm(f"{POINT}=raise")
    failpoints.refuse_unless_allowed()
    with pytest.raises(FailpointError):
        failpoint(POINT)


def test_settings_refuse_to_start_with_failpoints_armed_and_debug_off():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "DJANGO_DEBUG": "false",
           failpoints.ENV: f"{POINT}=kill"}
    env.pop(failpoints.ALLOW_ENV, None)
    child = subprocess.run([sys.executable, "-c", "import django; django.setup()"], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=60)
    assert child.returncode != 0
    assert "BACKSTOP_FAILPOINTS is set but DJANGO_DEBUG is off" in child.stderr


# --- kill, across processes -----------------------------------------------------------------------

CHILD = "from config.failpoints import failpoint; failpoint('settle.after_entitlement'); print('survived')"


def _child(tmp_path, spec):
    env = {**os.environ, failpoints.ENV: spec, failpoints.ALLOW_ENV: "1",
           failpoints.LOG_ENV: str(tmp_path / "failpoints.log")}
    return subprocess.run([sys.executable, "-c", CHILD], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)


def test_kill_sigkills_the_process_and_its_hit_is_in_the_log(tmp_path):
    child = _child(tmp_path, f"{POINT}=kill")
    assert child.returncode == -signal.SIGKILL
    assert "survived" not in child.stdout
    [(name, kind, _pid, _at)] = failpoints.read_log(tmp_path / "failpoints.log")
    assert (name, kind) == (POINT, "kill")


def test_a_count_in_a_shared_log_is_spent_once_across_processes(tmp_path):
    first, second = _child(tmp_path, f"{POINT}=1*kill"), _child(tmp_path, f"{POINT}=1*kill")
    assert first.returncode == -signal.SIGKILL
    assert second.returncode == 0
    assert "survived" in second.stdout
    assert [kind for _name, kind, _pid, _at in failpoints.read_log(tmp_path / "failpoints.log")] == ["kill", "off"]


# --- the registry ----------------------------------------------------------------------------------

CALL = re.compile(r"\bfailpoint\((?P<arg>[^)]*)\)")


def _calls():
    found = {}
    for folder in ("accounts", "billing", "config", "outbox", "support"):
        for path in (ROOT / folder).rglob("*.py"):
            if path.name == "failpoints.py":
                continue
            for match in CALL.finditer(path.read_text()):
                found.setdefault(match["arg"], []).append(str(path.relative_to(ROOT)))
    return found


def test_every_failpoint_call_names_a_registered_point_literally():
    unregistered = {arg: where for arg, where in _calls().items() if arg.strip("\"'") not in failpoints.POINTS
                    or not re.fullmatch(r"\"[a-z_.]+\"", arg)}
    assert unregistered == {}


def test_every_registered_point_is_placed_in_the_code():
    placed = {arg.strip('"') for arg in _calls()}
    assert [name for name in failpoints.POINTS if name not in placed] == []
