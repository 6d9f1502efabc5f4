#!/usr/bin/env python3
"""Instructions per blocking loop iteration: poll, dispatch, one callback.

A byte bounces between the two ends of a socketpair through add_reader
callbacks; nothing else is ready, so every iteration takes the
blocking-poll path (the GIL is released around the wait).  The measured
run is entered through operator.call, so callgrind's
--toggle-collect=_operator_call counts only it (see bench/callgrind.sh).
Usage: poll_iter.py LOOP N

Instructions per iteration: run it under callgrind for two values of N and
divide the difference of the totals by the difference of the N (that
cancels the fixed cost of run_forever() entry and exit):

  PYTHONHASHSEED=0 valgrind --tool=callgrind --collect-atstart=no \
      --toggle-collect=_operator_call python3 bench/poll_iter.py eloop 12000
"""
import asyncio
import operator
import socket
import sys


def make_loop(name):
    if name == "eloop":
        import eloop
        return eloop.new_event_loop()
    if name == "uvloop":
        import uvloop
        return uvloop.new_event_loop()
    return asyncio.SelectorEventLoop()


def bounce(loop, n):
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    left = [n]

    def on_read(sock, peer_sock):
        sock.recv(1)
        left[0] -= 1
        if left[0] <= 0:
            loop.stop()
        else:
            sock.send(b"x")

    loop.add_reader(a.fileno(), on_read, a, b)
    loop.add_reader(b.fileno(), on_read, b, a)
    a.send(b"x")
    loop.run_forever()
    loop.remove_reader(a.fileno())
    loop.remove_reader(b.fileno())
    a.close()
    b.close()


def main():
    name, n = sys.argv[1], int(sys.argv[2])
    loop = make_loop(name)
    bounce(loop, 100)               # warm-up, not counted
    operator.call(bounce, loop, n)
    loop.close()
    print(f"poll_iter {name} n={n}")


if __name__ == "__main__":
    main()
