"""PageSpec: what a page says about itself so the window can list, build and wire it without knowing it.

Each page package declares ``PAGE = PageSpec(...)`` in its ``__init__.py`` (Spyder's plugins declare
their name, icon and dependencies the same way). The package's ``__init__`` imports nothing heavy:
the window reads every spec to draw the sidebar before the first paint and imports a page's module
only when the page is built. No Qt here.

How a page takes part, besides its spec (the window connects whichever of these a page has):

- ``sig_status_changed(str)``: a line for the status bar ("Training “demo”").
- ``sig_runs_changed()``: runs were created or have finished; pages with ``lists_runs`` refresh.
- ``sig_work_finished()``: its live work ended (a close that waited for it can finish).
- ``sig_model_facts_changed(facts)`` with a ``facts`` property: the chosen model's facts, handed to
  every page with ``set_model_facts(facts)``.
- ``sig_run_action_requested(action, run[, options])``: another page should act on a run ("export",
  "resume", "chat"); the page whose spec lists the action in ``run_actions`` gets
  ``run_action(action, run, **options) -> str`` (why it cannot, or "" and the window shows it; options
  such as ``source``, the trained weights of a checkpoint, are the asker's); a refusal goes back to the
  asker's ``show_action_refused(action, run, reason)``.
- ``busy_work() -> Work``: live work when the window closes; then ``stop_work()`` (stop gracefully,
  the window waits for ``sig_work_finished``), ``detach_work()`` (leave it running) or ``kill_work()``;
  a ``SESSION`` (a chat worker) gets ``stop_work()`` as the window closes, nothing asked or awaited.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Work(str, Enum):
    """What a page has running when the window closes."""

    NONE = ""
    TRAINING = "training"  # a run that can train on without the window: keep it, stop it, or don't close
    JOB = "job"  # a job that ends with the studio (an export): cancel it and quit?
    SESSION = "session"  # something loaded only for this window (a chat model): ended without asking


@dataclass(frozen=True)
class PageSpec:
    key: str  # how the window, the tests and the shortcuts name the page
    title: str  # the sidebar's and the header's text
    subtitle: str  # the header's second line
    icon: str  # a name in resources/icons
    module: str  # the module of the page class, imported when the page is first built
    cls: str  # the page class: ``cls(config_model, **{need: ... for need in needs})``
    # constructor keywords the window supplies: store_root, stop_timeout_s, gpu_monitor, run_actions (every
    # action some page performs, so a page offers only what will be done)
    needs: tuple[str, ...] = ()
    plots: bool = False  # draws with pyqtgraph: built once the window has imported it in the background
    lists_runs: bool = False  # refreshed (``refresh()``) when runs are created or finish
    run_actions: tuple[str, ...] = ()  # run actions this page performs for others (``run_action``)
