"""gnt-backup(8) documents every subcommand and option of gnt-backup, and gnt-instance(8) the disk
commands added with it (the checks of test_man_pages, applied to these commands)."""
from test_man_pages import gnt_parser, missing_subcommand_sections, page, section, undocumented_options


def test_every_gnt_backup_subcommand_has_a_section_with_its_synopsis():
    assert missing_subcommand_sections("gnt-backup", gnt_parser("gnt-backup")) == []


def test_every_gnt_backup_option_is_documented():
    assert undocumented_options("gnt-backup", gnt_parser("gnt-backup")) == []


def test_the_export_format_keys_written_are_documented():
    """Every config.ini section and key an export writes is named in THE EXPORT DIRECTORY."""
    import configparser
    from genet.cmdlib import backup
    from genet.objects import Instance
    inst = Instance.from_wire({"name": "w", "uuid": "i", "primary_node": "n", "os": "noop", "hypervisor": "fake", "disk_template": "file",
            "beparams": {"maxmem": 1, "minmem": 1, "vcpus": 1}, "hvparams": {}, "osparams": {},
            "nics": [{"mac": "m", "mode": "bridged", "link": "l"}], "disks": [{"size": 1, "uuid": "u"}]})
    conf = configparser.RawConfigParser()
    conf.read_string(backup.export_config(inst))
    body = section(page("gnt-backup"), "THE EXPORT DIRECTORY")
    keys = [k.replace("0", "N") for s in ("export", "instance") for k in conf[s]]
    assert [f"[{s}]" for s in conf.sections() if f"``[{s}]``" not in body] == []
    assert [k for k in keys if f"``{k}``" not in body] == []


def test_the_replace_disks_refusal_is_quoted_in_gnt_instance():
    body = " ".join(section(page("gnt-instance"), "REPLACE-DISKS", "~").split())
    assert "``Instance's disk layout 'TEMPLATE' is not mirrored, replace-disks needs a mirrored template" \
           " (drbd or mirror)``" in body
