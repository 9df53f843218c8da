"""One training process per workdir: a lock file naming its owner, with stale locks detected.

Two runs writing one workdir would interleave checkpoints, logs and exports, and each would
resume from the other's files. `train()` holds `WorkdirLock(workdir)` for the whole run: the
file `<workdir>/.gan_tf.lock` is created atomically (`O_CREAT | O_EXCL`) and holds the owner's
PID, host and start time; it is removed when the run ends, however it ends. A lock left by a
process that was killed (same host, PID no longer running) is stale and is taken over, with a
note; a lock held by a live process, or by another host (whose processes cannot be checked from
here), refuses the run with a message saying whose it is and how to clear it.
"""

import json
import os
import socket
import sys
import time

LOCK_FILE = ".gan_tf.lock"


class WorkdirInUseError(ValueError):
    """Another live process holds the workdir's lock."""


class WorkdirUnwritableError(ValueError):
    """The workdir cannot be created or written (permissions, a read-only or full disk)."""


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


class WorkdirLock:
    """Context manager holding `<workdir>/.gan_tf.lock` (see the module docstring).

    Example:
        >>> with WorkdirLock("runs/dcgan"):
        ...     ...  # train, checkpoint, export
    """

    def __init__(self, workdir):
        self.path = os.path.join(workdir, LOCK_FILE)
        self.owner = {"pid": os.getpid(), "host": socket.gethostname()}

    def _read(self):
        try:
            with open(self.path) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None  # vanished, or half-written by a process killed while writing it

    def acquire(self):
        """Takes the lock, or raises `WorkdirInUseError` / `WorkdirUnwritableError`."""
        try:
            return self._acquire()
        except OSError as error:  # not FileExistsError: that one is handled inside
            raise WorkdirUnwritableError(
                f"Cannot write to the workdir {os.path.dirname(self.path) or '.'}: {error.strerror or error}."
            ) from None

    def _acquire(self):
        # Folders made only to hold the lock are removed again if the run leaves them empty.
        self._created = []
        directory = os.path.abspath(os.path.dirname(self.path) or ".")
        while not os.path.exists(directory):
            self._created.append(directory)
            directory = os.path.dirname(directory)
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        for _ in range(3):
            try:
                handle = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._read()
                if holder is None:  # just created and not yet written, or left half-written
                    time.sleep(0.5)
                    holder = self._read()
                    if holder is None and time.time() - os.path.getmtime(self.path) < 5:
                        raise WorkdirInUseError(f"{self.path} is being created by another process.") from None
                if holder is not None and (holder.get("host") != self.owner["host"] or _alive(int(holder.get("pid", -1)))):
                    where = "this machine" if holder.get("host") == self.owner["host"] else f"host {holder.get('host')}"
                    raise WorkdirInUseError(
                        f"{os.path.dirname(self.path)} is in use by process {holder.get('pid')} on {where} "
                        f"(since {holder.get('started', '?')}). Wait for it, or choose another workdir; if that "
                        f"process is gone, delete {self.path}."
                    ) from None
                if holder is not None:
                    print(f"Note: taking over the stale lock {self.path} of process {holder.get('pid')}, which "
                          "is no longer running.", file=sys.stderr)
                try:
                    os.remove(self.path)
                except FileNotFoundError:
                    pass
                continue
            with os.fdopen(handle, "w") as f:
                json.dump({**self.owner, "started": time.strftime("%Y-%m-%d %H:%M:%S")}, f)
            return self
        raise WorkdirInUseError(f"Could not take the lock {self.path}: other processes keep creating it.")

    def release(self):
        holder = self._read()
        if holder is not None and holder.get("pid") == self.owner["pid"] and holder.get("host") == self.owner["host"]:
            os.remove(self.path)
        for directory in getattr(self, "_created", []):  # innermost first
            try:
                os.rmdir(directory)
            except OSError:
                break  # not empty: the run wrote something there

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc_info):
        self.release()
        return False
