"""A Ray cluster of several nodes on this machine, all on 127.0.0.1: for the Ray backend's tests,
its benchmark, and for trying `--backend ray` without a second machine.

    python scripts/ray_local.py start --nodes 2 --cpus 1 --port 6390 --temp-dir /tmp/hmray
    RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 hmsearch index audio/ --backend ray --ray-address 127.0.0.1:6390
    python scripts/ray_local.py stop --temp-dir /tmp/hmray

Each node is its own `ray start` (a head, then `ray start --address` for the others): separate
raylets and worker processes, as on separate machines, sharing only the disk. Ray replaces a
loopback node address by the machine's outward one (ray._private.services.resolve_ip_for_localhost);
this machine may use loopback only, so the nodes are started with that lookup answering 127.0.0.1,
and a driver on this machine needs RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 (which makes Ray's own
lookup answer 127.0.0.1; on Linux it changes nothing else for a driver). `stop` ends exactly the
processes of this cluster (those whose command line names its temp dir), not other Ray clusters.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

LOOPBACK = "127.0.0.1"
DRIVER_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}  # what a driver on this machine needs

_LAUNCH = (
    "import sys, ray._private.services as s; s.get_node_ip_address = lambda address=None: '127.0.0.1'; "
    "from ray.scripts.scripts import main; sys.argv[0] = 'ray'; sys.exit(main())"
)


def ray_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", _LAUNCH, *args],
        # a node must not see the driver's RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 (it refuses to join then)
        env={
            **{k: v for k, v in os.environ.items() if k not in DRIVER_ENV},
            "RAY_USAGE_STATS_ENABLED": "0",
            **(env or {}),
        },
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_head(port: int, cpus: int, temp_dir: Path, object_store_mb: int = 200) -> None:
    temp_dir.mkdir(parents=True, exist_ok=True)
    done = ray_cli(
        "start", "--head", f"--node-ip-address={LOOPBACK}", f"--port={port}", f"--num-cpus={cpus}",
        "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp_dir}",
        f"--object-store-memory={object_store_mb * 1_000_000}",
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"ray start --head failed: {done.stderr.strip()[-500:]}")


def add_node(port: int, cpus: int, object_store_mb: int = 200) -> None:
    done = ray_cli(
        "start", f"--address={LOOPBACK}:{port}", f"--node-ip-address={LOOPBACK}", f"--num-cpus={cpus}",
        "--disable-usage-stats", f"--object-store-memory={object_store_mb * 1_000_000}",
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"ray start --address failed: {done.stderr.strip()[-500:]}")


def pids_of(temp_dir: Path) -> list[int]:
    """Processes whose command line names the cluster's temp dir (gcs, raylets, agents, workers)."""
    mark = str(temp_dir).encode()
    out = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if mark in (proc / "cmdline").read_bytes():
                out.append(int(proc.name))
        except OSError:
            continue
    return out


def worker_pids(temp_dir: Path, title: str) -> list[int]:
    """Ray worker processes of this cluster whose process title starts with ``title`` (Ray sets
    ``ray::Class.method`` while an actor runs a method, ``ray::Class`` while it waits)."""
    out = []
    for pid in pids_of_children(temp_dir):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if cmd.startswith(title):
            out.append(pid)
    return out


def pids_of_children(temp_dir: Path) -> list[int]:
    """Every descendant of this cluster's processes (workers' titles do not name the temp dir)."""
    roots = set(pids_of(temp_dir))
    parent: dict[int, int] = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                stat = (proc / "stat").read_text()
                parent[int(proc.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    out = set(roots)
    changed = True
    while changed:
        changed = False
        for pid, ppid in parent.items():
            if ppid in out and pid not in out:
                out.add(pid)
                changed = True
    return sorted(out)


def stop(temp_dir: Path, timeout: float = 10) -> None:
    pids = pids_of_children(temp_dir)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in pids):
            time.sleep(0.2)
    shutil.rmtree(temp_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["start", "stop"])
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--cpus", type=int, default=1, help="CPUs each node offers")
    parser.add_argument("--port", type=int, default=6390)
    parser.add_argument("--temp-dir", type=Path, default=Path("/tmp/hmsearch-ray"))
    args = parser.parse_args()
    if args.action == "stop":
        stop(args.temp_dir)
        return
    start_head(args.port, args.cpus, args.temp_dir)
    for _ in range(args.nodes - 1):
        add_node(args.port, args.cpus)
    print(f"{args.nodes} Ray nodes on {LOOPBACK}:{args.port}; drivers here need RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0")


if __name__ == "__main__":
    main()
