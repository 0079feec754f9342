"""`tocsin package --verify`: a changed byte anywhere fails, naming the file; the RFC 3161
token verifies against the sandbox TSA's CA (issue 15, point 2)."""

from __future__ import annotations

import json
import subprocess
import zipfile
from pathlib import Path

import pytest
from handoff_support import NOW, Seeded

from handoff.package import select_incidents, write_package
from handoff.timestamp import load_roots
from handoff.verify import verify_package
from store.db import Database
from tocsin.config import Config
from tocsin.sandbox.core import to_toml
from tocsin.sandbox.tls import make_certs


def make(seeded: Seeded, path: Path, config: Config | None = None) -> Path:
    db = Database(seeded.db_url)
    try:
        with db.session() as session:
            ids = select_incidents(session, [seeded.store.tickets["x1"]], None)
        write_package(db, config or seeded.config, ids, path, NOW, {"incidents": ids})
    finally:
        db.dispose()
    return path


def rewrite(source: Path, target: Path, name: str, change) -> None:
    """A copy of the zip with member ``name``'s bytes changed, or left out when ``change``
    gives None (a well-formed zip: the tampering a careful forger would do, CRCs and all)."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            data = old.read(info)
            if info.filename == name:
                data = change(data)
            if data is not None:
                new.writestr(info, data)


def flip(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1 :]


@pytest.fixture(scope="module")
def package(seeded: Seeded, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make(seeded, tmp_path_factory.mktemp("pkg") / "package.zip")


def test_an_untouched_package_verifies(package: Path) -> None:
    report = verify_package(package, None)
    assert report.ok, report.problems
    assert report.files > 10


def test_a_changed_byte_in_any_file_fails_naming_it(package: Path, tmp_path: Path) -> None:
    names = [n for n in zipfile.ZipFile(package).namelist() if n != "manifest.json"]
    kinds = {n.rsplit(".", 1)[-1] for n in names}
    assert {"json", "har", "png", "zip", "eml", "txt", "html"} <= kinds
    for name in names:
        changed = tmp_path / "changed.zip"
        rewrite(package, changed, name, flip)
        problems = verify_package(changed, None).problems
        assert problems, name
        assert all(p.startswith(name + ":") for p in problems), problems


def test_a_flipped_byte_in_the_zip_itself_fails_naming_the_file(
    package: Path, tmp_path: Path
) -> None:
    with zipfile.ZipFile(package) as archive:
        info = archive.getinfo("timeline.html")
    raw = bytearray(package.read_bytes())
    # the member's data starts after its 30-byte local header, name and extra field
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    raw[start + info.compress_size // 2] ^= 0x20
    broken = tmp_path / "broken.zip"
    broken.write_bytes(bytes(raw))
    problems = verify_package(broken, None).problems
    assert problems
    assert problems[0].startswith("timeline.html:")


def test_a_changed_hash_in_the_manifest_fails(package: Path, tmp_path: Path) -> None:
    """Without a timestamp the manifest could be rewritten whole (the token is what pins
    it), but a hash changed in it alone is caught by the file and SHA256SUMS."""
    changed = tmp_path / "changed.zip"

    def rehash(data: bytes) -> bytes:
        manifest = json.loads(data)
        manifest["files"][0]["sha256"] = "0" * 64
        return json.dumps(manifest).encode()

    rewrite(package, changed, "manifest.json", rehash)
    problems = verify_package(changed, None).problems
    first = json.loads(zipfile.ZipFile(package).read("manifest.json"))["files"][0]["path"]
    assert f"{first}: sha256 differs from the manifest (changed)" in problems
    assert "SHA256SUMS: differs from the manifest (changed)" in problems


def test_an_added_or_removed_file_fails(package: Path, tmp_path: Path) -> None:
    added = tmp_path / "added.zip"
    rewrite(package, added, "", flip)
    with zipfile.ZipFile(added, "a") as archive:
        archive.writestr("incidents/extra.txt", b"planted")
    assert verify_package(added, None).problems == [
        "incidents/extra.txt: not in the manifest (added)"
    ]
    removed = tmp_path / "removed.zip"
    rewrite(package, removed, "README.txt", lambda _: None)
    assert verify_package(removed, None).problems == ["README.txt: missing"]


# --------------------------------------------------------------------------- RFC 3161


@pytest.fixture(scope="module")
def stamped(seeded: Seeded, sandbox, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A package timestamped by the sandbox's TSA (openssl ts -reply on loopback)."""
    config = seeded.config.model_copy(
        update={"package": seeded.config.package.model_copy(update=sandbox.package_config())}
    )
    return make(seeded, tmp_path_factory.mktemp("stamped") / "package.zip", config)


def test_the_token_verifies_against_the_sandbox_tsa_ca(stamped: Path, sandbox) -> None:
    names = zipfile.ZipFile(stamped).namelist()
    assert "manifest.json.tsr" in names
    report = verify_package(stamped, load_roots(str(sandbox.certs.ca_path)))
    assert report.ok, report.problems
    assert report.stamp is not None
    assert report.stamp.tsa == "CN=tocsin sandbox TSA,O=tocsin sandbox"
    assert abs((report.stamp.time - NOW).total_seconds()) < 3600


def test_the_token_fails_against_another_ca(stamped: Path, tmp_path: Path) -> None:
    other = make_certs(tmp_path / "other", ["localhost"], ["127.0.0.1"])
    problems = verify_package(stamped, load_roots(str(other.ca_path))).problems
    assert len(problems) == 1
    assert problems[0].startswith("manifest.json.tsr: the timestamp does not verify")
    assert verify_package(stamped, None).problems == [
        "manifest.json.tsr: not checked: give the TSA's CA certificate (--tsa-ca or package.tsa_ca)"
    ]


def test_a_changed_manifest_fails_the_token(stamped: Path, tmp_path: Path, sandbox) -> None:
    changed = tmp_path / "changed.zip"
    rewrite(
        stamped,
        changed,
        "manifest.json",
        lambda d: d.replace(b"sandbox operator", b"sandbox 0perator"),
    )
    problems = verify_package(changed, load_roots(str(sandbox.certs.ca_path))).problems
    assert problems == [
        "manifest.json.tsr: the timestamp does not verify: Mismatch between messages"
    ]
    dropped = tmp_path / "dropped.zip"
    rewrite(stamped, dropped, "manifest.json.tsr", lambda _: None)
    problems = verify_package(dropped, load_roots(str(sandbox.certs.ca_path))).problems
    assert problems == ["manifest.json.tsr: missing (the manifest says it was timestamped)"]


def test_openssl_verifies_the_unzipped_package(stamped: Path, tmp_path: Path, sandbox) -> None:
    """What docs/handoff.md tells an investigator to run, without tocsin."""
    out = tmp_path / "unzipped"
    zipfile.ZipFile(stamped).extractall(out)
    sums = subprocess.run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=out, check=False)
    assert sums.returncode == 0
    done = subprocess.run(
        ["openssl", "ts", "-verify", "-data", "manifest.json", "-in", "manifest.json.tsr",
         "-CAfile", str(sandbox.certs.ca_path)],
        cwd=out, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Verification: OK" in done.stdout


# --------------------------------------------------------------------------- the command


# One engine: the command's store reads (select_incidents, write_package) run on both in
# this module's fixtures and in test_package.py; what is left here is the process (exit
# codes, stdout and stderr lines), the same on either, at 7 `tocsin` start-ups a run.
@pytest.mark.parametrize("module_db_url", ["sqlite"], indirect=True)
def test_the_command_makes_and_verifies(seeded: Seeded, make_cli, tmp_path: Path, sandbox) -> None:
    config = tmp_path / "tocsin.toml"
    config.write_text(
        to_toml(
            {
                "database": {"url": seeded.db_url},
                "evidence": {"dir": str(seeded.folder / "evidence")},
                "package": {**sandbox.package_config(), "operator": "CERT-Test"},
            }
        ),
        encoding="utf-8",
    )
    cli = make_cli(tmp_path, config)
    ticket = seeded.store.tickets["x1"]
    made = cli("package", ticket, "-o", "case.zip")
    assert made.returncode == 0, made.stderr
    assert "wrote case.zip: 1 incident(s)" in made.stdout
    assert "; timestamped" in made.stdout
    checked = cli("package", "--verify", "case.zip")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "case.zip: OK" in checked.stdout
    assert "timestamped" in checked.stdout
    rewrite(tmp_path / "case.zip", tmp_path / "bad.zip", "README.txt", flip)
    bad = cli("package", "--verify", "bad.zip")
    assert bad.returncode == 1
    assert "FAILED README.txt: sha256 differs from the manifest (changed)" in bad.stdout
    missing = cli("package", "TCS-NOPE")
    assert missing.returncode == 2
    assert missing.stderr.strip() == "tocsin: package: no incident or ticket 'TCS-NOPE'"
    assert not list(tmp_path.glob("package-*"))
    nothing = cli("package")
    assert nothing.returncode == 2
    assert (
        nothing.stderr.strip() == "tocsin: package: name incidents or tickets, or --campaign NAME"
    )
    (tmp_path / "notes.zip").write_bytes(b"not a zip")
    garbage = cli("package", "--verify", "notes.zip")
    assert garbage.returncode == 1
    assert "FAILED notes.zip: not a readable zip" in garbage.stdout
