"""`make arm`: aarch64 (ARM) user-mode emulation for tests/test_arm.py and benchmarks/arm.py.

Puts everything under the repository's ignored `.cache/arm/`; installs nothing system-wide:

- qemu/     Debian trixie's `qemu-user` (QEMU 10, static): only `usr/bin/qemu-aarch64` is taken
            from the .deb. Not bookworm's 7.2: its SVE emulation computes XNNPACK's SVE kernels
            wrongly (BUILD_NOTES.md, "ARM emulation").
- sysroot/  Debian bookworm's arm64 Python 3.11 (python3.11-minimal, libpython3.11-stdlib and
            the libraries they depend on, resolved from the Packages index), for `qemu -L`.
- site/     the aarch64 wheels of ai-edge-litert and numpy, pinned to the versions of this
            interpreter's environment (`pip install --target … --platform …_aarch64`).
- manifest.json  what was fetched (versions, SHA256) and the smoke check's answer; written
            last: the tests take the set-up as present only when it exists.

Every .deb is checked against the SHA256 of its suite's Packages index, the index against the
suite's InRelease file, and InRelease's signature with gpgv and Debian's archive keyring where
the host has them (Debian hosts do). Downloads are bounded (size announced by the index, time
outs). Each folder is built beside its final place and renamed into it; a run finding a
complete manifest for the same pins does nothing. `rm -rf .cache/arm` to start again.

    .venv/bin/python tests/arm/setup_arm.py          (what `make arm` runs)

Standard library only. Fails with one line (`make arm: …`) where the emulator cannot be had.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import io
import json
import lzma
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE = os.path.join(ROOT, ".cache", "arm")
MIRROR = "https://deb.debian.org/debian"
QEMU_SUITE, QEMU_PACKAGE, QEMU_MAJOR = "trixie", "qemu-user", "10"
SYSROOT_SUITE = "bookworm"  # Python 3.11, the cp311 wheels'; glibc 2.36
SYSROOT_ROOTS = ["python3.11-minimal", "libpython3.11-stdlib", "libstdc++6"]
# Packaging tools some libraries depend on (readline-common -> dpkg): not needed to run Python.
SYSROOT_SKIP = {"dpkg", "install-info", "tar", "debconf", "debconf-2.0", "perl-base"}
# Not needed inside the sysroot: documentation, manuals, translations.
SKIP_PREFIXES = ("usr/share/doc/", "usr/share/man/", "usr/share/info/", "usr/share/locale/",
                 "usr/share/lintian/")
PYTHON = "usr/bin/python3.11"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
INDEX_LIMIT = 64 << 20   # bytes: a compressed Packages index (about 10 MB)
DEB_LIMIT = 256 << 20    # bytes: one .deb (qemu-user is about 70 MB)
TIMEOUT = 120            # seconds without progress on one connection
SCHEMA = 1               # bump when the layout changes: older set-ups are rebuilt


class SetupError(Exception):
    """Why the emulator cannot be had: one line for the user."""


def say(message: str) -> None:
    print(f"make arm: {message}", flush=True)


# ------------------------------------------------------------------------------ downloads

def download(url: str, limit: int, size: int | None = None) -> bytes:
    """The body of `url`, at most `limit` bytes (exactly `size` when given)."""
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            declared = response.headers.get("Content-Length")
            if declared and int(declared) > limit:
                raise SetupError(f"{url}: {declared} bytes, more than the {limit} allowed")
            body = response.read(limit + 1)
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise SetupError(f"cannot fetch {url} ({reason}): is {MIRROR} reachable?") from None
    if len(body) > limit:
        raise SetupError(f"{url}: more than the {limit} bytes allowed")
    if size is not None and len(body) != size:
        raise SetupError(f"{url}: {len(body)} bytes, the index says {size}")
    return body


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def verified_release(suite: str, downloads: str) -> tuple[str, str]:
    """The suite's InRelease text (its signature checked where gpgv and the keyring exist) and
    how it was checked."""
    raw = download(f"{MIRROR}/dists/{suite}/InRelease", 1 << 20)
    if shutil.which("gpgv") and os.path.exists(KEYRING):
        path = os.path.join(downloads, f"{suite}_InRelease")
        with open(path, "wb") as f:
            f.write(raw)
        done = subprocess.run(["gpgv", "--keyring", KEYRING, "--output", "-", path],
                              capture_output=True, timeout=60)
        if done.returncode != 0:
            raise SetupError(f"{suite}/InRelease: bad signature: "
                             + done.stderr.decode(errors="replace").strip().splitlines()[-1])
        return done.stdout.decode(), f"InRelease signature checked by gpgv ({KEYRING})"
    return raw.decode(), "InRelease signature not checked (no gpgv or Debian keyring here); HTTPS"


def packages_index(suite: str, arch: str, downloads: str) -> tuple[dict[str, dict[str, str]], str]:
    """{package: fields} of `suite`'s main/binary-`arch` index, its hash checked against
    InRelease."""
    release, how = verified_release(suite, downloads)
    name = f"main/binary-{arch}/Packages.xz"
    in_sha256, expected = False, None
    for line in release.splitlines():
        if not line.startswith(" "):
            in_sha256 = line.startswith("SHA256:")
        elif in_sha256 and line.split()[-1] == name:
            expected = line.split()
    if not expected:
        raise SetupError(f"{suite}/InRelease lists no SHA256 of {name}")
    body = download(f"{MIRROR}/dists/{suite}/{name}", INDEX_LIMIT, int(expected[1]))
    if sha256(body) != expected[0]:
        raise SetupError(f"{suite}/{name}: SHA256 differs from InRelease's")
    index: dict[str, dict[str, str]] = {}
    for paragraph in lzma.decompress(body).decode("utf-8", "replace").split("\n\n"):
        fields = {}
        for line in paragraph.splitlines():
            if line[:1] not in (" ", "\t") and ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        if "Package" in fields:
            index.setdefault(fields["Package"], fields)
    return index, how


def fetch_deb(fields: dict[str, str], downloads: str) -> bytes:
    """A .deb named by its index fields, checked against the index's SHA256 (kept in
    `downloads` so that a failed run does not fetch it again)."""
    path = os.path.join(downloads, os.path.basename(fields["Filename"]))
    if os.path.exists(path):
        with open(path, "rb") as f:
            data = f.read()
        if sha256(data) == fields["SHA256"]:
            return data
    size = int(fields["Size"])
    if size > DEB_LIMIT:
        raise SetupError(f"{fields['Filename']}: {size} bytes, more than {DEB_LIMIT} allowed")
    data = download(f"{MIRROR}/{fields['Filename']}", DEB_LIMIT, size)
    if sha256(data) != fields["SHA256"]:
        raise SetupError(f"{fields['Filename']}: SHA256 differs from the Packages index's")
    with open(path + ".part", "wb") as f:
        f.write(data)
    os.replace(path + ".part", path)
    return data


# ------------------------------------------------------------------------------ unpacking

def deb_data(deb: bytes) -> tarfile.TarFile:
    """The data.tar.* member of a .deb (an `ar` archive), opened."""
    if not deb.startswith(b"!<arch>\n"):
        raise SetupError("not a .deb (no ar header)")
    at = 8
    while at + 60 <= len(deb):
        header = deb[at:at + 60]
        name, size = header[:16].decode().strip().rstrip("/"), int(header[48:58])
        at += 60
        if name.startswith("data.tar"):
            if name.endswith(".zst"):
                raise SetupError("a zstd-compressed .deb: Python 3.11's tarfile cannot read it")
            return tarfile.open(fileobj=io.BytesIO(deb[at:at + size]), mode="r:*")
        at += size + (size & 1)
    raise SetupError("a .deb without data.tar")


def unpack(deb: bytes, target: str, only: set[str] | None = None) -> list[str]:
    """Unpack a .deb's files into `target` as `dpkg -x` does, staying inside it: absolute
    symbolic links become relative ones (they point into the sysroot, not the host); `only`:
    these paths alone. Returns the paths unpacked."""
    done = []
    with deb_data(deb) as tar:
        for member in tar:
            name = member.name[2:] if member.name.startswith("./") else member.name
            if name.startswith("/") or ".." in name.split("/"):
                raise SetupError(f"unsafe path in a .deb: {member.name}")
            path = os.path.normpath(name) if name else "."
            if path == "." or path.startswith(SKIP_PREFIXES) or (only and path not in only):
                continue
            dest = os.path.join(target, path)
            if member.isdir():
                os.makedirs(dest, exist_ok=True)
                continue
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            if os.path.lexists(dest):
                os.remove(dest)
            if member.issym():
                link = member.linkname
                if link.startswith("/"):
                    link = os.path.relpath(link.lstrip("/"), os.path.dirname(path) or ".")
                os.symlink(link, dest)
            elif member.islnk():
                source = member.linkname[2:] if member.linkname.startswith("./") \
                    else member.linkname
                if source.startswith("/") or ".." in source.split("/"):
                    raise SetupError(f"unsafe hard link in a .deb: {member.linkname}")
                shutil.copy2(os.path.join(target, source), dest)
            elif member.isfile():
                with tar.extractfile(member) as src, open(dest, "wb") as out:
                    shutil.copyfileobj(src, out)
                os.chmod(dest, (member.mode & 0o755) | 0o600)
            else:
                continue  # devices, fifos: none in these packages
            done.append(path)
    return done


def build_into(final: str, make) -> None:
    """Run make(folder) on a fresh folder beside `final`, then rename it to `final`."""
    parent = os.path.dirname(final)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(final)}.", dir=parent)
    os.chmod(staging, 0o755)
    try:
        make(staging)
        old = None
        if os.path.lexists(final):
            old = tempfile.mkdtemp(prefix=".old.", dir=parent)
            os.replace(final, os.path.join(old, "x"))
        os.replace(staging, final)
        if old:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# ------------------------------------------------------------------------------ the parts

def qemu(downloads: str) -> dict[str, str]:
    index, how = packages_index(QEMU_SUITE, "amd64", downloads)
    fields = index.get(QEMU_PACKAGE)
    if not fields:
        raise SetupError(f"{QEMU_SUITE} has no {QEMU_PACKAGE} package")
    upstream = fields["Version"].split(":")[-1]
    if not upstream.startswith(QEMU_MAJOR + "."):
        raise SetupError(f"{QEMU_SUITE}'s {QEMU_PACKAGE} is {fields['Version']}, not QEMU "
                         f"{QEMU_MAJOR}: the tests were checked on {QEMU_MAJOR}")
    say(f"qemu-aarch64 from {fields['Filename']} ({int(fields['Size']) >> 20} MB)")
    deb = fetch_deb(fields, downloads)

    def make(folder):
        got = unpack(deb, folder, only={"usr/bin/qemu-aarch64"})
        if not got:
            raise SetupError(f"{fields['Filename']} holds no usr/bin/qemu-aarch64")
        os.chmod(os.path.join(folder, got[0]), 0o755)

    build_into(os.path.join(CACHE, "qemu"), make)
    return {"package": f"{QEMU_PACKAGE} {fields['Version']} ({QEMU_SUITE}, amd64)",
            "file": fields["Filename"], "sha256": fields["SHA256"], "index": how}


def resolve(index: dict[str, dict[str, str]], roots: list[str]) -> list[str]:
    """The packages `roots` need (Pre-Depends and Depends, the first of alternatives, closed),
    but for SYSROOT_SKIP."""
    need, todo = [], list(roots)
    while todo:
        name = todo.pop(0)
        if name in need or name in SYSROOT_SKIP:
            continue
        if name not in index:
            raise SetupError(f"{SYSROOT_SUITE} arm64 has no package {name}")
        need.append(name)
        for field in ("Pre-Depends", "Depends"):
            for dependency in filter(None, index[name].get(field, "").split(",")):
                todo.append(dependency.split("|")[0].split()[0].split(":")[0])
    return sorted(need)


def sysroot(downloads: str) -> dict[str, object]:
    index, how = packages_index(SYSROOT_SUITE, "arm64", downloads)
    names = resolve(index, SYSROOT_ROOTS)
    total = sum(int(index[n]["Size"]) for n in names)
    say(f"arm64 Python sysroot: {len(names)} {SYSROOT_SUITE} packages ({total >> 20} MB)")
    debs = {name: fetch_deb(index[name], downloads) for name in names}

    def make(folder):
        for name in names:
            unpack(debs[name], folder)
        if not os.path.exists(os.path.join(folder, PYTHON)):
            raise SetupError(f"the sysroot has no {PYTHON}")

    build_into(os.path.join(CACHE, "sysroot"), make)
    return {"suite": f"{SYSROOT_SUITE} arm64", "index": how,
            "packages": {n: {"version": index[n]["Version"], "sha256": index[n]["SHA256"]}
                         for n in names}}


def glibc_minor(packages: dict[str, dict[str, str]]) -> int:
    """36 for libc6 2.36-9+deb12u…: the newest manylinux tag the sysroot can load."""
    return int(packages["libc6"]["version"].split("-")[0].split(".")[1])


def wheels(pins: dict[str, str], glibc: int) -> None:
    """The aarch64 wheels of `pins` (and their dependencies), for CPython 3.11."""
    say("aarch64 wheels: " + ", ".join(f"{k}=={v}" for k, v in pins.items()))
    platforms = [a for minor in range(17, glibc + 1)
                 for a in ("--platform", f"manylinux_2_{minor}_aarch64")]

    def make(folder):
        done = subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--no-warn-conflicts",
             "--disable-pip-version-check", "--target", folder, *platforms,
             "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311",
             "--only-binary=:all:", *(f"{k}=={v}" for k, v in pins.items())],
            capture_output=True, text=True, timeout=1200)
        if done.returncode != 0:
            last = [line for line in done.stderr.splitlines() if "ERROR" in line] or \
                done.stderr.strip().splitlines() or ["(no message)"]
            raise SetupError(f"pip could not get the aarch64 wheels: {last[-1].strip()}")

    build_into(os.path.join(CACHE, "site"), make)


def smoke() -> dict[str, str]:
    """Import the runtime in the emulated Python: the set-up works, or a clear failure."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import emulator  # beside this file

    code = ("import platform, numpy, ai_edge_litert, importlib.metadata as m; "
            "from ai_edge_litert.interpreter import Interpreter; "
            "print(platform.machine(), platform.python_version(), numpy.__version__, "
            "m.version('ai-edge-litert'))")
    done = subprocess.run(emulator.command("cortex-a76", "-c", code), env=emulator.environment(),
                          capture_output=True, text=True, timeout=600, cwd=CACHE)
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise SetupError(f"the emulated Python fails to import the runtime: {tail}")
    machine, python, numpy, litert = done.stdout.split()
    return {"machine": machine, "python": python, "numpy": numpy, "ai-edge-litert": litert,
            "qemu": emulator.qemu_version()}


# ------------------------------------------------------------------------------ main

def pins() -> dict[str, str]:
    found = {}
    for name in ("ai-edge-litert", "numpy"):
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            raise SetupError(f"{name} is not installed in {sys.prefix}: run `make setup` (or "
                             "run this script with the project's .venv/bin/python)") from None
    return found


def main() -> int:
    if sys.platform != "linux" or platform.machine() not in ("x86_64", "AMD64"):
        raise SetupError(f"the emulator set-up needs an x86_64 Linux host (this is "
                         f"{sys.platform} {platform.machine()}); the ARM tests skip here")
    wanted = {"schema": SCHEMA, "pins": pins()}
    os.makedirs(CACHE, exist_ok=True)
    with open(os.path.join(CACHE, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one set-up at a time; the next finds it done
        for name in os.listdir(CACHE):  # folders a killed run left half-built
            if name.startswith((".qemu.", ".sysroot.", ".site.", ".old.")):
                shutil.rmtree(os.path.join(CACHE, name), ignore_errors=True)
        return build(wanted)


def build(wanted: dict) -> int:
    """Fetch, check and unpack what is missing (under the lock)."""
    manifest_path = os.path.join(CACHE, "manifest.json")
    if os.path.exists(manifest_path):
        with open(manifest_path) as f:
            manifest = json.load(f)
        parts = [os.path.join(CACHE, "qemu", "usr", "bin", "qemu-aarch64"),
                 os.path.join(CACHE, "sysroot", PYTHON), os.path.join(CACHE, "site")]
        if {k: manifest.get(k) for k in wanted} == wanted and all(map(os.path.exists, parts)):
            say(f"up to date ({CACHE}; qemu {manifest['smoke']['qemu']}, ai-edge-litert "
                f"{manifest['smoke']['ai-edge-litert']})")
            return 0
        os.remove(manifest_path)  # other pins, or a part is gone: rebuilt below
    started = time.time()
    downloads = os.path.join(CACHE, "downloads")
    os.makedirs(downloads, exist_ok=True)
    manifest = {**wanted, "qemu": qemu(downloads), "sysroot": sysroot(downloads)}
    wheels(wanted["pins"], glibc_minor(manifest["sysroot"]["packages"]))
    say("smoke check: importing the runtime in the emulated Python (cortex-a76)")
    manifest["smoke"] = smoke()
    manifest["date"] = time.strftime("%Y-%m-%d")
    with open(manifest_path + ".part", "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    os.replace(manifest_path + ".part", manifest_path)
    shutil.rmtree(downloads, ignore_errors=True)  # verified and unpacked: not needed again
    s = manifest["smoke"]
    say(f"ready in {time.time() - started:.0f} s: {s['qemu']}, Python {s['python']} "
        f"({s['machine']}), numpy {s['numpy']}, ai-edge-litert {s['ai-edge-litert']} "
        f"under {CACHE}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except SetupError as e:
        print(f"make arm: {e}", file=sys.stderr)
        sys.exit(1)
    except subprocess.TimeoutExpired as e:
        print(f"make arm: timed out: {' '.join(map(str, e.cmd))[:200]}", file=sys.stderr)
        sys.exit(1)
