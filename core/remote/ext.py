# spore core, rarely used requests: file transfer and inspection, remote
# Python, dial. The host embeds this file in the core as the string EXT,
# compiled on the first request that needs it, so every boot does not pay
# for compiling it. It runs in the core's namespace.


def op_dial(self, rid, req):
    import socket
    host, port = req.get('host'), int(req.get('port'))
    try:
        infos = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise Fail('connect', 'cannot resolve %s: %s' % (host, e.args[-1]))
    last = None
    for fam, typ, proto, _, addr in infos:
        s = socket.socket(fam, typ, proto)
        s.settimeout(float(req.get('timeout', 30)))
        try:
            s.connect(addr)
        except (socket.error, OSError) as e:
            last = e
            s.close()
            continue
        fd = os.dup(s.fileno())
        s.close()
        cloexec(fd)
        Chan(self, req['ch'], fd, fd, sock=True)
        return {}
    raise Fail('connect', 'cannot connect to %s:%s: %s' % (host, port, errmsg(last)))

def op_python(self, rid, req):
    if not self.site:
        # The core runs with -S; user code expects site-packages.
        self.site = True
        try:
            import site
            if sys.flags.no_site and hasattr(site, 'main'):
                site.main()
        except Exception:
            pass
    code = req.get('code', '')
    ns = {'__name__': '__spore__', 'args': req.get('args')}
    if PY3:
        from io import StringIO
    else:
        from StringIO import StringIO
    buf = StringIO()
    old = sys.stdout
    sys.stdout = buf
    try:
        try:
            c = compile(code, '<spore>', 'eval')
            res = eval(c, ns)
        except SyntaxError:
            c = compile(code, '<spore>', 'exec')
            exec(c, ns)
            res = ns.get('result')
    except Exception as e:
        sys.stdout = old
        import traceback
        tb = traceback.format_exc()
        return {'error': {'kind': 'remote', 'type': e.__class__.__name__, 'msg': errmsg(e),
                          'traceback': tb}, 'stdout': buf.getvalue()}
    finally:
        sys.stdout = old
    try:
        jdump(res)
    except (TypeError, ValueError):
        res = repr(res)
    return {'result': res, 'stdout': buf.getvalue()}

def op_stat(self, rid, req):
    try:
        st = os.lstat(b(req['path']))
    except OSError as e:
        raise Fail('fs', errmsg(e))
    import stat as S
    kind = 'file'
    if S.S_ISDIR(st.st_mode):
        kind = 'dir'
    elif S.S_ISLNK(st.st_mode):
        kind = 'symlink'
    elif not S.S_ISREG(st.st_mode):
        kind = 'other'
    return {'size': st.st_size, 'mode': st.st_mode & 0o7777, 'type': kind,
            'mtime': st.st_mtime, 'uid': st.st_uid, 'gid': st.st_gid}

def op_list(self, rid, req):
    try:
        names = sorted(os.listdir(b(req['path'])))
    except OSError as e:
        raise Fail('fs', errmsg(e))
    if PY3:
        return {'names': names}
    return {'names': [n.decode('utf-8', 'replace') for n in names]}

def op_mkdir(self, rid, req):
    p = b(req['path'])
    try:
        if req.get('parents'):
            if not os.path.isdir(p):
                os.makedirs(p, int(req.get('mode', 0o755)))
        else:
            os.mkdir(p, int(req.get('mode', 0o755)))
    except OSError as e:
        raise Fail('fs', errmsg(e))
    return {}

def op_remove(self, rid, req):
    p = b(req['path'])
    try:
        if os.path.isdir(p) and not os.path.islink(p):
            if req.get('recursive'):
                import shutil
                shutil.rmtree(p)
            else:
                os.rmdir(p)
        else:
            os.unlink(p)
    except OSError as e:
        raise Fail('fs', errmsg(e))
    return {}

def op_put(self, rid, req):
    import hashlib
    path = b(req['path'])
    d = os.path.dirname(path) or b('.')
    tmp = os.path.join(d, b('.%s.spore-%d' % (os.path.basename(req['path']), os.getpid())))
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as e:
        raise Fail('fs', 'cannot create a file in %s: %s' % (os.path.dirname(req['path']) or '.', e.strerror))
    cloexec(fd)
    h = hashlib.sha256()
    core = self
    state = {'n': 0, 'err': None}

    class Sink(Chan):
        def on_data(self, data):
            if state['err'] is None:
                try:
                    v = data
                    while v:
                        v = v[os.write(fd, v):]
                    h.update(data)
                except OSError as e:
                    state['err'] = errmsg(e)
            state['n'] += len(data)
            core.send(CREDIT, self.id, struct.pack('>I', len(data)))

        def on_eof(self):
            core.chans.pop(self.id, None)
            finish()

        def close(self):
            core.chans.pop(self.id, None)
            close(fd)
            _unlink(tmp)

    def finish():
        err = state['err']
        if err is None and state['n'] != int(req.get('size', state['n'])):
            err = 'size mismatch: got %d bytes, expected %s' % (state['n'], req.get('size'))
        if err is None and req.get('sha256') and h.hexdigest() != req['sha256']:
            err = 'sha256 mismatch'
        if err is None:
            try:
                os.fchmod(fd, int(req.get('mode', 0o644)))
                os.fsync(fd)
            except OSError as e:
                err = errmsg(e)
        close(fd)
        if err is None:
            try:
                os.rename(tmp, path)
            except OSError as e:
                err = errmsg(e)
        if err is not None:
            _unlink(tmp)
            self.reply(rid, {'error': {'kind': 'fs', 'msg': err}})
        else:
            self.reply(rid, {'size': state['n'], 'sha256': h.hexdigest()})

    s = Sink(self, req['ch'])
    s.sink_done = False
    return None

def op_get(self, rid, req):
    import hashlib
    try:
        fd = os.open(b(req['path']), os.O_RDONLY)
        st = os.fstat(fd)
    except OSError as e:
        raise Fail('fs', errmsg(e))
    cloexec(fd)
    h = hashlib.sha256()
    core = self

    class Source(Chan):
        def _readable(self):
            try:
                d = os.read(fd, min(self.credit, READ))
            except OSError as e:
                d = b''
                core.event(rid, {'error': errmsg(e)})
            if d:
                h.update(d)
                self.credit -= len(d)
                core.send(DATA, self.id, d)
                if self.credit <= 0:
                    self.reading = False
                    core.loop.reader(fd, None)
                return
            self.reading = False
            core.loop.reader(fd, None)
            self.src_done = True
            core.send(EOF, self.id, b'')
            core.event(rid, {'sha256': h.hexdigest()})
            close(fd)
            core.chans.pop(self.id, None)

    self.reply(rid, {'size': st.st_size, 'mode': st.st_mode & 0o7777})
    Source(self, req['ch'], None, fd)
    return None


def _unlink(p):
    try:
        os.unlink(p)
    except OSError:
        pass
