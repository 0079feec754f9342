"""ASN and prefix lookups on the real 2014/2015 tables, and RIB conversion offline."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from enrich_support import ASN_DATA

from enrich.asn import AsnDb, convert_rib, load_asnames
from tocsin.config import AsnConfig
from tocsin.errors import ConfigError

RIB = ASN_DATA / "rib.20140523.0600_first256KB.bz2"  # a download cut short


@pytest.fixture(scope="module")
def asndb() -> AsnDb:
    return AsnDb.from_config(
        AsnConfig(
            ipasn_db=str(ASN_DATA / "ipasn_20140513.dat.gz"),
            ipasn6_db=str(ASN_DATA / "ipasn6_20151101.dat.gz"),
            asnames=str(ASN_DATA / "asnames.json.gz"),
        )
    )


@pytest.mark.parametrize(
    ("address", "asn", "prefix", "name_starts"),
    [
        ("8.8.8.8", 15169, "8.8.8.0/24", "GOOGLE"),
        ("208.67.222.222", 36692, "208.67.222.0/24", "OPENDNS"),
        ("130.59.1.1", 559, "130.59.0.0/16", "SWITCH"),
        ("31.13.64.1", 32934, "31.13.64.0/24", "FACEBOOK"),
        ("17.0.0.1", 714, "17.0.0.0/9", "APPLE"),
        ("2001:4860:4860::8888", 15169, "2001:4860::/32", "GOOGLE"),
        ("2606:4700:4700::1111", 13335, "2606:4700::/32", "CLOUDFLARENET"),
        ("2a03:2880::1", 32934, "2a03:2880::/36", "FACEBOOK"),
    ],
)
def test_known_facts(asndb: AsnDb, address, asn, prefix, name_starts) -> None:
    info = asndb.lookup(address)
    assert (info.asn, info.prefix) == (asn, prefix)
    assert info.as_name.startswith(name_starts)


def test_unrouted_and_garbage(asndb: AsnDb) -> None:
    assert asndb.lookup("10.1.2.3").asn is None
    assert asndb.lookup("not-an-ip").asn is None
    assert asndb.lookup("::1").asn is None


def test_no_tables_means_no_answers() -> None:
    empty = AsnDb.from_config(AsnConfig())
    assert not empty.available and empty.lookup("8.8.8.8").asn is None
    with pytest.raises(ConfigError, match=r"asn\.ipasn_db"):
        AsnDb.from_config(AsnConfig(ipasn_db="/nonexistent.dat"))
    with pytest.raises(ConfigError, match=r"asn\.asnames"):
        load_asnames("/nonexistent.json")


def test_truncated_rib_converts_up_to_the_cut(tmp_path: Path) -> None:
    out = tmp_path / "ipasn.dat.gz"
    report = convert_rib(RIB, out)  # pyasn's MRT reader, record by record
    assert report.truncated and "mid-record" in report.problem
    assert report.records > 3000 and report.prefixes_v4 > 3000 and report.prefixes_v6 == 0
    with gzip.open(out, "rt") as handle:
        lines = handle.read().splitlines()
    assert lines[0].startswith("; IP-ASN32-DAT")
    assert "1.0.0.0/24\t15169" in lines
    assert not any(line.startswith("0.0.0.0/0") for line in lines)  # the default route
    db = AsnDb.from_config(AsnConfig(ipasn_db=str(out)))
    assert db.lookup("1.0.0.1").asn == 15169
    assert db.lookup("1.0.4.1").asn == 56203


def test_asn_update_command_offline(sqlite_cli, tmp_path: Path) -> None:
    result = sqlite_cli("asn", "update", "--rib", str(RIB), "--out-dir", str(tmp_path / "t"))
    assert result.returncode == 1, result.stderr  # truncated input: ran, but incomplete
    assert "mid-record" in result.stderr
    assert 'ipasn_db = "' in result.stdout
    produced = tmp_path / "t" / "ipasn_20140523.dat.gz"
    assert produced.is_file()
    assert AsnDb.from_config(AsnConfig(ipasn_db=str(produced))).lookup("1.0.0.1").asn == 15169


def test_asn_update_downloads_the_latest_rib(sqlite_cli, tmp_path: Path) -> None:
    """The online path against a loopback mirror laid out like archive.routeviews.org."""
    import functools
    import shutil
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    mirror = tmp_path / "mirror"
    ribs = mirror / "bgpdata" / "2014.05" / "RIBS"
    ribs.mkdir(parents=True)
    shutil.copy(RIB, ribs / "rib.20140523.0600.bz2")
    shutil.copy(RIB, ribs / "rib.20140501.0000.bz2")
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(mirror))
    handler.log_message = lambda *a, **k: None
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_port}/bgpdata"
        result = sqlite_cli(
            "--now",
            "2014-05-23T12:00:00Z",
            "asn",
            "update",
            "--no-v6",
            "--out-dir",
            str(tmp_path / "out"),
            env={"TOCSIN_ASN_ROUTEVIEWS_URL": base},
        )
    finally:
        server.shutdown()
        server.server_close()
    assert result.returncode == 1, result.stderr  # the mirror's file is the truncated one
    assert (tmp_path / "out" / "rib.20140523.0600.bz2").is_file()  # the newest was chosen
    assert (tmp_path / "out" / "ipasn_20140523.dat.gz").is_file()
