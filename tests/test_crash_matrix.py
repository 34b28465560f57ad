"""The crash matrix's rows and report (scripts/crash_matrix.py), without a stack."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import crash_matrix

from config.failpoints import POINTS


def test_every_named_point_has_a_row_and_no_row_names_another():
    assert sorted({point for point, *_rest in crash_matrix.ROWS}) == sorted(POINTS)


def test_the_short_form_runs_each_point_once():
    rows, missing = crash_matrix.selected_rows(crash_matrix.parse_args(["--short"]))
    assert sorted(row.point for row in rows) == sorted(POINTS)
    assert missing == []


def test_the_full_form_crosses_settle_with_both_webhook_and_customer_habits():
    rows, _missing = crash_matrix.selected_rows(crash_matrix.parse_args([]))
    combos = {(row.webhooks, row.customer) for row in rows if row.point == "settle.after_entitlement"}
    assert combos == {("delivered", "returns"), ("delivered", "leaves"), ("dropped", "returns"), ("dropped", "leaves")}


def test_an_unknown_point_is_refused_by_name():
    with pytest.raises(SystemExit, match=r"not failpoints: settle\.after_lok"):
        crash_matrix.selected_rows(crash_matrix.parse_args(["--points", "settle.after_lok"]))


def test_the_table_says_which_rows_were_never_reached():
    rows = [crash_matrix.Row("settle.after_lock", "dropped", "returns", "purchase", reached=True, converged=True,
                             net="customer", email_after=5.1, active_after=4.5, end="active"),
            crash_matrix.Row("sweep.before_fix", "dropped", "leaves", "purchase", note="no sweep ran")]
    text = crash_matrix.table(rows)
    assert ("settle.after_lock  purchase  dropped   returns   yes      -       yes        customer  5.1      4.5       "
            "active") in text
    assert "sweep.before_fix   purchase  dropped   leaves    NO       -       NO" in text
    assert "  sweep.before_fix (dropped, leaves): no sweep ran" in text


def test_the_rows_only_the_sweep_can_finish_are_the_ones_lanes_take_first():
    rows, _missing = crash_matrix.selected_rows(crash_matrix.parse_args(["--short"]))
    first = {row.point for row in rows if crash_matrix.sweep_bound(row)}
    assert first == {"settle.after_entitlement", "settle.before_commit", "sweep.after_sync_page", "sweep.before_fix",
                     "adoption.after_order_recreated"}


def test_the_short_form_runs_in_three_lanes_unless_told_otherwise():
    assert crash_matrix.parse_args(["--short"]).lanes == 3
    assert crash_matrix.parse_args(["--short", "--lanes", "1"]).lanes == 1
