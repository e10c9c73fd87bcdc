"""`breakwater admin create`: a clear line instead of a traceback when it cannot work."""

from __future__ import annotations

import io

from breakwater.cli import main


def test_without_a_local_stack_it_says_how_to_make_an_admin_anywhere(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("a long passphrase\n"))
    code = main(["admin", "create", "ops@example.com", "--password-stdin",
                 "--var-dir", str(tmp_path / "var")])
    error = capsys.readouterr().err
    assert code == 2
    assert "breakwater up" in error and "flask --app services.auth admin create" in error


def test_an_empty_password_is_refused_before_anything_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("\n"))
    code = main(["admin", "create", "ops@example.com", "--password-stdin",
                 "--var-dir", str(tmp_path / "var")])
    assert code == 2 and "no password given" in capsys.readouterr().err
