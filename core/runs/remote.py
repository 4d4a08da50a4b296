"""What runs on a Ray cluster: one training run per task, and the board through which a run's progress
and a cancel travel between the node and the studio's dispatcher (core.runs.dispatch).

Only the dispatcher and ClusterQueue.info() import this module, so Ray is loaded only when a cluster is used.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import socket
import threading
from dataclasses import replace
from pathlib import Path

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from core import paths
from core.data.sampling import Split
from core.errors import RunError
from core.fileio import atomic_write_bytes, read_json
from core.runs import worker
from core.runs.arrival import KEPT_HERE, RESULT_FILES
from core.runs.store import RunStore
from core.training.config import TrainConfig

RELAY_S = 0.5  # how often a task posts its status and looks for a cancel
CONNECT_TIMEOUT_S = 3.0
MAX_RETRIES = 2  # a task whose node dies is tried again elsewhere, at most 3 attempts in all
NAMESPACE = "transfer-learning-studio"
DATA_ENV = "STUDIO_RAY_DATA"  # "object-store" (default) or "shared": the nodes see the studio's dataset paths


_JOINED: list[str] = []  # the address this process joined


def connect(address: str) -> None:
    """Join the cluster as a driver (once per process and address); a RunError at once when nothing answers."""
    host, _, port = address.rpartition(":")
    if host and port.isdigit() and "://" not in address:  # ray.init would retry for a minute before failing
        try:
            socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
        except OSError as exc:
            raise RunError(f"No Ray cluster answers at {address} ({exc.strerror or exc}). Start one with "
                           f"`ray start --head --port {port}`, or unset STUDIO_RAY_ADDRESS to train here.") from exc
    if ray.is_initialized():
        if _JOINED[-1:] == [address]:
            return
        ray.shutdown()
    try:
        ray.init(address=address, namespace=NAMESPACE, logging_level=logging.ERROR, log_to_driver=False)
    except ray.exceptions.AuthenticationError as exc:
        raise RunError(f"The Ray cluster at {address} refused this machine: it asks for a token. Set "
                       f"RAY_AUTH_MODE=token and RAY_AUTH_TOKEN to the cluster's token (`ray get-auth-token` on the "
                       f"head prints it) before starting the studio.") from exc
    except (ConnectionError, RuntimeError) as exc:
        raise RunError(f"Could not join the Ray cluster at {address}: {exc}. Check the address `ray start --head` "
                       f"printed, and that this machine runs the same Ray version ({ray.__version__}).") from exc
    _JOINED.append(address)


@ray.remote(num_cpus=0)
class Board:
    """Lives on the dispatcher's node: tasks post their newest status and each attempt's node; the dispatcher
    takes the posts and leaves cancels."""

    def __init__(self):
        self.posts: dict[str, dict] = {}
        self.starts: dict[str, list[str]] = {}
        self.cancels: set[str] = set()

    def start(self, run_id: str, node: str) -> None:
        self.starts.setdefault(run_id, []).append(node)

    def post(self, run_id: str, status: dict) -> None:
        self.posts[run_id] = status

    def take(self) -> tuple[dict, dict]:
        posts, self.posts = self.posts, {}
        return posts, {k: list(v) for k, v in self.starts.items()}

    def cancel(self, run_id: str) -> None:
        self.cancels.add(run_id)

    def cancelled(self, run_id: str) -> bool:
        return run_id in self.cancels


def new_board():
    here = ray.get_runtime_context().get_node_id()
    return Board.options(  # type: ignore[attr-defined]  # @ray.remote made Board an actor class; ray's types miss it
        scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False)).remote()


@ray.remote
def train_on_node(run_id: str, config: dict, split: dict, images: list | None, board) -> dict:
    """Train the run in a scratch runs folder of this node, exactly as a local worker does, and return its
    files. images: [a reference to the dataset's files by SHA-256], or None when the nodes share storage."""
    node = ray.get_runtime_context().get_node_id()
    board.start.remote(run_id, node)
    scratch = paths.studio_home() / "cluster-runs" / f"{run_id}-{secrets.token_hex(3)}"
    store = RunStore(root=scratch)  # this task's own runs folder
    try:
        folder = store.create(TrainConfig.from_json(config), run_id=run_id).dir
        stop = threading.Event()
        relay = threading.Thread(target=_relay, args=(folder, run_id, board, stop), daemon=True)
        relay.start()
        try:
            worker.execute(store, run_id, data=lambda: _node_split(split, images))
        finally:
            stop.set()
            relay.join()
        files = {name: (folder / name).read_bytes() for name in sorted(RESULT_FILES | KEPT_HERE)
                 if (folder / name).is_file()}
        return {"node": node, "status": read_json(folder / "status.json"), "files": files}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _relay(folder: Path, run_id: str, board, stop: threading.Event) -> None:
    """Post the run's status whenever it changes; turn a cancel left on the board into the cancel file the
    trainer checks between batches."""
    last = None
    while True:
        stopping = stop.wait(RELAY_S)
        try:
            status = read_json(folder / "status.json")
        except (OSError, ValueError):
            status = last
        if status != last:
            board.post.remote(run_id, status)
            last = status
        if stopping:
            return
        if ray.get(board.cancelled.remote(run_id)):
            (folder / "cancel").write_text("requested\n")


def _node_split(split: dict, images: list | None) -> Split:
    """The studio's split with each image at a path on this node: the dataset's files are fetched from the
    object store the first time a run on this node needs them, and kept by SHA-256."""
    drawn = Split.from_json(split, split["root"])
    if images is None:
        return drawn
    everything = drawn.train + drawn.val + drawn.test
    fetch_missing([(i.sha256, suffix_of(i.path)) for i in everything], images)

    def moved(items):
        return tuple(replace(i, path=str(kept_image(i.sha256, suffix_of(i.path)))) for i in items)

    return Split(train=moved(drawn.train), val=moved(drawn.val), test=moved(drawn.test), classes=drawn.classes)


def fetch_missing(wanted: list[tuple[str, str]], images: list) -> None:
    """Make sure this node keeps each (SHA-256, suffix) image: the object `images` wraps is fetched only when
    one is missing, so a node receives a dataset's files once."""
    if all(kept_image(digest, suffix).is_file() for digest, suffix in wanted):
        return
    for digest, (suffix, data) in ray.get(images[0]).items():
        if not kept_image(digest, suffix).is_file():
            atomic_write_bytes(kept_image(digest, suffix), data)


def ships_images() -> bool:
    """Whether images travel through the object store (the default), rather than the nodes reading the
    studio's own paths (STUDIO_RAY_DATA=shared)."""
    return os.environ.get(DATA_ENV, "object-store") != "shared"


def kept_image(digest: str, suffix: str) -> Path:
    """Where this node keeps an image of the studio's dataset: named by its SHA-256."""
    return paths.cache_dir() / "cluster-images" / f"{digest}{suffix}"


def suffix_of(path: str) -> str:
    return Path(path).suffix.lower()


def put_images(items) -> list:
    """The dataset's files in the object store, keyed by SHA-256 (wrapped in a list so a task fetches them
    only when its node lacks them)."""
    return [ray.put({i.sha256: (suffix_of(i.path), Path(i.path).read_bytes()) for i in items})]


def cluster_resources() -> tuple[int, float, float]:
    """(alive nodes, CPUs, GPUs) of the connected cluster."""
    nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
    total = ray.cluster_resources()
    return nodes, float(total.get("CPU", 0)), float(total.get("GPU", 0))
