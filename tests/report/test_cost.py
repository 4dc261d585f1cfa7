"""`harness cost`: the price table, the model and the command."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.report.cost import (
    Measured,
    PriceError,
    PriceRow,
    break_even_rate,
    effective_price,
    load_prices,
    measure,
    parse_prices,
    useful_share,
)

GOOD_TABLE = """\
    format: spot-harness-prices/1
    sources:
      mine: {title: our bill, url: "https://example.invalid/bill", date: 2026-11-30}
    prices:
      - {provider: aws, instance_type: g5.xlarge, on_demand: 1.0, spot: 0.4,
         interruptions_per_hour: 0.01, sources: [mine]}
    """


def test_the_shipped_table_is_valid_and_says_it_holds_examples() -> None:
    table = load_prices()
    assert table.prices and "Example figures" in table.note
    for row in table.prices:
        assert set(row.sources) <= set(table.sources)
    assert all(source.url.startswith("https://") for source in table.sources.values())


def test_price_table_errors_are_located_and_all_reported() -> None:
    text = textwrap.dedent(
        """\
        format: spot-harness-prices/1
        sources:
          mine: {title: our bill, url: "https://example.invalid", date: 2026-11-30}
        prices:
          - provider: aws
            instance_type: g5.xlarge
            on_demand: -1
            spot: 0.4
            interruptions_per_hour: 0.01
            sources: [theirs]
            colour: red
        """
    )
    with pytest.raises(PriceError) as raised:
        parse_prices(text, "p.yaml")
    lines = str(raised.value).splitlines()
    assert lines == [
        "p.yaml:7:16: `on_demand`: Input should be greater than 0 (got -1)",
        "p.yaml:11:5: unknown key `colour`; remove it or fix its spelling",
    ]
    fixed = text.replace("on_demand: -1", "on_demand: 1").replace("    colour: red\n", "")
    with pytest.raises(PriceError, match=r"p.yaml:10:15: source `theirs` is not under `sources:`"):
        parse_prices(fixed, "p.yaml")
    with pytest.raises(PriceError, match=r"p.yaml:1:1: a price table is a mapping"):
        parse_prices("- 1\n", "p.yaml")
    with pytest.raises(PriceError, match=r"p.yaml:2:1: not valid YAML"):
        parse_prices("format: [\n", "p.yaml")


def test_the_model_breaks_even_where_it_says() -> None:
    measured = Measured(overhead=0.02, lost_work=240.0, recovery=60.0)
    row = PriceRow(
        provider="aws", instance_type="x", on_demand=1.0, spot=0.3,
        interruptions_per_hour=0.5, sources=("s",),
    )  # fmt: skip
    assert useful_share(measured, 0.0) == pytest.approx(0.98)
    assert useful_share(measured, 1.0) == pytest.approx(0.98 - 300 / 3600)
    assert effective_price(measured, row.spot, 0.5) == pytest.approx(0.3 / (0.98 - 150 / 3600))
    rate = break_even_rate(measured, row)
    assert rate == pytest.approx(3600 * (0.98 - 0.3) / 300)
    assert effective_price(measured, row.spot, rate) == pytest.approx(row.on_demand)
    assert math.isinf(effective_price(measured, row.spot, 100.0))  # nothing useful is left


def test_measured_from_the_journal(document: dict[str, Any]) -> None:
    measured = measure(document["runs"])
    assert measured.runs == 2 and measured.interruptions == 2
    assert 0 < measured.overhead < 0.05
    assert measured.lost_work > 0 and 0 < measured.recovery < 30
    assert measured.seconds_per_item == 1.0


def test_cost_command_prints_and_plots(
    tmp_path: Path, journal: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = tmp_path / "prices.yaml"
    table.write_text(textwrap.dedent(GOOD_TABLE))
    out = tmp_path / "cost.html"
    code = main(["cost", "--journal", str(journal), "--prices", str(table), "--report", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "measured over 2 run(s)" in text and "2 interruption(s)" in text
    assert "aws g5.xlarge" in text and "per 1000 items" in text
    assert f"prices: {table}; sources dated 2026-11-30" in text
    page = out.read_text()
    assert "effective spot price of a useful hour, as a share of on-demand" in page
    assert "our bill" in page


def test_cost_needs_figures_and_known_rows(
    tmp_path: Path, journal: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["cost"]) == 2
    assert "give a journal" in capsys.readouterr().err
    code = main(["cost", "--overhead", "1", "--lost-work", "2m", "--recovery", "30s"])
    assert code == 0
    assert "figures given on the command line" in capsys.readouterr().out
    assert main(["cost", "--journal", str(journal), "--provider", "oracle"]) == 2
    assert "no price row for provider oracle" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("format: spot-harness-prices/2\nsources: {}\nprices: []\n")
    assert main(["cost", "--journal", str(journal), "--prices", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "invalid price table:" in err and f"{bad}:1:9:" in err
