# spore core: the program that runs on the target after the first stage.
# One source for Python 2.7, 3.6-3.13 and PyPy 3. It speaks the framed wire
# protocol of docs/protocol.md on the transport it inherited (fd 100 for
# input, fd 1 for output) and serves its parent's requests from one
# single-threaded poll loop. It trusts nothing but its parent's stream.
import sys
# The current directory ('') and the directory of the script path the core
# is read from (/dev) never serve imports.
sys.path = [p for p in sys.path if p and p != '/dev']
import errno
import fcntl
import os
import select
import struct
try:
    # The signal module wraps _signal in enums, whose import costs ~4 ms.
    import _signal as signal
except ImportError:
    import signal

PY3 = sys.version_info[0] >= 3
HDR = struct.Struct('>BII')
MAXF = 1 << 20
WINDOW = 1 << 21
GRANT = WINDOW // 4
CHUNK = 1 << 17
# Reads stay under glibc's mmap threshold (128 KiB): a larger buffer costs an
# mmap, mremap and munmap on every read.
READ = 65536
REQ, REP, DATA, EOF, CREDIT, CLOSE, EVENT = 1, 2, 3, 4, 5, 6, 7
AGAIN = (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR)

if PY3:
    def b(s):
        return s
else:
    def b(s):
        if isinstance(s, unicode):
            return s.encode('utf-8')
        return s


# A small JSON codec: importing the json module costs ~10 ms (it compiles
# regular expressions), more than the rest of the core's start-up.
if PY3:
    TEXT = (str,)
    INTS = (int,)
    unichr = chr
else:
    TEXT = (unicode, str)
    INTS = (int, long)
ESC = {'"': '\\"', '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t', '\b': '\\b', '\f': '\\f'}


def jstr(s):
    if not PY3 and isinstance(s, str):
        s = s.decode('utf-8', 'replace')
    out = ['"']
    for ch in s:
        e = ESC.get(ch)
        if e:
            out.append(e)
        elif ' ' <= ch < '\x7f':
            out.append(ch)
        else:
            n = ord(ch)
            if n > 0xffff:
                n -= 0x10000
                out.append('\\u%04x\\u%04x' % (0xd800 | (n >> 10), 0xdc00 | (n & 0x3ff)))
            else:
                out.append('\\u%04x' % n)
    out.append('"')
    return ''.join(out)


def jdump(v):
    if v is None:
        return 'null'
    if v is True:
        return 'true'
    if v is False:
        return 'false'
    if isinstance(v, INTS):
        return str(int(v))
    if isinstance(v, float):
        if v != v or v in (float('inf'), float('-inf')):
            return jstr(repr(v))
        return repr(v)
    if isinstance(v, TEXT):
        return jstr(v)
    if isinstance(v, dict):
        return '{' + ','.join(jstr(k if isinstance(k, TEXT) else str(k)) + ':' + jdump(x) for k, x in v.items()) + '}'
    if isinstance(v, (list, tuple)):
        return '[' + ','.join(jdump(x) for x in v) + ']'
    raise TypeError('not JSON-able: %s' % type(v).__name__)


def jload(s):
    v, i = _jval(s, _jws(s, 0))
    if _jws(s, i) != len(s):
        raise ValueError('trailing data in JSON')
    return v


def _jws(s, i):
    while i < len(s) and s[i] in ' \t\r\n':
        i += 1
    return i


def _jval(s, i):
    c = s[i:i + 1]
    if c == '"':
        out = []
        i += 1
        while True:
            j = i
            while s[j] != '"' and s[j] != '\\':
                j += 1
            out.append(s[i:j])
            if s[j] == '"':
                return ''.join(out), j + 1
            e = s[j + 1]
            if e == 'u':
                n = int(s[j + 2:j + 6], 16)
                i = j + 6
                if 0xd800 <= n < 0xdc00 and s[i:i + 2] == '\\u':
                    n = 0x10000 + ((n - 0xd800) << 10) + (int(s[i + 2:i + 6], 16) - 0xdc00)
                    i += 6
                out.append(unichr(n))
            else:
                out.append({'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}.get(e, e))
                i = j + 2
    if c == '{':
        d = {}
        i = _jws(s, i + 1)
        if s[i] == '}':
            return d, i + 1
        while True:
            k, i = _jval(s, _jws(s, i))
            i = _jws(s, i)
            if s[i] != ':':
                raise ValueError('bad JSON object')
            d[k], i = _jval(s, _jws(s, i + 1))
            i = _jws(s, i)
            if s[i] == '}':
                return d, i + 1
            if s[i] != ',':
                raise ValueError('bad JSON object')
            i += 1
    if c == '[':
        a = []
        i = _jws(s, i + 1)
        if s[i] == ']':
            return a, i + 1
        while True:
            v, i = _jval(s, _jws(s, i))
            a.append(v)
            i = _jws(s, i)
            if s[i] == ']':
                return a, i + 1
            if s[i] != ',':
                raise ValueError('bad JSON array')
            i += 1
    for lit, v in (('true', True), ('false', False), ('null', None)):
        if s.startswith(lit, i):
            return v, i + len(lit)
    j = i
    while j < len(s) and s[j] in '+-0123456789.eE':
        j += 1
    t = s[i:j]
    if not t:
        raise ValueError('bad JSON value at %d' % i)
    if '.' in t or 'e' in t or 'E' in t:
        return float(t), j
    return int(t), j


def cloexec(fd):
    fcntl.fcntl(fd, fcntl.F_SETFD, fcntl.fcntl(fd, fcntl.F_GETFD) | fcntl.FD_CLOEXEC)


def nonblock(fd):
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)


def blocking(fd):
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)


def pipe():
    r, w = os.pipe()
    cloexec(r)
    cloexec(w)
    return r, w


def close(fd):
    if fd is not None and fd >= 0:
        try:
            os.close(fd)
        except OSError:
            pass


def errmsg(e):
    if isinstance(e, EnvironmentError) and e.strerror:
        if getattr(e, 'filename', None):
            return '%s: %s' % (e.strerror, e.filename)
        return e.strerror
    return str(e) or e.__class__.__name__


class Fail(Exception):
    """A request failure with a kind the host understands."""
    def __init__(self, kind, msg):
        Exception.__init__(self, msg)
        self.kind = kind


class Loop(object):
    """Readiness loop over poll (select where poll is missing)."""
    def __init__(self):
        self.r = {}
        self.w = {}
        self.poller = getattr(select, 'poll', None)
        if self.poller:
            self.poller = self.poller()
        self.masks = {}

    def _sync(self, fd):
        if not self.poller:
            return
        m = 0
        if fd in self.r:
            m |= select.POLLIN
        if fd in self.w:
            m |= select.POLLOUT
        old = self.masks.get(fd, 0)
        if m == old:
            return
        if m:
            if old:
                self.poller.modify(fd, m)
            else:
                self.poller.register(fd, m)
            self.masks[fd] = m
        else:
            self.poller.unregister(fd)
            del self.masks[fd]

    def reader(self, fd, fn):
        if fn is None:
            self.r.pop(fd, None)
        else:
            self.r[fd] = fn
        self._sync(fd)

    def writer(self, fd, fn):
        if fn is None:
            self.w.pop(fd, None)
        else:
            self.w[fd] = fn
        self._sync(fd)

    def forget(self, fd):
        self.r.pop(fd, None)
        self.w.pop(fd, None)
        self._sync(fd)

    def once(self):
        try:
            if self.poller:
                events = self.poller.poll()
                ready = []
                for fd, ev in events:
                    if ev & (select.POLLIN | select.POLLHUP | select.POLLERR | select.POLLNVAL):
                        ready.append((self.r, fd))
                    if ev & (select.POLLOUT | select.POLLERR | select.POLLHUP | select.POLLNVAL):
                        ready.append((self.w, fd))
            else:
                rs, ws, _ = select.select(list(self.r), list(self.w), [])
                ready = [(self.r, fd) for fd in rs] + [(self.w, fd) for fd in ws]
        except (select.error, OSError, IOError) as e:
            if e.args[0] == errno.EINTR:
                return
            raise
        for table, fd in ready:
            fn = table.get(fd)
            if fn is not None:
                fn()


class Chan(object):
    """One multiplexed channel: bytes from the host go to sink, bytes read
    from src go to the host, each direction under a credit window."""
    def __init__(self, core, cid, sink=None, src=None, sock=False, on_done=None):
        self.core = core
        self.id = cid
        self.sink = sink
        self.src = src
        self.sock = sock
        self.on_done = on_done
        self.inbuf = []
        self.inlen = 0
        self.unacked = 0
        self.ineof = False
        self.credit = WINDOW
        self.reading = False
        self.src_done = src is None
        self.sink_done = sink is None
        core.chans[cid] = self
        if sink is not None:
            nonblock(sink)
        if src is not None:
            nonblock(src)
            self._want_read()

    def _want_read(self):
        if not self.src_done and self.credit > 0 and not self.reading:
            self.reading = True
            self.core.loop.reader(self.src, self._readable)

    def _readable(self):
        try:
            d = os.read(self.src, min(self.credit, READ))
        except OSError as e:
            if e.errno in AGAIN:
                return
            d = b''
        if d:
            self.credit -= len(d)
            self.core.send(DATA, self.id, d)
            if self.credit <= 0:
                self.reading = False
                self.core.loop.reader(self.src, None)
            return
        self.reading = False
        self.core.loop.reader(self.src, None)
        self.src_done = True
        self.core.send(EOF, self.id, b'')
        if self.src != self.sink:
            close(self.src)
        self._maybe_done()

    def on_credit(self, n):
        self.credit += n
        self._want_read()

    def on_data(self, d):
        if self.sink_done:
            # sink gone: drop, but keep the host's window moving
            return
        self.inlen += len(d)
        if self.inlen > WINDOW:
            raise Fail('protocol', 'channel %d overran its window' % self.id)
        self.inbuf.append(d)
        self._writable()

    def on_eof(self):
        self.ineof = True
        self._writable()

    def _writable(self):
        sent = 0
        while self.inbuf:
            d = self.inbuf[0]
            try:
                n = os.write(self.sink, d)
            except OSError as e:
                if e.errno in AGAIN:
                    break
                # reader went away (EPIPE): discard what is pending
                self.inbuf = []
                self.inlen = 0
                self._close_sink()
                return
            sent += n
            if n == len(d):
                self.inbuf.pop(0)
            else:
                self.inbuf[0] = d[n:]
        if sent:
            self.inlen -= sent
            # Credit is granted in quarters of the window, not per write:
            # one frame less per small message, and the sender, whose
            # window is four quarters, never waits on a quarter held back.
            self.unacked += sent
            if self.unacked >= GRANT:
                self.core.send(CREDIT, self.id, struct.pack('>I', self.unacked))
                self.unacked = 0
        if self.inbuf:
            self.core.loop.writer(self.sink, self._writable)
        else:
            self.core.loop.writer(self.sink, None)
            if self.ineof:
                self._close_sink()

    def _close_sink(self):
        if self.sink_done:
            return
        self.sink_done = True
        self.core.loop.writer(self.sink, None)
        if self.sink == self.src:
            if self.sock:
                import socket
                try:
                    socket.fromfd(self.sink, socket.AF_INET, socket.SOCK_STREAM).shutdown(socket.SHUT_WR)
                except Exception:
                    pass
        else:
            close(self.sink)
        self._maybe_done()

    def _maybe_done(self):
        if self.src_done and self.sink_done:
            if self.src is not None and self.src == self.sink:
                self.core.loop.forget(self.src)
                close(self.src)
            self.core.chans.pop(self.id, None)
            if self.on_done:
                self.on_done()

    def close(self):
        for fd in (self.src, self.sink):
            if fd is not None:
                self.core.loop.forget(fd)
                close(fd)
        self.src_done = self.sink_done = True
        self.core.chans.pop(self.id, None)


class Core(object):
    def __init__(self, rfd, wfd):
        self.rfd = rfd
        self.wfd = wfd
        self.loop = Loop()
        self.chans = {}
        self.procs = {}
        self.inbuf = b''
        self.out = []
        self.outlen = 0
        self.running = True
        self.name = ''
        self.site = False
        nonblock(rfd)
        nonblock(wfd)
        self.loop.reader(rfd, self._readable)
        self.wake_r, self.wake_w = pipe()
        nonblock(self.wake_r)
        nonblock(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *a: None)
        signal.signal(signal.SIGTERM, self._signalled)
        signal.signal(signal.SIGHUP, self._signalled)
        signal.set_wakeup_fd(self.wake_w)
        self.loop.reader(self.wake_r, self._wake)
        # The first stage's child may have exited before SIGCHLD was caught.
        self.reap()

    def _signalled(self, *a):
        self.running = False

    # ---- output ----
    def send(self, t, i, payload):
        self.out.append(HDR.pack(t, i, len(payload)))
        self.out.append(payload)
        self.outlen += HDR.size + len(payload)
        if self.outlen >= CHUNK:
            self.flush()

    def flush(self):
        while self.out:
            data = b''.join(self.out)
            try:
                n = os.write(self.wfd, data)
            except OSError as e:
                if e.errno in AGAIN:
                    self.out = [data]
                    self.loop.writer(self.wfd, self.flush)
                    return
                self.running = False
                self.out = []
                return
            data = data[n:]
            self.out = [data] if data else []
            self.outlen = len(data)
            if data and self.outlen > 4 * WINDOW:
                blocking(self.wfd)
                try:
                    while data:
                        data = data[os.write(self.wfd, data):]
                except OSError:
                    self.running = False
                nonblock(self.wfd)
                self.out = []
                self.outlen = 0
        self.loop.writer(self.wfd, None)

    def reply(self, rid, obj):
        self.send(REP, rid, jdump(obj).encode('ascii'))

    def event(self, rid, obj):
        self.send(EVENT, rid, jdump(obj).encode('ascii'))

    # ---- input ----
    def _readable(self):
        try:
            d = os.read(self.rfd, READ)
        except OSError as e:
            if e.errno in AGAIN:
                return
            d = b''
        if not d:
            self.running = False
            return
        buf = self.inbuf + d if self.inbuf else d
        off = 0
        n = len(buf)
        while n - off >= HDR.size:
            t, i, ln = HDR.unpack_from(buf, off)
            if ln > MAXF:
                self.die('frame of %d bytes exceeds the maximum' % ln)
                return
            if n - off - HDR.size < ln:
                break
            p = buf[off + HDR.size:off + HDR.size + ln]
            off += HDR.size + ln
            try:
                self.dispatch(t, i, p)
            except Fail as e:
                if e.kind == 'protocol':
                    self.die(str(e))
                    return
                raise
        self.inbuf = buf[off:]

    def die(self, msg):
        sys.stderr.write('spore core %s: protocol error: %s\n' % (self.name, msg))
        self.running = False

    def dispatch(self, t, i, p):
        if t == DATA:
            c = self.chans.get(i)
            if c:
                c.on_data(p)
        elif t == CREDIT:
            c = self.chans.get(i)
            if c and len(p) == 4:
                c.on_credit(struct.unpack('>I', p)[0])
        elif t == EOF:
            c = self.chans.get(i)
            if c:
                c.on_eof()
        elif t == CLOSE:
            c = self.chans.get(i)
            if c:
                c.close()
        elif t == REQ:
            try:
                req = jload(p.decode('utf-8'))
                op = req.get('op')
                fn = getattr(self, 'op_' + str(op), None)
                if fn is None and EXT:
                    _load_ext()
                    fn = getattr(self, 'op_' + str(op), None)
                if fn is None:
                    raise Fail('protocol', 'unknown request %r' % (op,))
                res = fn(i, req)
                if res is not None:
                    self.reply(i, res)
            except Fail as e:
                self.reply(i, {'error': {'kind': e.kind, 'msg': str(e)}})
            except Exception as e:
                import traceback
                self.reply(i, {'error': {'kind': 'remote', 'msg': errmsg(e),
                                         'type': e.__class__.__name__,
                                         'traceback': traceback.format_exc()}})
        else:
            raise Fail('protocol', 'unknown frame type %d' % t)

    def _wake(self):
        try:
            while os.read(self.wake_r, 512):
                pass
        except OSError:
            pass
        self.reap()

    def reap(self):
        while True:
            try:
                pid, st = os.waitpid(-1, os.WNOHANG)
            except OSError:
                return
            if pid == 0:
                return
            rid = self.procs.pop(pid, None)
            if rid is None:
                continue
            if os.WIFSIGNALED(st):
                self.event(rid, {'exit': 128 + os.WTERMSIG(st), 'signal': os.WTERMSIG(st)})
            else:
                self.event(rid, {'exit': os.WEXITSTATUS(st)})

    def run(self):
        # Output is flushed once per loop turn: replies to a batch of
        # requests leave in one write, and nothing waits for another poll.
        while self.running:
            self.loop.once()
            if self.out and self.wfd not in self.loop.w:
                self.flush()
        self.shutdown()

    def shutdown(self):
        for c in list(self.chans.values()):
            c.close()
        pids = list(self.procs)
        for pid in pids:
            try:
                os.killpg(pid, signal.SIGTERM)
            except OSError:
                pass
        import time
        end = time.time() + 2
        while self.procs and time.time() < end:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except OSError:
                break
            if pid:
                self.procs.pop(pid, None)
            else:
                time.sleep(0.02)
        for pid in self.procs:
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
        try:
            self.flush()
        except Exception:
            pass

    # ---- requests ----
    def op_hello(self, rid, req):
        self.name = req.get('name', '')
        exe = sys.executable
        k = exe.find('(spore:')
        if k > 0:
            exe = exe[:k]
        impl = 'cpython'
        if hasattr(sys, 'implementation'):
            impl = sys.implementation.name
        elif '__pypy__' in sys.builtin_module_names:
            impl = 'pypy'
        try:
            import pwd
            user = pwd.getpwuid(os.getuid())[0]
        except Exception:
            user = ''
        u = os.uname()
        return {'python': '%d.%d.%d' % tuple(sys.version_info[:3]), 'implementation': impl,
                'executable': exe, 'platform': sys.platform,
                'system': u[0], 'release': u[2], 'machine': u[4],
                'pid': os.getpid(), 'uid': os.getuid(), 'gid': os.getgid(), 'user': user,
                'hostname': u[1], 'cwd': os.getcwd()}

    def op_ping(self, rid, req):
        return {}

    def op_shutdown(self, rid, req):
        self.running = False
        return {}

    def op_spawn(self, rid, req):
        argv = req.get('argv')
        if req.get('shell') is not None:
            argv = ['/bin/sh', '-c', req['shell']]
        if not argv:
            raise Fail('bad-request', 'empty command')
        argv = [b(a) for a in argv]
        env = dict(os.environ)
        for k, v in (req.get('env') or {}).items():
            env[b(k)] = b(v)
        cwd = req.get('dir') or None
        if cwd:
            cwd = b(os.path.expanduser(cwd))
        mode = req.get('pty') and 'pty' or (req.get('tty') and 'tty') or ''
        fds = []
        try:
            if mode == 'pty':
                master, slave = os.openpty()
                cloexec(master)
                cloexec(slave)
                fds += [master, slave]
                _winsize(slave, req.get('rows'), req.get('cols'))
                child = (slave, slave, slave, slave)
            else:
                ir, iw = pipe()
                o_r, o_w = pipe()
                fds += [ir, iw, o_r, o_w]
                if req.get('errch'):
                    e_r, e_w = pipe()
                    fds += [e_r, e_w]
                else:
                    e_r = None
                    e_w = os.open(os.devnull, os.O_WRONLY)
                    cloexec(e_w)
                    fds.append(e_w)
                tty = None
                if mode == 'tty':
                    master, tty = os.openpty()
                    cloexec(master)
                    cloexec(tty)
                    fds += [master, tty]
                child = (ir, o_w, e_w, tty)
            pid = _fork_exec(argv, env, cwd, child)
        except OSError as e:
            for fd in fds:
                close(fd)
            a0 = argv[0]
            if not isinstance(a0, str):
                a0 = a0.decode('utf-8', 'replace')
            if e.errno == errno.ENOENT:
                raise Fail('not-found', '%s: command not found' % a0)
            raise Fail('exec', '%s: %s' % (a0, e.strerror or e))
        self.procs[pid] = rid
        if mode == 'pty':
            close(slave)
            Chan(self, req['ch'], master, master)
        else:
            for fd in (ir, o_w, e_w, tty):
                close(fd)
            Chan(self, req['ch'], iw, o_r)
            if e_r is not None:
                Chan(self, req['errch'], None, e_r)
            if mode == 'tty':
                Chan(self, req['ttych'], master, master)
        return {'pid': pid}

    def op_signal(self, rid, req):
        for pid, r in self.procs.items():
            if r == req.get('id'):
                try:
                    os.killpg(pid, int(req.get('signal', signal.SIGTERM)))
                except OSError:
                    try:
                        os.kill(pid, int(req.get('signal', signal.SIGTERM)))
                    except OSError:
                        pass
        return {}

    def op_resize(self, rid, req):
        c = self.chans.get(req.get('ch'))
        if c and c.sink is not None:
            _winsize(c.sink, req.get('rows'), req.get('cols'))
        return {}

# EXT is ext.py's source, put here by the host when it builds the preamble.
EXT = ''


def _load_ext():
    global EXT
    code = compile(EXT, 'ext.py', 'exec')
    EXT = ''
    ns = {}
    exec(code, globals(), ns)
    for k, v in ns.items():
        if k.startswith('op_'):
            setattr(Core, k, v)
        else:
            globals()[k] = v


def _winsize(fd, rows, cols):
    if rows and cols:
        try:
            import termios
            fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack('HHHH', int(rows), int(cols), 0, 0))
        except Exception:
            pass


def _fork_exec(argv, env, cwd, fds):
    stdin, stdout, stderr, tty = fds
    er, ew = pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(er)
            os.setsid()
            if tty is not None:
                import termios
                try:
                    fcntl.ioctl(tty, termios.TIOCSCTTY, 0)
                except Exception:
                    pass
                # Keep the terminal open across exec (as the host's own spawn
                # does): with no slave open until the child opens /dev/tty,
                # reading the master fails with EIO and the relay ends.
                fcntl.fcntl(tty, fcntl.F_SETFD, fcntl.fcntl(tty, fcntl.F_GETFD) & ~fcntl.FD_CLOEXEC)
            for i, fd in enumerate((stdin, stdout, stderr)):
                os.dup2(fd, i)
            signal.signal(signal.SIGPIPE, signal.SIG_DFL)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            if cwd:
                os.chdir(cwd)
            os.execvpe(argv[0], argv, env)
        except BaseException as e:
            try:
                os.write(ew, str(getattr(e, 'errno', 0) or 0).encode('ascii') + b':' + errmsg(e).encode('utf-8', 'replace'))
            finally:
                os._exit(127)
    os.close(ew)
    data = b''
    while True:
        try:
            d = os.read(er, 4096)
        except OSError as e:
            if e.errno == errno.EINTR:
                continue
            raise
        if not d:
            break
        data += d
    os.close(er)
    if data:
        try:
            os.waitpid(pid, 0)
        except OSError:
            pass
        code, _, msg = data.partition(b':')
        raise OSError(int(code or 0), msg.decode('utf-8', 'replace'))
    return pid


def main():
    rfd = os.dup(100)
    os.close(100)
    wfd = os.dup(1)
    cloexec(rfd)
    cloexec(wfd)
    nul = os.open(os.devnull, os.O_RDWR)
    os.dup2(nul, 0)
    os.dup2(nul, 1)
    os.close(nul)
    core = Core(rfd, wfd)
    try:
        core.run()
    except Exception as e:
        sys.stderr.write('spore core %s: internal error: %s: %s\n' % (core.name, e.__class__.__name__, e))
        core.shutdown()
    os._exit(0)


main()
