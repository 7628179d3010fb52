"""Load a report in headless Chromium: check it loads without errors, count tables and decoded images,
and optionally keep a screenshot.

``python -m omnibench.report.browser report.html [--screenshot shot.png]`` prints the check as JSON and exits
1 when the page had errors, broken images, external requests or no table. Needs ``chromium`` (Debian:
``apt-get install -y chromium``); :func:`find_chromium` returns None when it is absent.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from omnibench.errors import OmnibenchError

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--hide-scrollbars")

# Injected at the very start of <head> of a *copy* of the page: records JS and resource errors from the
# start, then on load writes a JSON summary into <pre id="omnibench-check"> for --dump-dom to read back.
_PROBE = """<script>
window.__obErr=[];
window.addEventListener('error',function(e){var t=e.target;
 window.__obErr.push(t&&t.tagName?('resource '+t.tagName+' '+String(t.src||t.href).slice(0,60)):('js '+e.message));},true);
window.addEventListener('load',function(){
 var imgs=Array.prototype.slice.call(document.images);
 var res=performance.getEntriesByType('resource').map(function(r){return r.name;})
   .filter(function(n){return n.indexOf('data:')!==0;});
 var out=document.createElement('pre');out.id='omnibench-check';
 out.textContent=JSON.stringify({errors:window.__obErr,images:imgs.length,
  decoded:imgs.filter(function(i){return i.complete&&i.naturalWidth>0;}).length,
  tables:document.querySelectorAll('table').length,
  table_cells:document.querySelectorAll('.omnibench-table td').length,
  external:res,title:document.title});
 document.body.appendChild(out);});
</script>"""


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _run(chrome: str, args: list[str], url: str, timeout: int) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="omnibench-chromium-") as profile:
        cmd = [chrome, *FLAGS, f"--user-data-dir={profile}", *args, url]
        env = dict(os.environ, HOME=profile)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def check_report(html_path: str | Path, screenshot: str | Path | None = None, width: int = 1280,
                 height: int = 2400, timeout: int = 120) -> dict:
    """Load ``html_path`` in headless Chromium; return the probe's summary (see module docstring)."""
    chrome = find_chromium()
    if chrome is None:
        raise OmnibenchError("chromium not found; install it (Debian: apt-get install -y chromium)")
    src = Path(html_path).resolve()
    text = src.read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory(prefix="omnibench-probe-") as tmp:
        probe = Path(tmp) / src.name
        probe.write_text(re.sub(r"<head>", "<head>" + _PROBE, text, count=1), encoding="utf-8")
        proc = _run(chrome, ["--virtual-time-budget=10000", "--dump-dom"], probe.as_uri(), timeout)
    m = re.search(r'<pre id="omnibench-check">(.*?)</pre>', proc.stdout, re.S)
    if not m:
        raise OmnibenchError(f"chromium did not report the page (exit {proc.returncode}): {proc.stderr[-800:]}")
    result = json.loads(m.group(1).replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))
    if screenshot:
        shot = Path(screenshot).resolve()
        shot.parent.mkdir(parents=True, exist_ok=True)
        _run(chrome, [f"--window-size={width},{height}", f"--screenshot={shot}"], src.as_uri(), timeout)
        if not shot.is_file():
            raise OmnibenchError(f"chromium wrote no screenshot to {shot}")
        result["screenshot"] = str(screenshot)
    return result


def problems(result: dict) -> list[str]:
    """Human-readable failures of a :func:`check_report` result (empty when the page is fine)."""
    out = [f"error: {e}" for e in result["errors"]]
    out += [f"external request: {u}" for u in result["external"]]
    if result["decoded"] != result["images"]:
        out.append(f"{result['images'] - result['decoded']} of {result['images']} images did not decode")
    if not result["table_cells"]:
        out.append("no table cells rendered")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m omnibench.report.browser", description=__doc__.split("\n\n")[0])
    ap.add_argument("html")
    ap.add_argument("--screenshot", default=None)
    ap.add_argument("--height", type=int, default=2400)
    args = ap.parse_args(argv)
    try:
        result = check_report(args.html, args.screenshot, height=args.height)
    except OmnibenchError as exc:
        print(f"omnibench: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2))
    bad = problems(result)
    for p in bad:
        print(f"problem: {p}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
