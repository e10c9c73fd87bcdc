"""Which port each process of a local stack listens on.

Defaults follow DESIGN.md: auth 5000, product 5002/5012/5022 …, cart 5003, order 5004,
gateway 8080 (its admin port 8081), the console 8090, the fault proxy's API 8474, and one proxy listener per instance on the service
port + 20000 (5002 -> 25002). `--port-base P` moves all of them by P - 5000 (auth lands on P);
`--port-base 0` picks free ports instead (tests), letting the fault proxy choose its own.
"""

from __future__ import annotations

import random
import socket
from collections.abc import Callable
from dataclasses import dataclass, field

HOST = "127.0.0.1"
DEFAULT_BASE = 5000
SERVICE_PORTS = {"auth": 5000, "product": 5002, "cart": 5003, "order": 5004}
GATEWAY_PORT = 8080
GATEWAY_ADMIN_PORT = 8081
CONSOLE_PORT = 8090
TOXIPROXY_PORT = 8474
REPLICA_STRIDE = 10
PROXY_OFFSET = 20_000
MAX_REPLICAS = 50


class PortError(ValueError):
    """A port plan that cannot work (out of range, or a port already taken)."""


# Where free ports are looked for: below the kernel's ephemeral range (read from
# /proc/sys/net/ipv4/ip_local_port_range; Linux's default starts at 32768).
FREE_PORTS_FROM = 10_000
_EPHEMERAL_RANGE = "/proc/sys/net/ipv4/ip_local_port_range"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, chosen below the kernel's
    ephemeral range when there is room there.

    The port is bound later by a process that takes a second to start; a port from the
    ephemeral range (what binding port 0 gives) may meanwhile become the local port of any
    outgoing connection on the host, and the process then fails with "address already in
    use". Below that range only another process choosing the same way can collide: a random
    choice among some twenty thousand ports, checked free."""
    low = _ephemeral_low()
    if low - FREE_PORTS_FROM > 1000:
        for _ in range(64):
            port = random.randrange(FREE_PORTS_FROM, low)
            if _bindable(port):
                return port
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _ephemeral_low() -> int:
    try:
        with open(_EPHEMERAL_RANGE, encoding="ascii") as handle:
            return int(handle.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def is_listening(port: int, host: str = HOST, timeout: float = 0.2) -> bool:
    """Whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@dataclass(frozen=True)
class PortPlan:
    """Ports of one stack: fixed (defaults shifted by the base) or free (base 0)."""

    base: int = DEFAULT_BASE
    pick_free: Callable[[], int] = field(default=free_port, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.base != 0 and not 1024 <= self.base <= 65535 - PROXY_OFFSET - 10 * MAX_REPLICAS:
            raise PortError(f"port base {self.base} out of range: use 0 (free ports) or "
                            f"1024..{65535 - PROXY_OFFSET - 10 * MAX_REPLICAS}")

    @property
    def free(self) -> bool:
        """Whether ports are picked free at start (base 0)."""
        return self.base == 0

    @property
    def shift(self) -> int:
        return self.base - DEFAULT_BASE

    def service_port(self, service: str, replica: int = 1) -> int:
        """The port of `service`'s instance number `replica` (1-based)."""
        if service not in SERVICE_PORTS:
            raise PortError(f"unknown service {service!r}")
        if not 1 <= replica <= MAX_REPLICAS:
            raise PortError(f"replica {replica} out of range 1..{MAX_REPLICAS}")
        if self.free:
            return self.pick_free()
        return SERVICE_PORTS[service] + self.shift + REPLICA_STRIDE * (replica - 1)

    def proxy_port(self, service_port: int) -> int:
        """The proxy listener in front of a service port (0: the fault proxy picks one)."""
        return 0 if self.free else service_port + PROXY_OFFSET

    def gateway_port(self) -> int:
        """The gateway's port."""
        return self.pick_free() if self.free else GATEWAY_PORT + self.shift

    def gateway_admin_port(self) -> int:
        """The gateway's admin port (`/gateway/upstreams`, `/metrics`)."""
        return self.pick_free() if self.free else GATEWAY_ADMIN_PORT + self.shift

    def console_port(self) -> int:
        """The console's port."""
        return self.pick_free() if self.free else CONSOLE_PORT + self.shift

    def toxiproxy_port(self) -> int:
        """The fault proxy's control API port (0: the server picks one and prints it)."""
        return 0 if self.free else TOXIPROXY_PORT + self.shift

    def fixed_ports(self, product_replicas: int, console: bool = True) -> dict[str, int]:
        """Every port a fixed plan will use, by what uses it (empty for free ports)."""
        if self.free:
            return {}
        ports = {"gateway": self.gateway_port(), "gateway admin": self.gateway_admin_port(),
                 "toxiproxy API": self.toxiproxy_port()}
        if console:
            ports["console"] = self.console_port()
        for service in SERVICE_PORTS:
            count = product_replicas if service == "product" else 1
            for replica in range(1, count + 1):
                name = instance_name(service, replica)
                port = self.service_port(service, replica)
                ports[name] = port
                ports[f"{name} proxy"] = self.proxy_port(port)
        return ports


def instance_name(service: str, replica: int = 1) -> str:
    """`product-1`, `product-2` (product replicas are always numbered); `cart`, then `cart-2`
    for the others, whose first instance keeps the plain name every caller knows."""
    return f"{service}-{replica}" if service == "product" or replica > 1 else service


def taken(ports: dict[str, int]) -> dict[str, int]:
    """The subset of `ports` something already listens on."""
    return {name: port for name, port in ports.items() if port and is_listening(port)}
