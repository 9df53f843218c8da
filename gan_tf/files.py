"""Files written whole or not at all: what a crash or a full disk leaves is the previous file,
never a partial one (checkpoints, classifiers, logs, pictures)."""

import os
import tempfile

# Names of the temporary files `write_atomically` writes beside their target.
TEMPORARY_PREFIX = ".tmp-"


def remove_temporary_files(directory):
    """Removes the temporary files `write_atomically` left in `directory` when its process was
    killed mid-write (call it only while holding the directory's run, e.g. under its lock)."""
    if not os.path.isdir(directory):
        return
    for name in os.listdir(directory):
        if name.startswith(TEMPORARY_PREFIX):
            path = os.path.join(directory, name)
            if os.path.isfile(path):
                os.remove(path)


def write_atomically(path, write):
    """Calls `write(temporary)` on a temporary file beside `path`, then renames it to `path`.

    A crash mid-write never leaves a partial file under `path`. The temporary file keeps
    `path`'s extension, for writers that pick the format from it (`model.save`, `savefig`).
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    handle, temporary = tempfile.mkstemp(suffix=os.path.splitext(path)[1], dir=directory, prefix=TEMPORARY_PREFIX)
    os.close(handle)
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
