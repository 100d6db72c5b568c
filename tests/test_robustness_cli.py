"""`python -m core robustness`: a table then the result's folder last; one-line errors."""

from __future__ import annotations

from pathlib import Path

from core.app.cli import main


def test_table_then_path_and_one_line_errors(trained_ckpts, tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(tmp_path))
    sup = str(trained_ckpts["sup"])
    assert main(["robustness", sup, "--corruptions", "rotate", "--severities", "1", "3", "--samples", "32"]) == 0
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    assert Path(lines[-1]).is_dir() and "rotate" in out and "relative drop" in out
    assert "estimate:" in err
    for argv, words in (
        (["robustness", str(trained_ckpts["mae"])], "without a classifier"),
        (["robustness", sup, "--corruptions", "fog"], "unknown corruption 'fog'"),
    ):
        assert main(argv) == 1
        out, err = capsys.readouterr()
        assert err.startswith("error: ") and words in err and len(err.strip().splitlines()) == 1 and not out
