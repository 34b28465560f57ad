"""Who may use the control API (/_emulator/: faults, clock, reset, snapshots): programs on this
machine that know the emulator's secret key, never a web page. Stripe's side stays open as Stripe's is.

Probing found it answered anyone, with `Access-Control-Allow-Origin: *`, and a cross-site form wrote
a 453 KB snapshot to a path the page chose.
"""

import pytest
import requests

from stripe_emulator.server import _control_refusal
from stripe_emulator.testing import EmulatorProcess


def bearer(emulator):
    return {"Authorization": f"Bearer {emulator.secret_key}"}


@pytest.fixture(scope="module")
def with_snapshot_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("snapshots")
    with EmulatorProcess(snapshot_dir=str(directory)) as emulator:
        yield emulator, directory


def test_a_control_request_without_the_secret_key_is_refused_with_401_and_changes_nothing(emulator, control):
    response = requests.post(f"{emulator.api_base}/_emulator/faults", json={"kind": "fail", "path": "/v1/"},
                             timeout=5)

    assert response.status_code == 401
    assert control.faults() == []


def test_a_control_request_with_another_key_is_refused(emulator):
    response = requests.get(f"{emulator.api_base}/_emulator/state",
                            headers={"Authorization": "Bearer sk_test_" + "x" * 30}, timeout=5)

    assert response.status_code == 401


def test_a_control_request_with_the_secret_key_is_served_without_cors_headers(emulator):
    response = requests.get(f"{emulator.api_base}/_emulator/state", headers=bearer(emulator), timeout=5)

    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers


def test_a_cross_site_form_cannot_write_a_snapshot(with_snapshot_dir):
    emulator, directory = with_snapshot_dir

    response = requests.post(f"{emulator.api_base}/_emulator/snapshot", data={"name": "evil.json"},
                             headers={"Origin": "http://attacker.example"}, timeout=5)

    assert response.status_code == 403
    assert "Access-Control-Allow-Origin" not in response.headers
    assert list(directory.iterdir()) == []


def test_a_preflight_from_another_site_gets_no_cors_permission(emulator):
    response = requests.options(f"{emulator.api_base}/_emulator/reset", timeout=5, headers={
        "Origin": "http://attacker.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization"})

    assert response.status_code == 403
    assert "Access-Control-Allow-Origin" not in response.headers


def test_a_request_for_another_host_name_is_refused_even_with_the_key(emulator):
    # A DNS-rebinding page reaches 127.0.0.1 under its own name.
    response = requests.get(f"{emulator.api_base}/_emulator/state",
                            headers={**bearer(emulator), "Host": f"rebind.attacker.example:{emulator.port}"}, timeout=5)

    assert response.status_code == 403


def test_a_request_from_another_origin_is_refused_even_with_the_key(emulator):
    response = requests.get(f"{emulator.api_base}/_emulator/state",
                            headers={**bearer(emulator), "Origin": "http://attacker.example"}, timeout=5)

    assert response.status_code == 403


def test_a_request_from_the_emulators_own_origin_is_served(emulator):
    response = requests.get(f"{emulator.api_base}/_emulator/state",
                            headers={**bearer(emulator), "Origin": emulator.api_base}, timeout=5)

    assert response.status_code == 200


@pytest.mark.parametrize("address", ["10.0.0.5", "192.168.1.20", "2001:db8::1", "not-an-address"])
def test_callers_not_on_this_machine_are_refused(address):
    headers = {"Host": "127.0.0.1:12111", "Authorization": "Bearer sk_test_key"}

    assert _control_refusal(address, headers, "sk_test_key")[0] == 403


@pytest.mark.parametrize("address", ["127.0.0.1", "::1"])
def test_callers_on_this_machine_with_the_key_are_served(address):
    assert _control_refusal(address, {"Host": "localhost:12111", "Authorization": "Bearer k"}, "k") is None


@pytest.mark.parametrize("name", ["../escape.json", "/tmp/escape.json", "sub/escape.json", "..", ".hidden",
                                  "a\\b.json", "x" * 200, "", "name\x00.json"])
def test_a_snapshot_name_that_is_a_path_is_refused(with_snapshot_dir, name):
    emulator, directory = with_snapshot_dir

    response = requests.post(f"{emulator.api_base}/_emulator/snapshot", json={"name": name},
                             headers=bearer(emulator), timeout=5)

    assert response.status_code == 400
    assert list(directory.iterdir()) == []


def test_a_snapshot_path_chosen_by_the_caller_is_refused(with_snapshot_dir, tmp_path):
    emulator, _ = with_snapshot_dir

    response = requests.post(f"{emulator.api_base}/_emulator/snapshot", json={"path": str(tmp_path / "x.json")},
                             headers=bearer(emulator), timeout=5)

    assert response.status_code == 400
    assert not (tmp_path / "x.json").exists()


def test_a_named_snapshot_is_written_in_the_snapshot_directory(with_snapshot_dir):
    emulator, directory = with_snapshot_dir

    written = emulator.control.snapshot("before-the-drill.json")

    assert written["path"] == str(directory / "before-the-drill.json")
    assert (directory / "before-the-drill.json").stat().st_size == written["bytes"]
    (directory / "before-the-drill.json").unlink()


def test_without_a_snapshot_directory_a_named_snapshot_is_refused(emulator):
    response = requests.post(f"{emulator.api_base}/_emulator/snapshot", json={"name": "x.json"},
                             headers=bearer(emulator), timeout=5)

    assert response.status_code == 400


# --- Stripe's side is unchanged -------------------------------------------------------------------


def test_the_stripe_api_still_answers_any_page_as_stripe_does(emulator):
    response = requests.get(f"{emulator.api_base}/v1/account", auth=(emulator.secret_key, ""),
                            headers={"Origin": "http://shop.example"}, timeout=5)

    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_stripe_js_and_the_receipt_pages_need_no_key(emulator):
    assert requests.get(f"{emulator.api_base}/v3/", timeout=5).status_code == 200
    receipt = requests.get(f"{emulator.api_base}/_emulator/receipts/ch_unknown", timeout=5)
    assert receipt.status_code == 404  # no such charge, not "who are you"
