"""The build step of genet's install that setuptools has no command for (setup.py's build_docs):
the man pages, man/*.rst made troff by docutils' rst2man writer, and the bash completion of
every command, written from the commands' own parsers (genet.cli.completion).

The files go to ``build/docs`` and are installed as data files: the pages into
``share/man/manN`` (man-db finds them from PATH: ``<venv>/bin`` → ``<venv>/share/man``), the
completions into ``share/bash-completion/completions`` (bash-completion loads them from there
when ``share`` is one of its data dirs: /usr/local/share for a system-wide install; for a
virtualenv, ``XDG_DATA_DIRS=<venv>/share:/usr/share``).
"""
from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import io
import os
import re
import sys
from pathlib import Path
from typing import Iterator

from setuptools import Command

OUT = Path("build/docs")
COMPLETIONS = "share/bash-completion/completions"
TITLE = re.compile(r"^([\w.-]+)\((\d)\) genet$")     # a page's first line: "gnt-node(8) genet"
# pages that introduce a family of installed commands rather than one command, installed with them
FAMILY_PAGES = ("htools",)


def page_of(rst: Path) -> tuple[str, int]:
    """The name and manual section of the page ``rst``, from its title line."""
    match = TITLE.match(rst.read_text().split("\n", 1)[0])
    if not match:
        raise ValueError(f"{rst}: the first line is not a title such as 'gnt-node(8) genet'")
    return match.group(1), int(match.group(2))


def installed_pages(man: Path, commands: list[str]) -> dict[Path, str]:
    """The pages installed with genet (each source and where it goes, below the prefix): those of
    the installed commands, the overviews (section 7) and the pages of command families
    (htools(1)); not those of the tools in tools/ and qa/, which only a source tree has."""
    pages = {}
    for rst in sorted(man.glob("*.rst")):
        name, section = page_of(rst)
        if name in commands or section == 7 or name in FAMILY_PAGES:
            pages[rst] = f"share/man/man{section}/{name}.{section}"
    return pages


def render_man(rst: Path, version: str) -> str:
    """The troff page of ``rst`` as rst2man writes it; a docutils warning is an error.

    The page's title line ("gnt-node(8) genet") and NAME section ("gnt-node - what it is")
    become what rst2man makes the header from: the title, the subtitle and the docinfo fields
    Manual section, Manual group and Version."""
    from docutils import core, nodes
    from docutils.writers import manpage
    settings = {"report_level": 2, "halt_level": 2, "warning_stream": io.StringIO(), "output_encoding": "unicode"}
    doc = core.publish_doctree(rst.read_text(), source_path=str(rst), settings_overrides=settings)
    name, section = page_of(rst)
    title = doc.next_node(nodes.title)
    name_section = next(s for s in doc.children if isinstance(s, nodes.section) and s[0].astext() == "NAME")
    summary = name_section.next_node(nodes.paragraph).astext().split(" - ", 1)[1]
    doc.remove(name_section)
    title.children = [nodes.Text(name)]
    info = nodes.docinfo()
    for field, value in (("Manual section", str(section)), ("Manual group", "genet"), ("Version", version)):
        info += nodes.field("", nodes.field_name("", field), nodes.field_body("", nodes.paragraph("", value)))
    at = doc.index(title)
    doc.insert(at + 1, nodes.subtitle("", summary))
    doc.insert(at + 2, info)
    return core.publish_from_doctree(doc, writer=manpage.Writer(), settings_overrides=settings)


class _SourceFinder(importlib.abc.MetaPathFinder):
    """Finds genet's packages in the source folders setup.py maps them to (package_dir)."""

    def __init__(self, packages: dict[str, str]):
        self.packages = {name: Path(folder).resolve() for name, folder in packages.items()}

    def find_spec(self, name, path=None, target=None):
        folder = self.packages.get(name)
        if folder is None:
            return None
        return importlib.util.spec_from_file_location(name, folder / "__init__.py",
                                                      submodule_search_locations=[str(folder)])


@contextlib.contextmanager
def source_packages(packages: dict[str, str]) -> Iterator[None]:
    """Import genet from the source tree while it lasts (a build has not installed it yet)."""
    finder = _SourceFinder(packages)
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)
        for name in [m for m in sys.modules if m == "genet" or m.startswith("genet.")]:
            del sys.modules[name]


class Docs:
    """What build_docs makes, from setup.py's description of the install."""

    def __init__(self, man: Path, commands: list[str], packages: dict[str, str], bundled_os: str, version: str):
        self.man, self.commands, self.packages, self.version = man, commands, packages, version
        self.names = [spec.split("=", 1)[0].strip() for spec in commands]
        # where the bundled OS definitions are seen from the completion files
        self.bundled_os = os.path.relpath(bundled_os, COMPLETIONS)

    def pages(self) -> dict[Path, str]:
        return installed_pages(self.man, self.names)

    def data_files(self) -> list[tuple[str, list[str]]]:
        """setup()'s data_files entries of what build_docs makes."""
        by_dir: dict[str, list[str]] = {}
        for target in self.pages().values():
            by_dir.setdefault(str(Path(target).parent), []).append(str(OUT / target))
        by_dir[COMPLETIONS] = [str(OUT / COMPLETIONS / name) for name in self.names]
        return sorted(by_dir.items())

    def build(self) -> None:
        for rst, target in self.pages().items():
            (OUT / target).parent.mkdir(parents=True, exist_ok=True)
            (OUT / target).write_text(render_man(rst, self.version))
        with source_packages(self.packages):
            from genet.cli import completion
            completion.write(self.commands, OUT / COMPLETIONS, self.bundled_os)


def build_docs_command(docs: Docs) -> type[Command]:
    """The setuptools command that makes ``docs`` (a step of build, so of every wheel and
    editable install)."""
    class build_docs(Command):
        description = "make the man pages and the bash completion"
        user_options: list = []

        def initialize_options(self) -> None:
            pass

        def finalize_options(self) -> None:
            pass

        def run(self) -> None:
            docs.build()
    return build_docs
