"""Configuration and store mistakes are one line on stderr and exit code 2 (issue 12, point 4).

Each case runs the real ``tocsin`` command in a subprocess, as an operator would; the
cases start together. Their in-process twins (every boolean key, every network form)
are in tests/core/test_config.py and tests/store/.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_support import start_tocsin

from store import migrate
from store.db import Database
from tocsin.errors import StoreError


def _config(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "tocsin.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[int, str, str, Path]]:
    """Every case's (exit code, stdout, stderr, folder), all run at once."""
    root = tmp_path_factory.mktemp("errors")
    cases: dict[str, tuple[Path, Path, tuple[str, ...], dict[str, str]]] = {}

    def case(name: str, toml: str, *args: str, env: dict[str, str] | None = None) -> None:
        folder = root / name
        cases[name] = (folder, _config(folder, toml), args or ("status",), env or {})

    def db(name: str) -> str:
        return f'[database]\nurl = "sqlite:///{root / name / "store" / "tocsin.db"}"\n'

    case("folder", "")
    cases["folder"] = (root / "folder", root / "folder", ("status",), {})  # --config DIR
    case("text-store", db("text-store"))
    (root / "text-store" / "store").mkdir()
    (root / "text-store" / "store" / "tocsin.db").write_text("not a database\n" * 20)
    case("mistyped", db("mistyped").replace("/store/", "/stroe/x/"))
    # Bad booleans, CIDRs and name servers are ConfigErrors like the "folder" case: they are
    # tested in-process, key by key, in tests/core/test_config.py.
    case("unknown-env", db("unknown-env"), env={"TOCSIN_DATABSE_URL": "sqlite:///elsewhere.db"})
    good = Database(f"sqlite:///{root / 'unknown-env' / 'store' / 'tocsin.db'}")
    migrate.upgrade(good)
    good.dispose()

    started = {
        name: start_tocsin(folder, config, *args, env=env)
        for name, (folder, config, args, env) in cases.items()
    }
    done = {}
    for name, proc in started.items():
        stdout, stderr = proc.communicate(timeout=120)
        done[name] = (proc.returncode, stdout, stderr, cases[name][0])
    return done


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("folder", "config error: --config: a folder, not a file"),
        ("text-store", "file is not a database"),
        ("mistyped", "no store at"),
    ],
)
def test_one_line_and_exit_code_2(
    runs: dict[str, tuple[int, str, str, Path]], name: str, expected: str
) -> None:
    code, _stdout, stderr, _folder = runs[name]
    assert code == 2, stderr
    [line] = stderr.strip().splitlines()
    assert line.startswith("tocsin: ") and expected in line, line


def test_status_on_a_mistyped_path_creates_nothing(
    runs: dict[str, tuple[int, str, str, Path]],
) -> None:
    _code, _stdout, stderr, folder = runs["mistyped"]
    assert "run `tocsin init` first" in stderr
    assert not (folder / "stroe").exists()  # neither the folders nor an empty store


def test_a_text_file_store_is_left_as_it_was(runs: dict[str, tuple[int, str, str, Path]]) -> None:
    *_, folder = runs["text-store"]
    store = folder / "store" / "tocsin.db"
    assert store.read_text() == "not a database\n" * 20
    assert sorted(p.name for p in store.parent.iterdir()) == ["tocsin.db"]


def test_an_unknown_tocsin_variable_is_warned_and_the_command_runs(
    runs: dict[str, tuple[int, str, str, Path]],
) -> None:
    code, stdout, stderr, folder = runs["unknown-env"]
    assert code == 0, stderr
    [line] = stderr.strip().splitlines()
    assert "unknown environment variable TOCSIN_DATABSE_URL" in line
    assert "did you mean TOCSIN_DATABASE_URL?" in line
    assert "URLs" in stdout and not (folder / "elsewhere.db").exists()


# -- the same store checks in-process (no subprocess needed to see the error's class)


def test_a_text_file_is_not_opened_as_a_store(tmp_path: Path) -> None:
    """ "file is not a database" is a one-line StoreError (exit 2), also for ``init``."""
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database\n")
    with pytest.raises(StoreError, match="file is not a database") as caught:
        migrate.upgrade(Database(f"sqlite:///{path}"))
    assert caught.value.exit_code == 2
    assert path.read_text() == "these are my notes, not a database\n"


def test_an_existing_store_is_required_when_asked(tmp_path: Path) -> None:
    """``create=False`` (the read-only commands): no folders, no empty store."""
    missing = tmp_path / "typo" / "deeper" / "tocsin.db"
    with pytest.raises(StoreError, match="no store at"):
        Database(f"sqlite:///{missing}", create=False)
    assert not (tmp_path / "typo").exists()
    Database(f"sqlite:///{missing}").dispose()  # the default, as `init` and the stages use
    assert (tmp_path / "typo" / "deeper").is_dir()
