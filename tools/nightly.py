"""The nightly workflow's steps (.github/workflows/nightly.yml), as a script that runs anywhere.

The run history lives on the published site itself (`history/<target>.jsonl`, listed in
`history/index.json`, and all of it in `history.jsonl`), so it survives as long as the site does:
each night fetches it back before the run and publishes it again with the report. Only a missing
file (404) means "no history yet" (the first night); any other failure stops the job, so a site
that could not be read is never replaced by one that forgot its history.

    python tools/nightly.py fetch-history --target T --into history
    python tools/nightly.py run --target T --history history        # writes code=N to $GITHUB_OUTPUT
    python tools/nightly.py run --target T --shard 2/3 --history history     # one of three parallel jobs
    python tools/nightly.py publish --history history --reports reports --out site   # code=N too

A target's checks can be cut into shards run by parallel jobs (`--shard I/N`, I of N): each writes
reports/<target>/shard-<I>/, and `publish` combines them into reports/<target>/ (`conformance report
--combine-shards`), which is then the night's run of that target: compared with its history and its
expectations, appended to its history, published. With one shard (1/1) a job runs the whole target.
    python tools/nightly.py check-site --deployed URL

The site's URL is --site, else $SITE_URL, else GitHub Pages' default for $GITHUB_REPOSITORY.
Extra arguments for `conformance run` and `conformance report` come from $CONFORMANCE_RUN_ARGS and
$CONFORMANCE_REPORT_ARGS (e.g. `--budget-tokens 200000`, `--no-allure`). Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # as conformance.config.targets; names become file names
FETCH_ATTEMPTS = 3
FETCH_TIMEOUT_SECONDS = 30


class NightlyError(Exception):
    """Why a step cannot go on; one line."""


def site_url(explicit: str | None) -> str:
    """The published site's base URL, ending in '/'."""
    url = explicit or os.environ.get("SITE_URL", "")
    if not url:
        repository = os.environ.get("GITHUB_REPOSITORY", "")
        owner, _, name = repository.partition("/")
        if not owner or not name:
            raise NightlyError("no site URL: pass --site, set SITE_URL, or run in GitHub Actions (GITHUB_REPOSITORY)")
        host = f"{owner.lower()}.github.io"
        url = f"https://{host}/" if name.lower() == host else f"https://{host}/{name}/"
    return url.rstrip("/") + "/"


def fetch(url: str) -> bytes | None:
    """The file at `url`, or None when the site has no such file (404); raises on anything else."""
    problem = ""
    for attempt in range(FETCH_ATTEMPTS):
        if attempt:
            time.sleep(2 ** attempt)
        try:
            with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT_SECONDS) as response:
                return response.read()
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            problem = f"HTTP {exc.code}"
            if exc.code < 500:
                break
        except (urllib.error.URLError, OSError) as exc:
            problem = str(getattr(exc, "reason", exc))
    raise NightlyError(f"cannot read {url} ({problem}); stopping so that the published history is not lost")


def history_lines(data: bytes | None) -> list[str]:
    # A damaged line is kept as it is: the history's reader skips it, and says so.
    return [line for line in (data or b"").decode("utf-8", errors="replace").splitlines() if line.strip()]


def union(base: list[str], more: list[str]) -> list[str]:
    """`base`, then the lines of `more` it does not hold, in order: the history stays append-only."""
    out, seen = list(base), set(base)
    for line in more:
        if line not in seen:
            out.append(line)
            seen.add(line)
    return out


def checked_name(name: str) -> str:
    if not isinstance(name, str) or not SAFE_NAME.fullmatch(name):
        raise NightlyError(f"{name!r} is not a target name")
    return name


def fetch_history(site: str, target: str, into: Path) -> Path:
    data = fetch(f"{site}history/{checked_name(target)}.jsonl")
    into.mkdir(parents=True, exist_ok=True)
    path = into / f"{target}.jsonl"
    lines = history_lines(data)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    print(f"history of {target}: {len(lines)} run(s) from {site}" if data is not None
          else f"history of {target}: none published yet at {site} (first night)")
    return path


def output(name: str, value: object) -> None:
    """A step output ($GITHUB_OUTPUT), for a later step's condition."""
    path = os.environ.get("GITHUB_OUTPUT")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(f"{name}={value}\n")


def shard_parts(shard: str) -> tuple[int, int]:
    index, _, count = shard.partition("/")
    if not (index.isdigit() and count.isdigit() and 1 <= int(index) <= int(count)):
        raise NightlyError(f"--shard takes I/N with 1 <= I <= N, not {shard!r}")
    return int(index), int(count)


def run(target: str, history: Path, extra: list[str], shard: str = "1/1") -> int:
    """`conformance run` for one target (or one shard of it); its exit code goes to $GITHUB_OUTPUT as
    `code` (a later step decides what it means), and this step itself succeeds. A shard's deviations
    are judged once the shards are combined (an expectation is a check's worst over all its
    instances): a shard's `code` is 0 then, unless it could not run (2) or was incomplete (3)."""
    index, count = shard_parts(shard)
    command = [sys.executable, "-m", "conformance", "run", "--target", checked_name(target)]
    if count == 1:
        command += ["--report-dir", f"reports/{target}", "--history", str(history / f"{target}.jsonl")]
    else:  # the combined run is the night's history line, not each shard
        command += ["--report-dir", f"reports/{target}/shard-{index}", "--shard", f"{index}/{count}", "--no-history"]
    command += [*shlex.split(os.environ.get("CONFORMANCE_RUN_ARGS", "")), *extra]
    code = subprocess.call(command)
    what = target if count == 1 else f"{target}, shard {index} of {count}"
    print(f"conformance run exited {code} for {what}")
    if count > 1 and code == 1:
        print("deviations are judged when the shards are combined, in the publish job")
        code = 0
    output("code", code)
    return 0


def combine(reports: Path, history: Path) -> int:
    """Each target run in shards (reports/<target>/shard-<I>/) combined into reports/<target>/; the worst
    exit code of the combined runs (0 when none was sharded)."""
    worst = 0
    for folder in sorted(d for d in reports.glob("*") if d.is_dir()) if reports.is_dir() else []:
        shards = sorted(d for d in folder.glob("shard-*") if (d / "matrix.json").is_file())
        if not shards:
            continue
        target = checked_name(folder.name)
        code = subprocess.call([sys.executable, "-m", "conformance", "report", "--combine-shards", *map(str, shards),
                                "--out", str(folder), "--history", str(history / f"{target}.jsonl")])
        print(f"conformance report --combine-shards exited {code} for {target} ({len(shards)} shard(s))")
        worst = max(worst, code)
    return worst


def publish(site: str, history: Path, reports: Path, out: Path, extra: list[str]) -> int:
    """The site to deploy: the merged report of tonight's runs and every target's history (the one
    published before, plus tonight's lines), including targets that did not run tonight. A target run
    in shards is combined first; the combined runs' worst exit code goes to $GITHUB_OUTPUT as `code`."""
    output("code", combine(reports, history))
    run_dirs = sorted(d for d in reports.glob("*") if (d / "matrix.json").is_file()) if reports.is_dir() else []
    if not run_dirs:
        raise NightlyError(f"no run in {reports} wrote a matrix: nothing is published, the site stays as it was")
    index = json.loads(fetch(f"{site}history/index.json") or b"[]")
    if not isinstance(index, list):
        raise NightlyError(f"{site}history/index.json is not a list of target names")
    published = {checked_name(n): history_lines(fetch(f"{site}history/{n}.jsonl")) for n in index}
    tonight = {checked_name(p.stem): history_lines(p.read_bytes()) for p in sorted(history.glob("*.jsonl"))}
    merged = {name: union(published.get(name, []), tonight.get(name, []))
              for name in sorted(set(published) | set(tonight))}
    (out / "history").mkdir(parents=True, exist_ok=True)
    for name, lines in merged.items():
        (out / "history" / f"{name}.jsonl").write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    (out / "history" / "index.json").write_text(json.dumps(sorted(merged)), encoding="utf-8")
    everything = [line for lines in merged.values() for line in lines]
    (out / "history.jsonl").write_text("".join(f"{line}\n" for line in everything), encoding="utf-8")
    print(f"history: {len(everything)} run(s) of {len(merged)} target(s) published with the report")
    command = [sys.executable, "-m", "conformance", "report", *map(str, run_dirs), "--out", str(out),
               "--history", str(out / "history.jsonl"),
               *shlex.split(os.environ.get("CONFORMANCE_REPORT_ARGS", "")), *extra]
    return subprocess.call(command)


def check_site(site: str, deployed: str) -> int:
    """Tomorrow's run fetches the history from `site`: it must be where the site was deployed."""
    if deployed.rstrip("/") + "/" == site:
        print(f"the history is published at {site}history/, where the next run fetches it")
        return 0
    print(f"::error::the site was deployed to {deployed} but the history is fetched from {site}: set the "
          f"repository variable CONFORMANCE_SITE_URL to {deployed}, or the next run starts without history")
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nightly.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--site", help="the published site's URL (default: $SITE_URL, else GitHub Pages')")
    sub = parser.add_subparsers(dest="step", required=True)
    fetch_step = sub.add_parser("fetch-history", help="fetch a target's history from the site")
    fetch_step.add_argument("--target", required=True)
    fetch_step.add_argument("--into", type=Path, default=Path("history"))
    run_step = sub.add_parser("run", help="conformance run, its exit code to $GITHUB_OUTPUT")
    run_step.add_argument("--target", required=True)
    run_step.add_argument("--history", type=Path, default=Path("history"))
    run_step.add_argument("--shard", default="1/1", help="run shard I of N of the target's checks (default 1/1: all)")
    publish_step = sub.add_parser("publish", help="the merged report and every target's history, to deploy")
    publish_step.add_argument("--history", type=Path, default=Path("history"))
    publish_step.add_argument("--reports", type=Path, default=Path("reports"))
    publish_step.add_argument("--out", type=Path, default=Path("site"))
    check_step = sub.add_parser("check-site", help="fail when the site went elsewhere than the history is fetched")
    check_step.add_argument("--deployed", required=True, help="the URL the site was deployed to")
    args, extra = parser.parse_known_args(argv)
    extra = [a for a in extra if a != "--"]
    try:
        site = site_url(args.site)
        if args.step == "fetch-history":
            fetch_history(site, args.target, args.into)
            return 0
        if args.step == "run":
            return run(args.target, args.history, extra, args.shard)
        if args.step == "publish":
            return publish(site, args.history, args.reports, args.out, extra)
        return check_site(site, args.deployed)
    except NightlyError as exc:
        print(f"nightly: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
