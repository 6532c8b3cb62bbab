"""Hugging Face hub datasets: open a split (streaming for the preview) and explain hub failures.

The hub is often unreachable (offline machines, firewalls) or a dataset is gated; every such
failure becomes a DataError that says what happened and what to do, never a traceback.
"""

from __future__ import annotations

import os
from typing import Any, Iterator

from studio.core.data.errors import DataError


def hub_error_message(dataset_id: str, err: BaseException) -> str:
    """A plain sentence for a failure of datasets.load_dataset on a hub id."""
    name = type(err).__name__
    text = str(err)
    low = text.lower()
    if (name in ("GatedRepoError",) or "gated" in low or "401" in low or "403" in low
            or "authentication" in low or "token" in low and "invalid" in low):
        return (f"{dataset_id}: this dataset needs a Hugging Face token (it is gated or private). Accept its terms "
                "on huggingface.co, then run `hf auth login` or set HF_TOKEN, and try again.")
    if "config" in low and ("missing" in low or "available" in low or "pick one" in low):
        return f"{dataset_id}: choose a subset: {text}"
    if "split" in low and ("unknown" in low or "should be one of" in low or "not found" in low):
        return f"{dataset_id}: no such split. {text}"
    if name in ("DatasetNotFoundError", "RepositoryNotFoundError", "FileNotFoundError") or "doesn't exist" in low \
            or "not found" in low or "404" in low:
        return (f"{dataset_id}: no such dataset on the Hugging Face hub. Check the spelling (owner/name), "
                "or that you have access to it.")
    if os.environ.get("HF_HUB_OFFLINE") or os.environ.get("HF_DATASETS_OFFLINE") or "offline" in low:
        return (f"{dataset_id}: the Hugging Face hub can't be reached (offline mode is on). Connect to the "
                "internet, or download the dataset elsewhere and pick its files.")
    if ("connect" in low or "resolve" in low or "timed out" in low or "timeout" in low or "network" in low
            or name in ("ConnectionError", "ConnectTimeout", "ReadTimeout", "LocalEntryNotFoundError",
                        "OfflineModeIsEnabled")):
        return (f"{dataset_id}: the Hugging Face hub can't be reached ({name}). Check the internet connection, "
                "or download the dataset elsewhere and pick its files.")
    return f"{dataset_id}: could not open the hub dataset ({name}: {text})."


def open_hub_dataset(source: Any, streaming: bool = False, cache_dir: str | None = None):
    """datasets.load_dataset for a hub id, with hub failures turned into DataError."""
    import datasets

    try:
        return datasets.load_dataset(source.path, source.subset or None, split=source.split or "train",
                                     streaming=streaming, cache_dir=cache_dir)
    except DataError:
        raise
    except Exception as e:  # the hub raises many types; all of them are explained the same way
        raise DataError(hub_error_message(source.path, e)) from e


def iter_hub_rows(source: Any) -> Iterator[dict[str, Any]]:
    ds = open_hub_dataset(source, streaming=True)
    try:
        yield from ds
    except Exception as e:
        raise DataError(hub_error_message(source.path, e)) from e
