# Type stubs for eloop.  Loop implements asyncio.AbstractEventLoop; the
# overrides below return eloop's own Handle types.
import asyncio
import contextvars
from typing import Any, Awaitable, Callable, Coroutine, TypeVar

_T = TypeVar("_T")

__version__: str

class Handle:
    """What ``call_soon()`` and ``call_soon_threadsafe()`` return: a
    callback scheduled on the loop, as ``asyncio.Handle`` (eloop's own C
    type, not a subclass of it)."""
    def cancel(self) -> None:  # type: ignore[override]
        """Cancel the callback; a no-op if it already ran."""
    def cancelled(self) -> bool:  # type: ignore[override]
        """Whether ``cancel()`` was called."""
    def get_context(self) -> contextvars.Context:  # type: ignore[override]
        """The ``contextvars.Context`` the callback runs in."""

class TimerHandle(Handle):
    """What ``call_later()`` and ``call_at()`` return, as
    ``asyncio.TimerHandle``; ordered by deadline, then scheduling order."""
    def when(self) -> float:  # type: ignore[override]
        """The deadline in ``loop.time()`` units (an equal float for a
        float deadline, which is kept as a C double)."""

class Loop(asyncio.AbstractEventLoop):
    slow_callback_duration: float
    def __init__(self) -> None: ...
    def add_reader(self, *args: Any, **kwargs: Any) -> Any: ...  # type: ignore[override]
    def add_signal_handler(self, *args: Any, **kwargs: Any) -> Any: ...  # type: ignore[override]
    def add_writer(self, *args: Any, **kwargs: Any) -> Any: ...  # type: ignore[override]
    def call_at(self, when: float, callback: Callable[..., object], *args: Any, context: contextvars.Context | None = ...) -> TimerHandle: ...  # type: ignore[override]
    def call_exception_handler(self, *args: Any, **kwargs: Any) -> Any: ...  # type: ignore[override]
    def call_later(self, delay: float, callback: Callable[..., object], *args: Any, context: contextvars.Context | None = ...) -> TimerHandle: ...  # type: ignore[override]
    def call_soon(self, callback: Callable[..., object], *args: Any, context: contextvars.Context | None = ...) -> Handle: ...  # type: ignore[override]
    def call_soon_threadsafe(self, callback: Callable[..., object], *args: Any, context: contextvars.Context | None = ...) -> Handle: ...  # type: ignore[override]
    def close(self) -> None: ...  # type: ignore[override]
    async def connect_accepted_socket(self, *args: Any, **kwargs: Any) -> Any: ...  # type: ignore[override]
    async def connect_read_pipe(self, *args: Any, **kwargs: Any) -> Any: ...  # type: ignore[override]
    async def connect_write_pipe(self, *args: Any, **kwargs: Any) -> Any: ...  # type: ignore[override]
    async def create_connection(self, *args: Any, **kwargs: Any) -> Any: ...  # type: ignore[override]
    async def create_datagram_endpoint(self, *args: Any, **kwargs: Any) -> Any: ...  # type: ignore[override]
    def create_future(self) -> asyncio.Future[Any]: ...  # type: ignore[override]
    async def create_server(self, *args: Any, **kwargs: Any) -> Any: ...  # type: ignore[override]
    def create_task(self, coro: Coroutine[Any, Any, _T], *, name: str | None = ..., context: contextvars.Context | None = ...) -> asyncio.Task[_T]: ...  # type: ignore[override]
    async def create_unix_connection(self, *args: Any, **kwargs: Any) -> Any: ...  # type: ignore[override]
    async def create_unix_server(self, *args: Any, **kwargs: Any) -> Any: ...  # type: ignore[override]
    def default_exception_handler(self, *args: Any, **kwargs: Any) -> Any: ...  # type: ignore[override]
    def get_debug(self) -> bool: ...  # type: ignore[override]
    def get_exception_handler(self, *args: Any, **kwargs: Any) -> Any: ...  # type: ignore[override]
    def get_task_factory(self, *args: Any, **kwargs: Any) -> Any: ...  # type: ignore[override]
    async def getaddrinfo(self, *args: Any, **kwargs: Any) -> Any: ...  # type: ignore[override]
    async def getnameinfo(self, *args: Any, **kwargs: Any) -> Any: ...  # type: ignore[override]
    def is_closed(self) -> bool: ...  # type: ignore[override]
    def is_running(self) -> bool: ...  # type: ignore[override]
    def remove_reader(self, *args: Any, **kwargs: Any) -> Any: ...  # type: ignore[override]
    def remove_signal_handler(self, *args: Any, **kwargs: Any) -> Any: ...  # type: ignore[override]
    def remove_writer(self, *args: Any, **kwargs: Any) -> Any: ...  # type: ignore[override]
    def run_forever(self) -> None: ...  # type: ignore[override]
    def run_in_executor(self, *args: Any, **kwargs: Any) -> Any: ...  # type: ignore[override]
    def run_until_complete(self, future: Awaitable[_T]) -> _T: ...  # type: ignore[override]
    async def sendfile(self, *args: Any, **kwargs: Any) -> Any: ...  # type: ignore[override]
    def set_debug(self, enabled: bool) -> None: ...  # type: ignore[override]
    def set_default_executor(self, *args: Any, **kwargs: Any) -> Any: ...  # type: ignore[override]
    def set_exception_handler(self, *args: Any, **kwargs: Any) -> Any: ...  # type: ignore[override]
    def set_task_factory(self, *args: Any, **kwargs: Any) -> Any: ...  # type: ignore[override]
    async def shutdown_asyncgens(self, *args: Any, **kwargs: Any) -> Any: ...  # type: ignore[override]
    async def shutdown_default_executor(self, *args: Any, **kwargs: Any) -> Any: ...  # type: ignore[override]
    async def sock_accept(self, *args: Any, **kwargs: Any) -> Any: ...  # type: ignore[override]
    async def sock_connect(self, *args: Any, **kwargs: Any) -> Any: ...  # type: ignore[override]
    async def sock_recv(self, *args: Any, **kwargs: Any) -> Any: ...  # type: ignore[override]
    async def sock_recv_into(self, *args: Any, **kwargs: Any) -> Any: ...  # type: ignore[override]
    async def sock_recvfrom(self, *args: Any, **kwargs: Any) -> Any: ...  # type: ignore[override]
    async def sock_recvfrom_into(self, *args: Any, **kwargs: Any) -> Any: ...  # type: ignore[override]
    async def sock_sendall(self, *args: Any, **kwargs: Any) -> Any: ...  # type: ignore[override]
    async def sock_sendfile(self, *args: Any, **kwargs: Any) -> Any: ...  # type: ignore[override]
    async def sock_sendto(self, *args: Any, **kwargs: Any) -> Any: ...  # type: ignore[override]
    async def start_tls(self, *args: Any, **kwargs: Any) -> Any: ...  # type: ignore[override]
    def stop(self) -> None: ...  # type: ignore[override]
    async def subprocess_exec(self, *args: Any, **kwargs: Any) -> Any: ...  # type: ignore[override]
    async def subprocess_shell(self, *args: Any, **kwargs: Any) -> Any: ...  # type: ignore[override]
    def time(self) -> float: ...  # type: ignore[override]

class EventLoopPolicy(asyncio.DefaultEventLoopPolicy):
    def _loop_factory(self) -> Loop: ...  # type: ignore[override]

def new_event_loop() -> Loop: ...
def install() -> None: ...
def run(main: Coroutine[Any, Any, _T], *, debug: bool | None = ...) -> _T: ...
