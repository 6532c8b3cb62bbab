"""Saved and exported weights get the permissions the umask gives, not safetensors' private 0600."""

from __future__ import annotations

import os
import shutil
import stat

import pytest

from studio.worker.saving import save_atomically


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask():
    """Set a umask for one test and restore the old one afterwards."""
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


def _write_like_export(source_dir):
    """What export does: copy the trained files (copy2 keeps their 0600) and write a model card."""
    def write(folder):
        for p in source_dir.iterdir():
            shutil.copy2(p, folder / p.name)
        (folder / "sub").mkdir()
        (folder / "sub" / "README.md").write_text("card")
    return write


def test_safetensors_and_copied_files_become_0644(tmp_path, umask):
    import torch
    from safetensors.torch import save_file

    umask(0o022)
    trained = tmp_path / "adapter"
    trained.mkdir()
    save_file({"w": torch.zeros(2)}, str(trained / "adapter_model.safetensors"))
    (trained / "adapter_config.json").write_text("{}")
    os.chmod(trained / "adapter_config.json", 0o600)

    out = save_atomically(tmp_path / "export", _write_like_export(trained))

    assert _mode(out / "adapter_model.safetensors") == 0o644
    assert _mode(out / "adapter_config.json") == 0o644
    assert _mode(out / "sub" / "README.md") == 0o644
    assert _mode(out) == 0o755 and _mode(out / "sub") == 0o755


def test_a_private_umask_is_honoured(tmp_path, umask):
    umask(0o077)
    out = save_atomically(tmp_path / "export", lambda f: (f / "adapter_model.safetensors").write_bytes(b"x"))
    assert _mode(out / "adapter_model.safetensors") == 0o600
    assert _mode(out) == 0o700


def test_executable_bit_is_kept_for_executables(tmp_path, umask):
    umask(0o022)

    def write(folder):
        (folder / "run.sh").write_text("#!/bin/sh\n")
        os.chmod(folder / "run.sh", 0o700)

    out = save_atomically(tmp_path / "export", write)
    assert _mode(out / "run.sh") == 0o755
