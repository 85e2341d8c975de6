"""A user's tools against root's commands (tests/faults/cases/40-attacks.sh), run as that user.

  attack.py lease SECONDS FILE...        hold a write lease (F_SETLEASE F_WRLCK) on each FILE
  attack.py exchange SECONDS A B         swap A and B with renameat2(RENAME_EXCHANGE), in a loop
  attack.py staging SECONDS BASE DIR TARGET
                                         when root's staging directory appears in BASE, replace
                                         DIR's temporary directory with a symlink to TARGET
  attack.py deep DIR LEVELS              a chain of LEVELS nested directories in DIR

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


cmd, args = sys.argv[1], sys.argv[2:]
if cmd == "lease":
    lease(float(args[0]), args[1:])
elif cmd == "exchange":
    exchange(float(args[0]), args[1], args[2])
elif cmd == "staging":
    staging(float(args[0]), args[1], args[2], args[3])
elif cmd == "deep":
    deep(args[0], int(args[1]))
else:
    sys.exit(f"attack.py: unknown command {cmd}")
