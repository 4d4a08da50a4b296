"""The parts that differ between operating systems go through filelock and psutil, so the core imports and the
command line runs where there is no fcntl (Windows), and memory and process checks need no /proc."""

import os
import subprocess
import sys
import time

import psutil

from tests.helpers import PROJECT_DIR

WITHOUT_FCNTL = ("import runpy, sys\n"
                 "sys.modules['fcntl'] = None  # `import fcntl` now raises ImportError, as on Windows\n"
                 "import core, core.fileio, core.runs.jobs, core.runs.store\n"
                 "sys.argv = ['core', 'models']\n"
                 "runpy.run_module('core', run_name='__main__')\n")


def test_the_core_and_its_command_line_work_without_fcntl(tmp_path):
    env = {**os.environ, "STUDIO_HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", WITHOUT_FCNTL], cwd=PROJECT_DIR, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "efficientnet_lite0" in done.stdout


def test_the_queue_lock_is_exclusive_and_can_be_tried_without_waiting(tmp_path):
    from core.fileio import file_lock

    path = tmp_path / "locks" / ".queue.lock"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom core.fileio import file_lock\n"
                               f"with file_lock({str(path)!r}):\n    print('held', flush=True)\n    time.sleep(30)"],
                              cwd=PROJECT_DIR, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with file_lock(path, wait=False) as held:
            assert held is False
    finally:
        holder.kill()
        holder.wait()
    with file_lock(path, wait=False) as held:
        assert held is True


def test_process_liveness_and_peak_memory_come_from_psutil():
    from core.runs.store import pid_alive
    from core.runs.worker import peak_rss_mb

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 30
    while psutil.Process(child.pid).status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pid_alive(os.getpid()) and not pid_alive(None)
    assert not pid_alive(child.pid)  # exited, not yet reaped: a zombie counts as dead
    child.wait()
    assert not pid_alive(child.pid)  # reaped: gone
    ballast = bytearray(300 * 2**20)  # touched, so it is resident
    ballast[::4096] = b"x" * len(ballast[::4096])
    assert peak_rss_mb() >= 300
