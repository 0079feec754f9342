"""Start and stop leave nothing running; scale mode serves thousands of sites on few sockets."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import psutil
import pytest

from tocsin.sandbox import Sandbox


def listening() -> set[tuple[str, int]]:
    me = psutil.Process()
    return {
        (c.laddr.ip, c.laddr.port)
        for c in me.net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN
    }


def test_stop_leaves_no_threads_or_sockets(tmp_path: Path) -> None:
    threads_before = set(threading.enumerate())
    sockets_before = listening()
    fds_before = psutil.Process().num_fds()
    with Sandbox(tmp_path / "sb") as sb:
        assert sb.running
        opened = listening() - sockets_before
        ports = {port for _ip, port in opened}
        assert {sb.http_port, sb.https_port, sb.canary_port, sb.smtp.port} <= ports
        assert ("127.53.0.1", sb.rdap.ports["rir"]) in opened
        assert ("127.53.0.3", sb.rdap.ports["down"]) not in opened
        # A hostile stream in flight when stop() comes must not keep anything alive.
        site = sb.sites["hostile-slow-drip"]
        with httpx.stream(
            "GET",
            f"http://{site.ip}:{sb.http_port}{site.entry}",
            headers={"Host": site.host},
            timeout=5,
        ) as response:
            next(response.iter_raw())
            sb.stop()
    assert not sb.running
    assert listening() == sockets_before
    assert set(threading.enumerate()) == threads_before
    assert psutil.Process().num_fds() <= fds_before + 2
    sb.stop()  # idempotent


@pytest.mark.serial  # benchmark-like: 3000 sites
def test_scale_mode_serves_many_sites_without_a_socket_each(tmp_path: Path) -> None:
    before = listening()
    with Sandbox(tmp_path / "sb", scale=3000, mix={"page": 0.5, "payload": 0.5}) as sb:
        scale = [s for s in sb.sites.values() if "scale" in s.tags]
        assert len(scale) == 3000
        sockets = len(listening() - before)
        # The catalogue's own addresses each have sockets; the 3000 scale sites add none.
        catalogue_ips = {s.ip for s in sb.sites.values() if "scale" not in s.tags}
        assert sockets < 3 * len(catalogue_ips) + 50 < 3000
        page = next(s for s in scale if s.behaviour == "brochure")
        response = httpx.get(
            f"http://{page.ip}:{sb.http_port}/", headers={"Host": page.host}, timeout=5
        )
        assert response.status_code == 200
        payloads = [s for s in scale if s.kind == "payload"][:2]
        bodies = [
            httpx.get(
                f"http://{s.ip}:{sb.http_port}{s.entry}", headers={"Host": s.host}, timeout=5
            ).content
            for s in payloads
        ]
        assert bodies[0] != bodies[1]
        hosts = sb.hosts_file.read_text().splitlines()
        assert len(hosts) > 3000
