"""The GUI's view of a worker log: finished bars as one line, no library deprecation notes (issue #13.9)."""

from __future__ import annotations

from studio.core.log_filter import LogFilter

EXPORT_LOG = """\
WARNING bitsandbytes.backends.cpu.ops: Failed to load CPU gemm_4bit_forward from kernels-community: No module named 'kernels'.
WARNING py.warnings: /venv/lib/python3.11/site-packages/torch/jit/_script.py:365: DeprecationWarning: `torch.jit.script_method` is deprecated.
  warnings.warn(

Loading weights:   0%|          | 0/20 [00:00<?, ?it/s]
Loading weights:  45%|####5     | 9/20 [00:00<00:00, 88.1it/s]\rLoading weights: 100%|##########| 20/20 [00:00<00:00, 11868.43it/s]
merging in float32 on the CPU
/venv/lib/python3.11/site-packages/transformers/modeling_utils.py:3312: FutureWarning: `is_gradient_checkpointing` is deprecated.
  warnings.warn(
Traceback (most recent call last):
  File "export.py", line 3, in <module>
RuntimeError: disk full
"""


def test_bars_settle_and_deprecation_notes_go_but_errors_stay():
    shown = LogFilter().lines(EXPORT_LOG.splitlines())
    assert shown == ["Loading weights: 20/20", "merging in float32 on the CPU", "Traceback (most recent call last):",
                     '  File "export.py", line 3, in <module>', "RuntimeError: disk full"]
