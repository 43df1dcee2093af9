#!/usr/bin/env python3
"""Small loopback proxies for captures/generate.sh (mail-via-proxy).

  proxy.py http PORT    an HTTP CONNECT proxy (RFC 9110 9.3.6) that wants
                        Proxy-Authorization: Basic (407 without it)
  proxy.py socks PORT   a SOCKS4 / SOCKS4a / SOCKS5 proxy (RFC 1928, with the
                        RFC 1929 username/password method when offered)

Both only ever connect to 127.0.0.1 (the names "localhost" and "127.0.0.1");
any other target is refused (HTTP 403, SOCKS5 reply 0x02, SOCKS4 reply 91),
which is how the capture gets refused tunnels.  Everything here is test data:
the proxy account is fake and only loopback is contacted.  Standard library
only; one thread per connection; runs until killed.
"""

import base64
import select
import socket
import socketserver
import struct
import sys

PROXY_USER = "proxyuser"
PROXY_PW = "Proxy-Pass-9"
ALLOWED = {"127.0.0.1": "127.0.0.1", "localhost": "127.0.0.1"}


def read_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("peer closed during the handshake")
        data += chunk
    return data


def read_until(sock, end, limit=8192):
    data = b""
    while not data.endswith(end):
        if len(data) > limit:
            raise ConnectionError("handshake too long")
        chunk = sock.recv(1)
        if not chunk:
            raise ConnectionError("peer closed during the handshake")
        data += chunk
    return data


def relay(a, b):
    """Copy bytes both ways; a side that closes is half-closed on the other."""
    open_ = {a: b, b: a}
    while open_:
        readable, _, _ = select.select(list(open_), [], [], 60)
        if not readable:
            return
        for s in readable:
            data = s.recv(65536)
            if data:
                open_[s].sendall(data)
            else:
                open_[s].shutdown(socket.SHUT_WR)
                del open_[s]


def connect(host, port):
    ip = ALLOWED.get(host)
    if ip is None:
        return None
    try:
        return socket.create_connection((ip, port), timeout=30)
    except OSError:
        return None


class Http(socketserver.BaseRequestHandler):
    def handle(self):
        c = self.request
        head = read_until(c, b"\r\n\r\n").decode("latin-1")
        lines = head.split("\r\n")
        method, target, _version = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        want = "Basic " + base64.b64encode(f"{PROXY_USER}:{PROXY_PW}".encode()).decode()
        if method != "CONNECT":
            c.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            return
        if headers.get("proxy-authorization") != want:
            c.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                      b"Proxy-Authenticate: Basic realm=\"mailsift-lab\"\r\n"
                      b"Content-Length: 0\r\nConnection: close\r\n\r\n")
            return
        host, _, port = target.rpartition(":")
        upstream = connect(host.strip("[]"), int(port))
        if upstream is None:
            c.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        with upstream:
            relay(c, upstream)
        print("http tunnel to", target, "done", flush=True)


class Socks(socketserver.BaseRequestHandler):
    def handle(self):
        c = self.request
        version = read_exact(c, 1)[0]
        if version == 4:
            self.socks4(c)
        elif version == 5:
            self.socks5(c)

    def socks4(self, c):
        cmd, port, ip = struct.unpack("!BH4s", read_exact(c, 7))
        read_until(c, b"\0", 255)  # the user id
        host = socket.inet_ntoa(ip)
        if ip[:3] == b"\0\0\0" and ip[3] != 0:  # SOCKS4a: the name follows
            host = read_until(c, b"\0", 255)[:-1].decode("latin-1")
        upstream = connect(host, port) if cmd == 1 else None
        if upstream is None:
            c.sendall(struct.pack("!BBH4s", 0, 91, 0, b"\0\0\0\0"))
            return
        c.sendall(struct.pack("!BBH4s", 0, 90, port, socket.inet_aton("127.0.0.1")))
        with upstream:
            relay(c, upstream)
        print("socks4 tunnel to", host, port, "done", flush=True)

    def socks5(self, c):
        methods = read_exact(c, read_exact(c, 1)[0])
        if 2 in methods:
            c.sendall(b"\x05\x02")
            ver, ulen = read_exact(c, 2)
            user = read_exact(c, ulen).decode("latin-1")
            pw = read_exact(c, read_exact(c, 1)[0]).decode("latin-1")
            ok = ver == 1 and user == PROXY_USER and pw == PROXY_PW
            c.sendall(b"\x01\x00" if ok else b"\x01\x01")
            if not ok:
                return
        elif 0 in methods:
            c.sendall(b"\x05\x00")
        else:
            c.sendall(b"\x05\xff")
            return
        _ver, cmd, _rsv, atyp = read_exact(c, 4)
        if atyp == 1:
            host = socket.inet_ntoa(read_exact(c, 4))
        elif atyp == 3:
            host = read_exact(c, read_exact(c, 1)[0]).decode("latin-1")
        else:
            host = socket.inet_ntop(socket.AF_INET6, read_exact(c, 16))
        (port,) = struct.unpack("!H", read_exact(c, 2))
        upstream = connect(host, port) if cmd == 1 else None
        if upstream is None:
            c.sendall(b"\x05\x02\x00\x01\0\0\0\0\0\0")
            return
        bound_ip, bound_port = upstream.getsockname()[:2]
        c.sendall(b"\x05\x00\x00\x01" + socket.inet_aton(bound_ip) + struct.pack("!H", bound_port))
        with upstream:
            relay(c, upstream)
        print("socks5 tunnel to", host, port, "done", flush=True)


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def main():
    kind, port = sys.argv[1], int(sys.argv[2])
    handler = {"http": Http, "socks": Socks}[kind]
    with Server(("127.0.0.1", port), handler) as srv:
        print(kind, "proxy on", port, flush=True)
        srv.serve_forever()


if __name__ == "__main__":
    main()
