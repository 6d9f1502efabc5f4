"""eloop.Loop: the C loop bound to asyncio.AbstractEventLoop.

Everything per-event is in C (eloop._eloop.Loop).  What remains here runs
once per program or once per connection, not per event: the two shutdown
coroutines (a coroutine is far simpler to write in Python, and they run
once at exit), the networking set-up code borrowed from asyncio (see
"TCP/Unix networking" below) and the methods later issues deliver, which
raise NotImplementedError.
"""
import asyncio
import functools
import os
import threading
import warnings
from asyncio import base_events, selector_events, unix_events

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

_base = base_events.BaseEventLoop
_selector = selector_events.BaseSelectorEventLoop
_unix = unix_events._UnixSelectorEventLoop

_TLS_MSG = ("eloop does not implement TLS yet (planned: TLS); "
            "see the README")


def _no_tls(fn, server):
    """asyncio's fn, refusing TLS.  Without a sock= the refusal comes up
    front, before any socket is created, bound or connected.  A sock= is
    the caller's until asyncio's own checks accept it, so those run first
    (with their errors, the socket left open as asyncio leaves it); once
    taken, the refusal closes it, as asyncio closes a taken socket on its
    failure paths -- a peer waiting for a handshake then sees EOF."""

    @functools.wraps(fn)
    async def method(self, *args, ssl=None, **kwargs):
        # create_server() takes an SSLContext (a bool is asyncio's
        # TypeError); the client side treats any true value as TLS.
        if not ((ssl is not None and not isinstance(ssl, bool)) if server
                else ssl):
            return await fn(self, *args, ssl=ssl, **kwargs)
        if kwargs.get("sock") is None:
            raise NotImplementedError(_TLS_MSG)
        if not server:
            # _create_connection_transport() below refuses.
            return await fn(self, *args, ssl=ssl, **kwargs)
        # The server keeps what it took: make it (not serving, without the
        # TLS-only options asyncio rejects without ssl), then close it.
        kwargs.pop("ssl_handshake_timeout", None)
        kwargs.pop("ssl_shutdown_timeout", None)
        kwargs["start_serving"] = False
        srv = await fn(self, *args, **kwargs)
        srv.close()
        raise NotImplementedError(_TLS_MSG)

    return method


def _create_connection_transport(self, sock, protocol_factory, ssl, *args,
                                 **kwargs):
    # Reached once asyncio has taken sock (create_connection,
    # connect_accepted_socket, create_unix_connection); refused before
    # protocol_factory() is called.
    if ssl:
        sock.close()
        raise NotImplementedError(_TLS_MSG)
    return _base._create_connection_transport(self, sock, protocol_factory,
                                              ssl, *args, **kwargs)


def _make_ssl_transport(self, *args, **kwargs):
    raise NotImplementedError(_TLS_MSG)


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
    "create_connection": _no_tls(_base.create_connection, False),
    "create_server": _no_tls(_base.create_server, True),
    # Its sock is positional, always given: _create_connection_transport()
    # refuses TLS once asyncio's checks have passed.
    "connect_accepted_socket": _base.connect_accepted_socket,
    "create_unix_connection": _no_tls(_unix.create_unix_connection, False),
    "create_unix_server": _no_tls(_unix.create_unix_server, True),
    "_ensure_resolved": _base._ensure_resolved,
    "_create_server_getaddrinfo": _base._create_server_getaddrinfo,
    "_connect_sock": _base._connect_sock,
    "_create_connection_transport": _create_connection_transport,
    "_getaddrinfo_debug": _base._getaddrinfo_debug,
    "_make_ssl_transport": _make_ssl_transport,
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
    # asyncio's private watcher calls, for code written against asyncio's
    # selector loop (its own pipe transports among it).
    "_add_reader": _eloop.Loop.add_reader,
    "_remove_reader": _eloop.Loop.remove_reader,
    "_add_writer": _eloop.Loop.add_writer,
    "_remove_writer": _eloop.Loop.remove_writer,
}.items():
    setattr(Loop, _name, _fn)

def _not_yet_msg(name):
    return (f"eloop does not implement loop.{name}() yet "
            f"(planned: {NOT_IMPLEMENTED[name]}); see the README")


def _not_yet(name):
    msg = _not_yet_msg(name)

    async def coro_method(self, *args, **kwargs):
        raise NotImplementedError(msg)

    def method(self, *args, **kwargs):
        raise NotImplementedError(msg)

    fn = coro_method if asyncio.iscoroutinefunction(
        getattr(asyncio.AbstractEventLoop, name)) else method
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = msg
    return fn


#: Methods that later issues deliver, and where they are planned.
NOT_IMPLEMENTED = {
    "subprocess_exec": "subprocesses",
    "subprocess_shell": "subprocesses",
    "start_tls": "TLS",
}

for _name in NOT_IMPLEMENTED:
    if hasattr(asyncio.AbstractEventLoop, _name):
        setattr(Loop, _name, _not_yet(_name))


del _name, _fn
