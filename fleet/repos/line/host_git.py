"""The two Python programs that handle a run's checkout on an SSH host, run there by
:mod:`fleet.repos.line.remote` as ``python3 -I -S -c PROGRAM`` with their data (paths, the
door's URL with the agent's token, the branch) as JSON on stdin — never in argv, never
through a shell.

:data:`CHECKOUT` makes a new checkout of a line: a directory that was not there (no symlink
on the way), ``git init``, ``origin`` the git door as the host reaches it (the URL written
into the checkout's config file, not passed on a command line), a fetch of the base and the
line's branch through the door, the branch checked out, and the agent's identity
(``user.name``, ``user.email``) set, which the door holds every pushed commit to (with a
requester, the co-author hook a local checkout has). Nothing
of the agent's is in the directory yet, so git runs plainly there, with no system or global
config.

:data:`HARVEST` keeps what a run left: in the checkout — which the agent wrote, so its
config may name programs — git runs as in :mod:`fleet.repos.line.lane_git`: in a throwaway
bubblewrap sandbox showing only ``/usr`` and the checkout, as the agent's own uid where the
host gives agents lanes (staged by the agent shim copied there, as its runs are), every
config-driven program off (``SAFE``) and every filter driver the checkout names emptied
(through ``GIT_CONFIG_*``, so a driver's name cannot split a ``-c`` word); first the lock
files git left in the checkout's own ``.git`` are removed, as :mod:`fleet.repos.line.git_locks`
does here (the run has ended: regular files only, no symlink followed); then ``git add
-A``, a ``wip`` commit, and a bundle of ``HEAD`` past the fork point written to a file the
program opened. Then, in a bare repository of its own under the host's state dir, it
fetches the line's branch from the door, reads the bundle (every object checked) and pushes
it to the door's branch: the pre-receive hook here decides, as for any push. It prints one
JSON object: ``head``, ``committed``, ``accepted``, ``words`` (git's error output when
refused), ``unlocked`` (the lock files removed), ``left`` (what bears a lock's name and was
not removed, by name) and ``git_err`` (the checkout's git's error output when it failed).
Without bubblewrap or git there nothing runs in the checkout.

:data:`REPOINT` points a kept checkout's ``origin`` at the git door with its next run's token
(the run before took its own with it), git run there as :data:`HARVEST` runs it.
"""

from __future__ import annotations

from typing import Final

CHECKOUT: Final = r"""
import json, os, subprocess, sys
d = json.load(sys.stdin)
path, env = d["dir"], d["env"]
parent = os.path.dirname(path)

def fail(words):
    sys.stderr.write(words + "\n")
    sys.exit(1)

os.makedirs(parent, 0o700, exist_ok=True)
if os.path.realpath(parent) != parent:
    fail(parent + " is not where it is named: a symlink lies on the way")
try:
    os.mkdir(path, 0o700)
except FileExistsError:
    fail(path + " is in the way of a new checkout")

def git(*args, ok=(0,)):
    done = subprocess.run(
        ["git", "--no-pager", "-C", path, *args], env=env, cwd="/",
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600,
    )
    if done.returncode not in ok:
        said = [line for line in done.stderr.splitlines() if line.strip()]
        fail("git " + args[0] + ": " + (said[-1] if said else "failed"))
    return done

base, branch = d["base"], d["branch"]
git("init", "-q", "--template=")
git("config", "remote.origin.fetch", "+refs/heads/%s:refs/remotes/origin/%s" % (base, base))
git("config", "--add", "remote.origin.fetch",
    "+refs/heads/%s:refs/remotes/origin/%s" % (branch, branch))
url = d["url"].replace("\\", "\\\\").replace('"', '\\"')
with open(os.path.join(path, ".git", "config"), "a", encoding="utf-8") as fh:
    fh.write('[remote "origin"]\n\turl = "%s"\n' % url)
git("-c", "protocol.allow=never", "-c", "protocol.http.allow=always",
    "fetch", "-q", "--no-tags", "origin")
git("checkout", "-q", "--no-track", "-b", branch, "refs/remotes/origin/" + branch)
for key, value in (("branch.%s.remote" % branch, "origin"),
                   ("branch.%s.merge" % branch, "refs/heads/" + branch),
                   ("push.default", "upstream"),
                   ("user.name", d["name"]), ("user.email", d["email"])):
    git("config", key, value)
if d.get("coauthor"):
    git("config", "fleetwarden.coauthor", d["coauthor"])
    hooks = os.path.join(path, ".git", "hooks")
    os.makedirs(hooks, 0o755, exist_ok=True)
    hook = os.path.join(hooks, "prepare-commit-msg")
    with open(hook, "w", encoding="utf-8") as fh:
        fh.write(d["hook"])
    os.chmod(hook, 0o755)
print("ok")
"""

_IN_CHECKOUT: Final = r"""
import json, os, re, shutil, stat, subprocess, sys, tempfile
d = json.load(sys.stdin)
path, env = d["dir"], d["env"]
result = {"head": None, "committed": False, "accepted": False, "words": "",
          "unlocked": [], "left": {}, "git_err": ""}

def done(**kw):
    result.update(kw)
    print(json.dumps(result))
    sys.exit(0)

class Failed(Exception):
    def __init__(self, words, err=""):
        super().__init__(words)
        self.err = err

SYSTEM = "/usr/local/bin:/usr/bin:/bin"
git = shutil.which("git", path=SYSTEM)
bwrap = shutil.which("bwrap", path=SYSTEM)
if git is None or bwrap is None:
    done(words="git cannot run in a sandbox on the host (bubblewrap or git is missing "
         "there): " + d["unsandboxed"])
if os.path.islink(path) or not os.path.isdir(path):
    done(words="the checkout is gone")
help_text = subprocess.run([bwrap, "--help"], capture_output=True, text=True).stdout

def sandboxed(args):
    argv = [bwrap, "--unshare-all", "--unshare-user"]
    if "--disable-userns" in help_text:
        argv.append("--disable-userns")
    argv += ["--cap-drop", "ALL", "--uid", "4242", "--gid", "4242", "--die-with-parent",
             "--new-session", "--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            argv += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            argv += ["--ro-bind", top, top]
    for loader in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d"):
        argv += ["--ro-bind-try", loader, loader]
    prefix = os.path.dirname(os.path.dirname(os.path.realpath(git)))
    if prefix != "/usr" and not prefix.startswith("/usr/"):
        argv += ["--ro-bind", prefix, prefix]
    argv += ["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--bind", path, path,
             "--chdir", "/", "--", git, "--no-pager", "-C", path]
    for setting in d["safe"]:
        argv += ["-c", setting]
    argv += args
    if d["uid"] is not None:
        argv = [sys.executable, "-I", "-S", "-c", d["stager"], d["shim"], str(d["uid"]), "--",
                *argv]
    return argv

def run(args, filters=(), ok=(0,), stdout=subprocess.PIPE):
    e = dict(env)
    n = 0
    for name in filters:
        for key, value in (("clean", ""), ("smudge", ""), ("process", ""), ("required", "false")):
            e["GIT_CONFIG_KEY_%d" % n] = "filter.%s.%s" % (name, key)
            e["GIT_CONFIG_VALUE_%d" % n] = value
            n += 1
    if n:
        e["GIT_CONFIG_COUNT"] = str(n)
    try:
        p = subprocess.run(sandboxed(args), env=e, cwd="/", stdin=subprocess.DEVNULL,
                           stdout=stdout, stderr=subprocess.PIPE, timeout=120,
                           start_new_session=True)
    except subprocess.TimeoutExpired:
        raise Failed("git took longer than 120 s")
    if p.returncode not in ok:
        err = p.stderr.decode("utf-8", "replace")
        said = [x for x in err.splitlines() if x.strip()]
        raise Failed(said[-1] if said else "git exited %d" % p.returncode, err[-4096:])
    return p

DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

def clear(fd, where, names):
    for name in names:
        if not name.endswith(".lock"):
            continue
        try:
            mode = os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode
        except OSError:
            continue
        shown = where + "/" + name
        if not stat.S_ISREG(mode):
            result["left"][shown] = ("a symlink" if stat.S_ISLNK(mode) else
                                     "a directory" if stat.S_ISDIR(mode) else
                                     "not a regular file")
            continue
        try:
            os.unlink(name, dir_fd=fd)
        except FileNotFoundError:
            continue
        except OSError as exc:
            result["left"][shown] = "a file that could not be removed (%s)" % exc.strerror
            continue
        result["unlocked"].append(shown)

def unlock():
    try:
        top = os.open(path, DIR)
    except OSError:
        return
    try:
        fd = os.open(".git", DIR, dir_fd=top)
    except OSError:
        os.close(top)
        return
    try:
        clear(fd, ".git", os.listdir(fd))
        seen = 0
        for where, dirs, files, sub in os.fwalk("refs", dir_fd=fd):
            seen += len(dirs) + len(files)
            if seen > d["max_entries"]:
                break
            clear(sub, ".git/" + where, files)
    except OSError:
        pass
    finally:
        os.close(fd)
        os.close(top)

"""
"""What runs git in a checkout on a host, sandboxed as the agent (``run``); its data names
``unsandboxed``, what is said of the work when that cannot be done."""

HARVEST: Final = (
    _IN_CHECKOUT
    + r"""
fork, branch = d["fork"], d["branch"]
unlock()
try:
    keys = run(["config", "--name-only", "--get-regexp", r"^filter\."], ok=(0, 1))
    filters = []
    for key in keys.stdout.decode("utf-8", "replace").splitlines():
        m = re.fullmatch(r"filter\.(.+)\.[a-z]+", key.strip())
        if m and m.group(1) not in filters:
            filters.append(m.group(1))
    run(["add", "-A"], filters)
    staged = run(["diff", "--cached", "--quiet", "--no-ext-diff", "--no-textconv",
                  "--ignore-submodules=dirty"], filters, ok=(0, 1))
    committed = staged.returncode == 1
    if committed:
        run(["commit", "-q", "--no-verify", "-m", d["message"]], filters)
    head = run(["rev-parse", "--verify", "-q", "HEAD"]).stdout.decode().strip()
except Failed as exc:
    done(words="the checkout could not be read: %s" % exc, git_err=exc.err)
if len(head) != 40:
    done(committed=committed, words="the checkout has no commit")
result.update(head=head, committed=committed)
os.makedirs(d["work"], 0o700, exist_ok=True)
tmp = tempfile.mkdtemp(dir=d["work"])
try:
    door = {k: v for k, v in env.items() if not k.startswith("GIT_CONFIG_")}
    door.update(GIT_CONFIG_COUNT="1", GIT_CONFIG_KEY_0="remote.door.url",
                GIT_CONFIG_VALUE_0=d["url"])

    def own(*args, ok=(0,)):
        return subprocess.run(
            [git, "--no-pager", "-C", tmp, "-c", "core.hooksPath=/dev/null",
             "-c", "protocol.allow=never", "-c", "protocol.http.allow=always",
             "-c", "protocol.file.allow=always", *args],
            env=door, cwd="/", stdin=subprocess.DEVNULL, capture_output=True, text=True,
            timeout=300,
        )

    own("init", "-q", "--bare", "--template=")
    got = own("fetch", "-q", "--no-tags", "door", "+refs/heads/%s:refs/line" % branch)
    if got.returncode != 0:
        done(words=got.stderr)
    known = own("rev-parse", "--verify", "-q", "refs/line").stdout.strip()
    if head in (known, fork):
        done(accepted=True)
    bundle = os.path.join(tmp, "run.bundle")
    for args in (["HEAD", "--not", fork], ["HEAD"]):
        with open(bundle, "wb") as fh:
            try:
                run(["bundle", "create", "-", *args], stdout=fh)
            except Failed:
                continue
        break
    else:
        done(words="its commits could not be bundled")
    read = own("-c", "fetch.fsckObjects=true", "fetch", "-q", "--no-tags", "--", bundle,
               "HEAD:refs/harvest")
    if read.returncode != 0:
        done(words=read.stderr)
    pushed = own("push", "-q", "--no-verify", "door", "refs/harvest:refs/heads/" + branch)
    if pushed.returncode != 0:
        done(words=pushed.stderr)
    done(accepted=True)
finally:
    shutil.rmtree(tmp, ignore_errors=True)
"""
)

REPOINT: Final = (
    _IN_CHECKOUT
    + r"""
try:
    run(["config", "remote.origin.url", d["url"]])
except Failed as exc:
    done(words=str(exc), git_err=exc.err)
done(accepted=True)
"""
)
