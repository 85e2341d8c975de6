"""A user's tools against root's commands (tests/faults/cases/40-attacks.sh), run as that user.

  attack.py lease SECONDS FILE...        hold a write lease (F_SETLEASE F_WRLCK) on each FILE
  attack.py exchange SECONDS A B         swap A and B with renameat2(RENAME_EXCHANGE), in a loop
  attack.py staging SECONDS BASE DIR TARGET
                                         when root's staging directory appears in BASE, replace
                                         DIR's temporary directory with a symlink to TARGET
  attack.py deep DIR LEVELS              a chain of LEVELS nested directories in DIR
  attack.py feed SECONDS TRASH           keep root's removal of TRASH busy: slot directories, each
                                         filled with empty directories just before root lists it

Every loop ends after SECONDS. Prints what it did on stdout, one line.
"""
import ctypes
import fcntl
import os
import signal
import sys
import time

libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100
RENAME_EXCHANGE = 2


def lease(seconds, files):
    # A lease break signals its holder (SIGIO by default, which would end us): keep the lease.
    signal.signal(signal.SIGIO, signal.SIG_IGN)
    fds = []
    for path in files:
        fd = os.open(path, os.O_RDONLY)
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_WRLCK)
        fds.append(fd)
    print(f"leased {len(fds)}", flush=True)
    time.sleep(seconds)


def exchange(seconds, a, b):
    end = time.monotonic() + seconds
    n = 0
    ea, eb = os.fsencode(a), os.fsencode(b)
    while time.monotonic() < end:
        if libc.renameat2(AT_FDCWD, ea, AT_FDCWD, eb, RENAME_EXCHANGE) == 0:
            n += 1
            if n == 1:
                print("exchanging", flush=True)
    # Leave them as they were.
    if n % 2:
        libc.renameat2(AT_FDCWD, ea, AT_FDCWD, eb, RENAME_EXCHANGE)
    print(f"exchanged {n}")


def staging(seconds, base, dir, target):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if any(n.startswith(".pyxis_cache_staging.") for n in os.listdir(base)):
            for name in os.listdir(dir):
                if name.startswith(".pyxis_cache_tmp."):
                    try:
                        os.rename(f"{dir}/{name}", f"{dir}/stolen.{time.monotonic_ns()}")
                        os.symlink(target, f"{dir}/{name}")
                    except OSError:
                        continue
                    print(f"swapped {name}")
                    return
    print("no staging seen")


def deep(dir, levels):
    os.chdir(dir)
    for _ in range(levels):
        os.mkdir("d")
        os.chdir("d")
    with open("bottom", "w") as f:
        f.write("x")
    print(f"made {levels} levels")


def feed(seconds, top, width=100, fill=10000, ahead=3):
    """Root empties a directory in the order getdents64 gives, slot after slot, and lists a
    slot only when it gets to it: whatever is in a slot by then is part of the same pass. So
    keep the next few slots, in that order, filled with `fill` empty directories each (never
    touching one root may have listed), and make the last slot of each level a new level of
    `width` slots: the pass never ends while this runs."""
    end = time.monotonic() + seconds
    made = 0

    def fill_slot(path):
        nonlocal made
        for j in range(fill):
            os.mkdir(f"{path}/{j}")
        made += fill

    def new_level(path):
        for i in range(width):
            os.mkdir(f"{path}/s{i:03d}")
        order = os.listdir(path)  # the order root's getdents64 gives too
        for name in order[:ahead]:
            fill_slot(f"{path}/{name}")
        return order, set(range(ahead))

    def stop(*_):
        print(f"made {made} directories in {levels} levels", flush=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    levels = 1
    level = top
    order, filled = new_level(level)
    following = None  # the level made in this one's last slot: (path, order, filled)
    print("feeding", flush=True)
    while time.monotonic() < end:
        pos = next((i for i, name in enumerate(order) if os.path.lexists(f"{level}/{name}")), None)
        if pos is None:
            break  # root got through a whole level: it was faster
        if pos == len(order) - 1 and following is not None:
            level, order, filled = following  # root is in the last slot: its slots are next
            following = None
            levels += 1
            continue
        for i in range(pos + 1, min(pos + 1 + ahead, len(order))):
            if i in filled:
                continue
            filled.add(i)
            path = f"{level}/{order[i]}"
            if i == len(order) - 1:
                following = (path, *new_level(path))
            else:
                fill_slot(path)
        time.sleep(0.002)
    stop()


cmd, args = sys.argv[1], sys.argv[2:]
if cmd == "lease":
    lease(float(args[0]), args[1:])
elif cmd == "exchange":
    exchange(float(args[0]), args[1], args[2])
elif cmd == "staging":
    staging(float(args[0]), args[1], args[2], args[3])
elif cmd == "feed":
    feed(float(args[0]), args[1])
elif cmd == "deep":
    deep(args[0], int(args[1]))
else:
    sys.exit(f"attack.py: unknown command {cmd}")
