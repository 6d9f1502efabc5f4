"""eloop.Loop: the C loop bound to asyncio.AbstractEventLoop.

Everything per-event is in C (eloop._eloop.Loop).  What remains here runs
once per program, not per event: the two shutdown coroutines (a coroutine
is far simpler to write in Python, and they run once at exit) and the
methods later issues deliver, which raise NotImplementedError.
"""
import asyncio
import threading
import warnings

from . import _eloop


class Loop(_eloop.Loop, asyncio.AbstractEventLoop):
    """An asyncio event loop implemented in C."""

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


def _not_yet(name, issue):
    msg = (f"eloop does not implement loop.{name}() yet "
           f"(planned: {issue}); see the README")

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
    **dict.fromkeys((
        "sock_recv", "sock_recv_into", "sock_recvfrom",
        "sock_recvfrom_into", "sock_sendall", "sock_sendto",
        "sock_connect", "sock_accept", "sock_sendfile", "getaddrinfo",
        "getnameinfo", "create_connection", "create_server",
        "create_unix_connection", "create_unix_server",
        "connect_accepted_socket", "sendfile"), "TCP/Unix networking"),
    "create_datagram_endpoint": "UDP",
    "connect_read_pipe": "pipes",
    "connect_write_pipe": "pipes",
    "subprocess_exec": "subprocesses",
    "subprocess_shell": "subprocesses",
    "start_tls": "TLS",
}

for _name, _issue in NOT_IMPLEMENTED.items():
    if hasattr(asyncio.AbstractEventLoop, _name):
        setattr(Loop, _name, _not_yet(_name, _issue))
del _name, _issue
