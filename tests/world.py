"""One server per test module and a factory of devices that use it."""

from pathlib import Path

from conftest import Device, fresh_database, start_server


class World:
    """One server and a factory of devices, each with its own DOTMAGE_HOME."""

    def __init__(self, root: Path, server):
        self.root, self.server = root, server
        self.count = 0

    def device(self, name: str, signed_in: bool = True, ttl=None) -> Device:
        self.count += 1
        folder = self.root / f"{self.count}-{name}"
        device = Device(folder / "home", folder / "work", self.server)
        device.environment["DOTMAGE_DEVICE_NAME"] = name
        if signed_in:
            extra = ("--ttl", ttl) if ttl else ()
            device.run("auth", "--server", self.server.url, *extra, check=0)
        return device


def make_world(root: Path, db_url: str, **settings) -> World:
    world = World(root, start_server(root, db_url, **settings))
    world.device("founder")  # the account exists from here on
    return world


def shared_world(request, tmp_path_factory, name: str):
    """Body of a module-scoped fixture parametrized over sqlite/postgresql."""
    root = tmp_path_factory.mktemp(f"{name}-{request.param}")
    with fresh_database(request.param, root) as db_url:
        shared = make_world(root, db_url)
        yield shared
        shared.server.stop()
