"""The HTML report loads in a real headless browser (Debian's chromium) without errors and shows the table
and images. Skipped when chromium is not installed."""

import numpy as np
import pytest
from PIL import Image
from report_fixtures import report_runs

from omnibench.report import build_report
from omnibench.report.browser import check_report, find_chromium, problems

pytestmark = pytest.mark.skipif(find_chromium() is None, reason="chromium not installed (apt-get install -y chromium)")


def test_report_loads_and_shows_table_and_images(tmp_path, capsys):
    page = tmp_path / "report.html"
    page.write_text(build_report(report_runs(tmp_path), baselines=["published"]))
    shot = tmp_path / "shot.png"
    result = check_report(page, screenshot=shot, height=1600)
    assert problems(result) == []
    assert result["images"] >= 6 and result["decoded"] == result["images"]
    assert result["table_cells"] >= 20
    with Image.open(shot) as im:
        arr = np.asarray(im.convert("RGB"))
    assert arr.shape[1] == 1280 and arr.std() > 10  # something was drawn
    capsys.readouterr()


def test_probe_catches_broken_pages(tmp_path):
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><html><head><title>x</title></head><body>'
                    '<img src="data:image/png;base64,AAAA"><script>undefinedFunction();</script></body></html>')
    bad = problems(check_report(page))
    assert any("did not decode" in p for p in bad)
    assert any(p.startswith("error: js") for p in bad)
    assert "no table cells rendered" in bad
