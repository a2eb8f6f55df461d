"""Options shared by several commands, each defined once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def quiet_option(func: F) -> F:
    """``--quiet``: no progress bar and no summary (warnings and errors still print)."""
    return click.option(
        "--quiet", "-q", is_flag=True, help="No progress bar or summary; errors still print."
    )(func)


def seed_option(func: F) -> F:
    """``--seed``: the run seed; the same seed gives the same bytes."""
    return click.option(
        "--seed", type=int, default=0, show_default=True, help="Seed; same seed, same bytes."
    )(func)


def workers_option(func: F) -> F:
    """``--workers``: worker processes (0 = all cores); never changes the output."""
    return click.option(
        "--workers",
        "-j",
        type=click.IntRange(min=0),
        default=0,
        show_default=True,
        help="Worker processes, 0 = all cores. Never changes the output bytes.",
    )(func)


def overwrite_option(func: F) -> F:
    """``--overwrite``: replace an existing, non-empty output."""
    return click.option(
        "--overwrite", is_flag=True, help="Replace OUT if it exists and is not empty."
    )(func)


def tta_option(func: F) -> F:
    """``--tta``: average predictions over the 8 flips and transposes of each image."""
    return click.option(
        "--tta",
        is_flag=True,
        help="Test-time augmentation: average the class probabilities over the 8 "
        "flips and transposes of each image (8x the compute).",
    )(func)


class RangeType(click.ParamType):
    """A ``low,high`` pair of numbers, e.g. ``--rotate-range -45,45``."""

    name = "LOW,HIGH"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """Parse ``"a,b"`` (or a 2-item list from a config file) into two floats."""
        if isinstance(value, tuple | list) and len(value) == 2:
            parts = list(value)
        else:
            parts = str(value).split(",")
        try:
            low, high = (float(p) for p in parts)
        except ValueError:
            self.fail(f"expected two numbers LOW,HIGH, got {value!r}", param, ctx)
        return (low, high)


def load_config(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """``--config FILE.toml``: option defaults from a TOML file (command line wins)."""
    if value is None:
        return None
    import tomllib

    try:
        with open(value, "rb") as fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise click.BadParameter(f"cannot read {value}: {err}", ctx=ctx, param=param) from err
    known = {p.name for p in ctx.command.params}
    clean = {k.replace("-", "_"): v for k, v in data.items()}
    unknown = sorted(set(clean) - known)
    if unknown:
        raise click.BadParameter(
            f"unknown keys in {value}: {', '.join(unknown)}", ctx=ctx, param=param
        )
    ctx.default_map = {**(ctx.default_map or {}), **clean}
    return value


def backend_options(func: F) -> F:
    """``--backend``, ``--scheduler``, ``--scheduler-timeout``, ``--send-sources``."""
    options = [
        click.option(
            "--backend",
            type=click.Choice(["local", "dask"]),
            default="local",
            show_default=True,
            help="Where sources are rendered: joblib on this machine, or a Dask cluster "
            "(needs the dask extra; see docs/scaling.md). Never changes the output bytes.",
        ),
        click.option(
            "--scheduler",
            default=None,
            metavar="ADDRESS",
            help="Dask scheduler (tcp://host:8786), or 'local' to start a cluster of "
            "--workers processes here. [default with --backend dask: local]",
        ),
        click.option(
            "--scheduler-timeout",
            type=click.FloatRange(min=0, min_open=True),
            default=10.0,
            metavar="SECONDS",
            show_default=True,
            help="Seconds to wait for the Dask scheduler and its first worker.",
        ),
        click.option(
            "--send-sources",
            is_flag=True,
            help="Send each source's bytes to the Dask workers (for workers without RAW).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def backend_from_options(opts: dict[str, Any]) -> Any:
    """Pop the backend options from ``opts``; a DaskBackend (not connected) or None."""
    backend, scheduler = opts.pop("backend"), opts.pop("scheduler")
    timeout, send_sources = opts.pop("scheduler_timeout"), opts.pop("send_sources")
    if backend == "local":
        if scheduler is not None or send_sources:
            option = "--scheduler" if scheduler is not None else "--send-sources"
            raise click.UsageError(f"{option} needs --backend dask")
        return None
    from augtool.backends import LOCAL_SCHEDULER, DaskBackend

    return DaskBackend(
        scheduler or LOCAL_SCHEDULER,
        workers=opts["workers"],
        timeout=timeout,
        send_sources=send_sources,
    )
