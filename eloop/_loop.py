"""eloop.Loop: the C loop bound to asyncio.AbstractEventLoop.

Everything per-event is in C (eloop._eloop.Loop).  What remains here runs
once per program or once per connection, not per event: the two shutdown
coroutines (a coroutine is far simpler to write in Python, and they run
once at exit), the networking and subprocess set-up code borrowed from
asyncio (see "TCP/Unix networking" and "Subprocesses" below; the child's
exit is watched in C).  TLS is asyncio's own SSLProtocol state machine
with its record path in C (SSLProtocol below, src/ext/tls.c): Python runs
per connection (handshake, shutdown) and on unusual events only.
"""
import asyncio
import contextvars
import errno
import functools
import os
import threading
import warnings
from asyncio import (base_events, constants, selector_events, sslproto,
                     unix_events)

try:
    import ssl
except ImportError:  # pragma: no cover
    ssl = None

from . import _eloop


class Loop(_eloop.Loop, asyncio.AbstractEventLoop):
    """An asyncio event loop implemented in C."""

    def __init__(self):
        super().__init__()
        # Python 3.13's create_unix_server() records here the inode of each
        # socket file it made, so that closing the server removes the file.
        self._unix_server_sockets = {}

    def _stop_serving(self, sock):
        # Once per server socket, at close: the C accept loop stops, then a
        # Unix socket file this loop made goes too (3.13's unix_events),
        # unless another file has taken its path meanwhile.
        made = self._unix_server_sockets.pop(sock, None)
        path = sock.getsockname() if made is not None else None
        super()._stop_serving(sock)
        if not path:
            return
        try:
            if os.stat(path).st_ino == made:
                os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as err:
            base_events.logger.error(
                'Unable to clean up listening UNIX socket %r: %r', path, err)

    async def shutdown_asyncgens(self):
        """Shutdown all active asynchronous generators."""
        self._asyncgens_shutdown_called = True
        if not len(self._asyncgens):
            return
        closing_agens = list(self._asyncgens)
        self._asyncgens.clear()
        results = await asyncio.gather(
            *[ag.aclose() for ag in closing_agens], return_exceptions=True)
        for result, agen in zip(results, closing_agens):
            if isinstance(result, Exception):
                self.call_exception_handler({
                    'message': f'an error occurred during closing of '
                               f'asynchronous generator {agen!r}',
                    'exception': result,
                    'asyncgen': agen,
                })

    async def shutdown_default_executor(self, timeout=None):
        """Schedule the shutdown of the default executor.

        *timeout* (Python 3.12's signature, accepted on every version)
        bounds the wait for the executor's threads to join."""
        self._executor_shutdown_called = True
        if self._default_executor is None:
            return
        future = self.create_future()
        thread = threading.Thread(target=self._do_shutdown, args=(future,))
        thread.start()
        try:
            await asyncio.wait_for(asyncio.shield(future), timeout)
        except asyncio.TimeoutError:
            warnings.warn("The executor did not finishing joining "
                          f"its threads within {timeout} seconds.",
                          RuntimeWarning, stacklevel=2)
            self._default_executor.shutdown(wait=False)
        else:
            thread.join()

    def _do_shutdown(self, future):
        try:
            self._default_executor.shutdown(wait=True)
            if not self.is_closed():
                self.call_soon_threadsafe(future.set_result, None)
        except Exception as ex:
            if not self.is_closed():
                self.call_soon_threadsafe(future.set_exception, ex)


# ---- TCP/Unix networking: set-up glue -----------------------------------
#
# All per-event work is C: the sock_* operations, the accept loop
# (_start_serving/_stop_serving), name resolution (getaddrinfo answers
# numeric hosts without a thread) and the transports' reads and writes.
# What sits on top -- resolving and connecting with happy eyeballs (RFC
# 8305) and all_errors, binding listening sockets, the Server object,
# stale Unix socket removal and the abstract namespace, sendfile's native
# and fallback paths -- is asyncio's own code, assigned to the class below
# by reference, not copied.  It runs once per connection or per server,
# where Python costs nothing measurable next to the syscalls, and sharing
# it keeps every check, message and edge case identical to asyncio's on
# every Python version, including future fixes.
# Two exceptions, restated below because asyncio's name
# sslproto.SSLProtocol inside: _make_ssl_transport() and start_tls() (the
# latter identical on 3.11 to 3.13), so that TLS goes through _SSLProtocol.

_base = base_events.BaseEventLoop
_selector = selector_events.BaseSelectorEventLoop
_unix = unix_events._UnixSelectorEventLoop

#: The TLS protocol every TLS connection of this loop is made with:
#: create_connection/create_server/the Unix variants/connect_accepted_socket
#: (through _make_ssl_transport), the accept path of a TLS server (asyncio's
#: _accept_connection2, which calls _make_ssl_transport) and start_tls().
#: Looked up at each use, so that one assignment swaps the implementation.
#: What the callers rely on: sslproto.SSLProtocol's constructor signature,
#: its `_app_transport` (the application's transport, returned to the
#: caller), and being the protocol of the raw socket transport
#: (connection_made(), then its reads; start_tls passes
#: call_connection_made=False and calls connection_made() itself, via
#: call_soon, after set_protocol()).  Today SSLProtocol below: asyncio's
#: own (3.11+: the buffered protocol derived from uvloop's) with the
#: per-record work in C, running over eloop's C socket transport as a
#: BufferedProtocol.
class SSLProtocol(_eloop.SSLProtocolBase, sslproto.SSLProtocol):
    """asyncio's SSLProtocol with its record path in C (src/ext/tls.c):
    the hot attributes live in the C layout, and get_buffer(),
    buffer_updated() and _write_appdata() run in C while the connection is
    WRAPPED and nothing unusual is pending, calling asyncio's own methods
    for everything else.  The application's transport is
    _eloop.SSLTransport, asyncio's _SSLProtocolTransport with write() and
    writelines() in C."""

    def __init__(self, *args, **kwargs):
        # asyncio's __init__ makes a zeroed max_size (256 KiB) bytearray
        # for get_buffer() per connection; ours allocates on first use
        # (tls.c), so asyncio's is made empty.
        self.max_size = 0
        try:
            super().__init__(*args, **kwargs)
        finally:
            del self.max_size

    def _get_app_transport(self):
        # asyncio's, with the transport class swapped.
        if self._app_transport is None:
            if self._app_transport_created:
                raise RuntimeError('Creating _SSLProtocolTransport twice')
            self._app_transport = _eloop.SSLTransport(self._loop, self)
            self._app_transport_created = True
        return self._app_transport


_SSLProtocol = SSLProtocol if ssl is not None else sslproto.SSLProtocol


def _make_ssl_transport(self, rawsock, protocol, sslcontext, waiter=None,
                        *, server_side=False, server_hostname=None,
                        extra=None, server=None,
                        ssl_handshake_timeout=(
                            constants.SSL_HANDSHAKE_TIMEOUT),
                        ssl_shutdown_timeout=constants.SSL_SHUTDOWN_TIMEOUT):
    """asyncio's selector _make_ssl_transport(): the TLS protocol between
    the C socket transport and the application's protocol; returns the
    application's transport."""
    ssl_protocol = _SSLProtocol(
        self, protocol, sslcontext, waiter,
        server_side, server_hostname,
        ssl_handshake_timeout=ssl_handshake_timeout,
        ssl_shutdown_timeout=ssl_shutdown_timeout)
    self._make_socket_transport(rawsock, ssl_protocol, extra=extra,
                                server=server)
    return ssl_protocol._app_transport


async def start_tls(self, transport, protocol, sslcontext, *,
                    server_side=False, server_hostname=None,
                    ssl_handshake_timeout=None, ssl_shutdown_timeout=None):
    """Upgrade transport to TLS.

    Return a new transport that *protocol* should start using
    immediately.  (asyncio's base_events.start_tls(), identical on 3.11 to
    3.13, except that the protocol is _SSLProtocol.)
    """
    if ssl is None:
        raise RuntimeError('Python ssl module is not available')

    if not isinstance(sslcontext, ssl.SSLContext):
        raise TypeError(
            f'sslcontext is expected to be an instance of ssl.SSLContext, '
            f'got {sslcontext!r}')

    if not getattr(transport, '_start_tls_compatible', False):
        raise TypeError(
            f'transport {transport!r} is not supported by start_tls()')

    waiter = self.create_future()
    ssl_protocol = _SSLProtocol(
        self, protocol, sslcontext, waiter,
        server_side, server_hostname,
        ssl_handshake_timeout=ssl_handshake_timeout,
        ssl_shutdown_timeout=ssl_shutdown_timeout,
        call_connection_made=False)

    # Pause early so that "ssl_protocol.data_received()" doesn't have a
    # chance to get called before "ssl_protocol.connection_made()".
    transport.pause_reading()

    transport.set_protocol(ssl_protocol)
    conmade_cb = self.call_soon(ssl_protocol.connection_made, transport)
    resume_cb = self.call_soon(transport.resume_reading)

    try:
        await waiter
    except BaseException:
        transport.close()
        conmade_cb.cancel()
        resume_cb.cancel()
        raise

    return ssl_protocol._app_transport


class _SendfileFallbackProtocol(asyncio.base_events._SendfileFallbackProtocol):
    """asyncio's sendfile-fallback protocol without its isinstance check:
    asyncio requires a transports._FlowControlMixin, whose __slots__
    cannot be combined with eloop's C transport layout.  The protocol only
    uses what eloop's transport has (_protocol_paused, _loop, pause/resume
    reading, set_protocol)."""

    def __init__(self, transp):
        self._transport = transp
        self._proto = transp.get_protocol()
        self._should_resume_reading = transp.is_reading()
        self._should_resume_writing = transp._protocol_paused
        transp.pause_reading()
        transp.set_protocol(self)
        if self._should_resume_writing:
            self._write_ready_fut = self._transport._loop.create_future()
        else:
            self._write_ready_fut = None


async def _sendfile_fallback(self, transp, file, offset, count):
    """Read the file in 16 KiB blocks in the executor and write them,
    waiting out pause_writing (asyncio's algorithm)."""
    if offset:
        file.seek(offset)
    blocksize = min(count, 16384) if count else 16384
    buf = bytearray(blocksize)
    total_sent = 0
    proto = _SendfileFallbackProtocol(transp)
    try:
        while True:
            if count:
                blocksize = min(count - total_sent, blocksize)
                if blocksize <= 0:
                    return total_sent
            view = memoryview(buf)[:blocksize]
            read = await self.run_in_executor(None, file.readinto, view)
            if not read:
                return total_sent
            await proto.drain()
            # A copy: the buffer is reused for the next block while the
            # transport may still hold this one.
            transp.write(bytes(view[:read]))
            total_sent += read
    finally:
        if total_sent > 0 and hasattr(file, 'seek'):
            file.seek(offset + total_sent)
        await proto.restore()


for _name, _fn in {
    # connections and servers
    "create_connection": _base.create_connection,
    "create_server": _base.create_server,
    "connect_accepted_socket": _base.connect_accepted_socket,
    "create_unix_connection": _unix.create_unix_connection,
    "create_unix_server": _unix.create_unix_server,
    "_ensure_resolved": _base._ensure_resolved,
    "_create_server_getaddrinfo": _base._create_server_getaddrinfo,
    "_connect_sock": _base._connect_sock,
    "_create_connection_transport": _base._create_connection_transport,
    "_getaddrinfo_debug": _base._getaddrinfo_debug,
    # TLS: the set-up above with ssl=, and the accept path of a TLS server
    # (called from the C acceptor, one Task per connection as in asyncio,
    # whose handshake dwarfs it); both reach _SSLProtocol through
    # _make_ssl_transport.
    "_make_ssl_transport": _make_ssl_transport,
    "_accept_connection2": _selector._accept_connection2,
    "start_tls": start_tls,
    # sendfile: os.sendfile() on the socket, or read + send
    "sendfile": _base.sendfile,
    "_sendfile_native": _selector._sendfile_native,
    "_sendfile_fallback": _sendfile_fallback,
    "sock_sendfile": _base.sock_sendfile,
    "_sock_sendfile_native": _unix._sock_sendfile_native,
    "_sock_sendfile_native_impl": _unix._sock_sendfile_native_impl,
    "_sock_sendfile_update_filepos": _unix._sock_sendfile_update_filepos,
    "_sock_add_cancellation_callback":
        _unix._sock_add_cancellation_callback,
    "_sock_sendfile_fallback": _base._sock_sendfile_fallback,
    "_check_sendfile_params": _base._check_sendfile_params,
    # UDP: asyncio's argument checks, resolution, socket options, bind and
    # connect; it calls the C _make_datagram_transport() (src/ext/udp.c).
    "create_datagram_endpoint": _base.create_datagram_endpoint,
    # Pipes: asyncio's connect_read_pipe()/connect_write_pipe() (the
    # protocol, the waiter, the debug log) over the C pipe transports of
    # src/ext/pipe.c (_make_read_pipe_transport and
    # _make_write_pipe_transport are the C Loop's own).  Their fds are not
    # in _transports, as in asyncio.
    "connect_read_pipe": _base.connect_read_pipe,
    "connect_write_pipe": _base.connect_write_pipe,
    # Subprocesses: asyncio's argument checks and its transport (Popen,
    # the pipes through connect_*_pipe, the protocol glue); the child's
    # exit comes from the C watcher (_make_subprocess_transport below).
    "subprocess_exec": _base.subprocess_exec,
    "subprocess_shell": _base.subprocess_shell,
    "_log_subprocess": _base._log_subprocess,
    "_child_watcher_callback": _unix._child_watcher_callback,
    # asyncio's private watcher calls, for code written against asyncio's
    # selector loop (its own pipe transports among it).
    "_add_reader": _eloop.Loop.add_reader,
    "_remove_reader": _eloop.Loop.remove_reader,
    "_add_writer": _eloop.Loop.add_writer,
    "_remove_writer": _eloop.Loop.remove_writer,
}.items():
    setattr(Loop, _name, _fn)


# ---- Subprocesses: set-up glue ------------------------------------------
#
# Once per child: asyncio's _UnixSubprocessTransport spawns it with
# subprocess.Popen and connects its pipes with connect_read_pipe() and
# connect_write_pipe(); the loop learns of its exit from a pidfd in its own
# epoll set (src/ext/loop_child.c), so no child watcher, no thread and no
# SIGCHLD handler is needed.
#
# A child watcher a program set on asyncio's policy (3.11-3.13) is used as
# asyncio uses it -- is_active(), add_child_handler(), RuntimeError when
# inactive -- when it is one whose behaviour the program can see: asyncio's
# SafeChildWatcher/FastChildWatcher/MultiLoopChildWatcher (they reap with
# waitpid(-1) or per SIGCHLD, so a second watcher would lose statuses to
# them), a subclass, or the program's own.  asyncio's ThreadedChildWatcher
# and PidfdChildWatcher (exact types) watch only the pids they are handed,
# so the C watcher stands in for them: same results, without a thread per
# child.  A watcher created by get_child_watcher() is one of those two.

# Kernels without pidfd_open() (before 5.3, or a seccomp filter refusing
# it): a thread per child blocks in waitpid(pid), as asyncio's
# ThreadedChildWatcher does -- no polling, any thread may run the loop, and
# the process's SIGCHLD disposition stays the program's.  ELOOP_NO_PIDFD=1
# (or setting this to False) forces that path.
_use_pidfd = not os.environ.get("ELOOP_NO_PIDFD")

# errnos of pidfd_open() after which a thread waits instead: the call is
# missing or refused for good (the first three), or fds ran out.
_PIDFD_FOR_GOOD = (errno.ENOSYS, errno.EPERM, errno.EACCES)
_PIDFD_NOT_NOW = (errno.EMFILE, errno.ENFILE, errno.ENOMEM)

_PASSIVE_WATCHERS = tuple(
    getattr(unix_events, name) for name in
    ("ThreadedChildWatcher", "PidfdChildWatcher")
    if hasattr(unix_events, name))


def _program_child_watcher():
    """The child watcher the program set on asyncio's policy, if asyncio's
    loop would use it and the C watcher cannot stand in for it; else None.
    Never creates one (get_child_watcher() would, and warns on 3.12+)."""
    policy = getattr(asyncio.events, "_event_loop_policy", None)
    watcher = getattr(policy, "_watcher", None)
    if watcher is None or type(watcher) in _PASSIVE_WATCHERS:
        return None
    return watcher


def _wait_child_thread(loop, pid, callback, context):
    # asyncio's ThreadedChildWatcher._do_waitpid(), for one pid.
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:
        returncode = 255
        base_events.logger.warning(
            "Unknown child process pid %d, will report returncode 255", pid)
    else:
        returncode = unix_events.waitstatus_to_exitcode(status)
    try:
        loop.call_soon_threadsafe(callback, returncode, context=context)
    except RuntimeError:
        if not loop.is_closed():
            raise
        base_events.logger.warning(
            "Loop %r that handles pid %r is closed", loop, pid)


def _watch_child_exit(loop, pid, callback):
    """callback(returncode) runs on loop once child pid exits."""
    global _use_pidfd
    if _use_pidfd:
        try:
            return loop._watch_child(pid, callback)
        except OSError as exc:
            if exc.errno in _PIDFD_FOR_GOOD:
                _use_pidfd = False
            elif exc.errno not in _PIDFD_NOT_NOW:
                raise
    threading.Thread(target=_wait_child_thread, name=f"waitpid-{pid}",
                     args=(loop, pid, callback, contextvars.copy_context()),
                     daemon=True).start()


async def _make_subprocess_transport(self, protocol, args, shell, stdin,
                                     stdout, stderr, bufsize, extra=None,
                                     **kwargs):
    if _program_child_watcher() is not None:
        return await _unix._make_subprocess_transport(
            self, protocol, args, shell, stdin, stdout, stderr, bufsize,
            extra=extra, **kwargs)
    waiter = self.create_future()
    transp = unix_events._UnixSubprocessTransport(
        self, protocol, args, shell, stdin, stdout, stderr, bufsize,
        waiter=waiter, extra=extra, **kwargs)
    try:
        # One iteration later, as asyncio's watchers report it: the
        # child's last output, read in the iteration its exit is seen,
        # reaches the protocol before process_exited().
        _watch_child_exit(self, transp.get_pid(), functools.partial(
            self.call_soon, transp._process_exited))
    except BaseException:
        transp.close()      # kills the child, which nobody would reap
        raise
    try:
        await waiter
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException:
        transp.close()
        await transp._wait()
        raise
    return transp


Loop._make_subprocess_transport = _make_subprocess_transport


del _name, _fn
