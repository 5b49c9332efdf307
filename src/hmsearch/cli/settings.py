"""`hmsearch config`: every setting, its value and where the value comes from."""

from __future__ import annotations

import click

from ..config import SETTINGS, config_file, setting, where_from
from . import cli
from ._common import clean, echo_json


@cli.command("config")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: [{name, env, value, source}].")
def config_(as_json: bool) -> None:
    """Show every setting, its value and its source (flag > environment > config file > default).

    The config file is TOML with these names as keys: $HMSEARCH_CONFIG, else ./hmsearch.toml,
    else ~/.config/hmsearch/config.toml.
    """
    rows = [
        {"name": s.name, "env": s.env, "value": setting(s.name), "source": where_from(s.name), "help": s.help}
        for s in SETTINGS.values()
    ]
    if as_json:
        echo_json(
            [
                {
                    **r,
                    "value": None
                    if r["value"] is None
                    else str(r["value"])
                    if not isinstance(r["value"], (int, bool))
                    else r["value"],
                }
                for r in rows
            ]
        )
        return
    path = config_file()
    click.echo(clean(f"config file: {path if path else '(none)'}"))
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        click.echo(clean(f"{r['name']:<{width}}  {r['value']!s:<28} {r['source']:<22} {r['env']}"))
